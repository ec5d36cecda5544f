package workloads

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"text/template/parse"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/fielderr"
)

// FRequest is the function of the http workload's operations, as it
// appears in the history's "f" field.
const FRequest = "request"

// Limits of the http workload's parameters.
const (
	// MaxEndpoints bounds the endpoints: each keeps two latency histograms.
	MaxEndpoints = 64
	// MaxCheckedBody is the most of a response body a check reads; a
	// longer body fails a body check (the rest is read and discarded).
	MaxCheckedBody = 1 << 20
)

func init() {
	Register(Workload{
		Name: "http",
		Doc: "HTTP requests to one or more endpoints chosen by weight, with templated URL, headers and body, and a response check per endpoint " +
			"(ok: the check passes; fail: it does not, or a 4xx/5xx, with the status; info: a timeout or a connection cut once the request may have been sent); no final step",
		Ops:       []string{FRequest},
		NewParams: func() Params { return &HTTPParams{Keys: 1000} },
		NewClient: newHTTPClient,
	})
}

// HTTPParams are the http workload's parameters (`workload: {type: http,
// ...}`).
//
// Each request is one history operation {"f": "request", "key": ENDPOINT,
// "value": {"seq": N, ...}}: the endpoint's name and the template values
// its request used (seq, and key or list values where its templates use
// them), never the rendered URL, headers or body, so a header that holds a
// secret never reaches the history.
type HTTPParams struct {
	// Endpoints are the requests to send, each chosen with probability
	// proportional to its weight. At least one, at most MaxEndpoints.
	Endpoints []Endpoint `yaml:"endpoints"`
	// Keys is how many keys {{.key}} draws from (k0 .. k<Keys-1>, uniformly,
	// from the run's seed); default 1000.
	Keys int `yaml:"keys,omitempty"`
	// Lists are named lists of values: {{.NAME}} is one of them, drawn
	// uniformly per request from the run's seed. Names are identifiers
	// other than seq and key.
	Lists map[string][]string `yaml:"lists,omitempty"`
	// Scheme is how relative URLs reach the node: http (default) or https.
	Scheme string `yaml:"scheme,omitempty"`
	// TLS configures https requests (relative with scheme https, or
	// absolute https URLs); nil verifies servers against the system's
	// roots.
	TLS *HTTPTLS `yaml:"tls,omitempty"`

	eps  []compiledEndpoint // set by Check
	pool *httpPool          // the clients' shared connection pool (connPool)
}

// Endpoint is one request of the http workload.
type Endpoint struct {
	// Name names the endpoint in the history (the operation's key), in
	// results.json's stats.by_endpoint and in thresholds: letters, digits,
	// '.', '_' and '-'; unique.
	Name string `yaml:"name"`
	// Method is the HTTP method; default GET.
	Method string `yaml:"method,omitempty"`
	// URL is a template: a path starting with "/" is sent to the worker's
	// home node (through its client link, so link faults act on it), with
	// the scheme of HTTPParams.Scheme; an absolute http:// or https://
	// URL goes where it says.
	URL string `yaml:"url"`
	// Headers are request headers. A value is a template, or a text
	// holding ${VAR}: replaced by the environment variable VAR when the
	// run starts, for secrets (never written anywhere); not both.
	Headers map[string]string `yaml:"headers,omitempty"`
	// Body is the request body, a template; "" sends none.
	Body string `yaml:"body,omitempty"`
	// Weight is the endpoint's relative share of the requests; 0 (absent)
	// means 1.
	Weight float64 `yaml:"weight,omitempty"`
	// Check decides whether an answer is ok; nil: any status below 400.
	Check *HTTPCheck `yaml:"check,omitempty"`
}

// HTTPCheck is an endpoint's response check. An answer that fails it is
// recorded as fail, with the status and the reason.
type HTTPCheck struct {
	// Status lists the statuses that pass; empty: any status below 400.
	Status []int `yaml:"status,omitempty"`
	// BodyContains, if set, must occur in the body.
	BodyContains string `yaml:"body_contains,omitempty"`
	// JSONField, if set, is a dotted path ("data.items.0.id": a number
	// indexes an array) that the body, a JSON value, must hold, not null.
	JSONField string `yaml:"json_field,omitempty"`
	// JSONEquals, if set (with JSONField), is the value the field must
	// hold, compared as JSON (1 equals 1.0, objects by their members).
	JSONEquals any `yaml:"json_equals,omitempty"`
}

// HTTPTLS configures the TLS of https requests.
type HTTPTLS struct {
	// CA is a PEM file of the certificates that sign the servers'
	// certificates, in place of the system's roots.
	CA string `yaml:"ca,omitempty"`
	// ServerName is the name verified in the servers' certificates;
	// default the host of the URL.
	ServerName string `yaml:"server_name,omitempty"`
	// InsecureSkipVerify turns verification off (a test server with a
	// certificate of its own making; never against a real service).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty"`
}

// compiledEndpoint is an Endpoint checked and parsed.
type compiledEndpoint struct {
	Endpoint
	url     *text
	headers []header
	body    *text
	// uses are the template values its templates use, besides seq (always
	// recorded): "key" and list names, sorted.
	uses    []string
	status  map[int]bool
	equals  string // canonical JSON of Check.JSONEquals; "" for none
	hasAuth bool   // it sets Authorization itself
}

type header struct {
	name  string
	value *text
	env   bool // value holds ${VAR}: expanded when the client is built
}

// text is a template, or a constant when it has no action.
type text struct {
	src string
	t   *template.Template // nil: constant src
}

func (x *text) render(data map[string]any, b *strings.Builder) (string, error) {
	if x.t == nil {
		return x.src, nil
	}
	b.Reset()
	if err := x.t.Execute(b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

var (
	endpointName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	identName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	envVarRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	methodName   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")
	headerName   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
)

// templateFuncs are the functions templates may call besides text/template's
// own (urlquery, print, ...): json writes a value as JSON (for bodies).
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
}

// Check checks the values and compiles the templates.
func (p *HTTPParams) Check() error {
	if len(p.Endpoints) == 0 {
		return fielderr.New("endpoints", "no endpoints: give at least one, e.g. [{name: home, url: /}]")
	}
	if len(p.Endpoints) > MaxEndpoints {
		return fielderr.New("endpoints", "%d endpoints: at most %d", len(p.Endpoints), MaxEndpoints)
	}
	if p.Keys < 1 || p.Keys > 1_000_000_000 {
		return fielderr.New("keys", "%d keys: use 1 to 1000000000", p.Keys)
	}
	switch p.Scheme {
	case "", "http", "https":
	default:
		return fielderr.New("scheme", "%q: relative URLs go to the node over http (default) or https", p.Scheme)
	}
	for _, name := range slices.Sorted(mapKeys(p.Lists)) {
		if !identName.MatchString(name) || name == "seq" || name == "key" {
			return fielderr.New("lists."+name, "a list's name must be an identifier (letters, digits, _) other than seq and key, so that templates can use it as {{.NAME}}")
		}
		if len(p.Lists[name]) == 0 {
			return fielderr.New("lists."+name, "the list is empty: give it at least one value")
		}
	}
	if t := p.TLS; t != nil && t.CA != "" && t.InsecureSkipVerify {
		return fielderr.New("tls", "ca and insecure_skip_verify together: give the CA to verify against, or turn verification off, not both")
	}
	known := append([]string{"seq", "key"}, slices.Sorted(mapKeys(p.Lists))...)
	sample := map[string]any{"seq": json.Number("1"), "key": "k0"}
	for name, l := range p.Lists {
		sample[name] = l[0]
	}
	seen := map[string]bool{}
	eps := make([]compiledEndpoint, len(p.Endpoints))
	for i, e := range p.Endpoints {
		at := fmt.Sprintf("endpoints[%d]", i)
		if !endpointName.MatchString(e.Name) {
			return fielderr.New(at+".name", "%q: an endpoint's name is 1 to 64 letters, digits, '.', '_' or '-'", e.Name)
		}
		if seen[e.Name] {
			return fielderr.New(at+".name", "endpoint %s is named twice", e.Name)
		}
		seen[e.Name] = true
		ce := compiledEndpoint{Endpoint: e}
		if ce.Method == "" {
			ce.Method = http.MethodGet
		}
		if !methodName.MatchString(ce.Method) {
			return fielderr.New(at+".method", "%q is not an HTTP method", ce.Method)
		}
		if math.IsNaN(e.Weight) || math.IsInf(e.Weight, 0) || e.Weight < 0 {
			return fielderr.New(at+".weight", "%v: a weight is relative, a finite number > 0 (absent: 1)", e.Weight)
		}
		if ce.Weight == 0 {
			ce.Weight = 1
		}
		uses := map[string]bool{}
		var err error
		if ce.url, err = compileText(e.URL, uses, known); err != nil {
			return fielderr.New(at+".url", "%v", err)
		}
		u, err := ce.url.render(sample, &strings.Builder{})
		if err == nil {
			_, err = requestURL(u, "http", "127.0.0.1:1")
		}
		if err != nil {
			return fielderr.New(at+".url", "%v", err)
		}
		for _, name := range slices.Sorted(mapKeys(e.Headers)) {
			hp := at + ".headers." + name
			if !headerName.MatchString(name) {
				return fielderr.New(hp, "%q is not a header name", name)
			}
			v := e.Headers[name]
			h := header{name: http.CanonicalHeaderKey(name)}
			if envVarRef.MatchString(v) {
				if strings.Contains(v, "{{") {
					return fielderr.New(hp, "a header value holds ${VAR} (a secret from the environment) or a template, not both")
				}
				h.env = true
				h.value = &text{src: v}
			} else if h.value, err = compileText(v, uses, known); err != nil {
				return fielderr.New(hp, "%v", err)
			}
			if h.name == "Authorization" {
				ce.hasAuth = true
			}
			ce.headers = append(ce.headers, h)
		}
		if ce.body, err = compileText(e.Body, uses, known); err != nil {
			return fielderr.New(at+".body", "%v", err)
		}
		for _, x := range append([]*text{ce.url, ce.body}, headerTexts(ce.headers)...) {
			if _, err := x.render(sample, &strings.Builder{}); err != nil {
				return fielderr.New(at, "a template does not run: %v", err)
			}
		}
		delete(uses, "seq")
		ce.uses = slices.Sorted(mapKeys(uses))
		if c := e.Check; c != nil {
			cp := at + ".check"
			if len(c.Status) > 0 {
				ce.status = map[int]bool{}
			}
			for j, st := range c.Status {
				if st < 100 || st > 599 {
					return fielderr.New(fmt.Sprintf("%s.status[%d]", cp, j), "%d is not an HTTP status (100 to 599)", st)
				}
				ce.status[st] = true
			}
			if c.JSONEquals != nil {
				if c.JSONField == "" {
					return fielderr.New(cp+".json_equals", "json_equals needs json_field, the field it compares")
				}
				b, err := json.Marshal(c.JSONEquals)
				if err == nil {
					ce.equals, err = history.CanonicalJSON(b)
				}
				if err != nil {
					return fielderr.New(cp+".json_equals", "not a JSON value: %v", err)
				}
			}
			if c.JSONField != "" && slices.Contains(strings.Split(c.JSONField, "."), "") {
				return fielderr.New(cp+".json_field", "%q: a dotted path of member names and array indexes, e.g. data.items.0.id", c.JSONField)
			}
		}
		eps[i] = ce
	}
	p.eps = eps
	p.pool = nil
	return nil
}

func headerTexts(hs []header) []*text {
	out := make([]*text, 0, len(hs))
	for _, h := range hs {
		if !h.env {
			out = append(out, h.value)
		}
	}
	return out
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// compileText parses src as a template and adds the values it uses to
// uses; a value that is not one of known is an error naming them.
func compileText(src string, uses map[string]bool, known []string) (*text, error) {
	if !strings.Contains(src, "{{") {
		return &text{src: src}, nil
	}
	t, err := template.New("").Option("missingkey=error").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template: %v", strings.TrimPrefix(err.Error(), "template: "))
	}
	var bad []string
	walkFields(t.Root, func(name string) {
		if slices.Contains(known, name) {
			uses[name] = true
		} else {
			bad = append(bad, name)
		}
	})
	if len(bad) > 0 {
		return nil, fmt.Errorf("template uses {{.%s}}: the values are %s (lists are named under lists)", bad[0], strings.Join(known, ", "))
	}
	return &text{src: src, t: t}, nil
}

// walkFields calls f with the first name of every field reference (.x)
// in the template tree under n.
func walkFields(n parse.Node, f func(string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkFields(c, f)
		}
	case *parse.ActionNode:
		walkFields(n.Pipe, f)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkFields(c, f)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkFields(a, f)
		}
	case *parse.FieldNode:
		f(n.Ident[0])
	case *parse.ChainNode:
		walkFields(n.Node, f)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, f)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, f)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, f)
	case *parse.TemplateNode:
		walkFields(n.Pipe, f)
	}
}

func walkBranch(b *parse.BranchNode, f func(string)) {
	walkFields(b.Pipe, f)
	walkFields(b.List, f)
	walkFields(b.ElseList, f)
}

// requestURL returns the URL of a rendered url template: a path is sent
// to node (host:port) with scheme; an absolute URL must be http or https
// with a host.
func requestURL(s, scheme, node string) (*url.URL, error) {
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		u, err := url.Parse(scheme + "://" + node + s)
		if err != nil {
			return nil, fmt.Errorf("URL %q: %v", s, err)
		}
		return u, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("URL %q: give a path (/...) relative to the node, or an absolute http:// or https:// URL", s)
	}
	return u, nil
}

// resolved are the parts of the parameters that depend on this machine:
// the environment's header values and the CA file.
type resolved struct {
	env   map[string]string // VAR -> value, for every ${VAR} of the headers
	roots *x509.CertPool    // nil: the system's
}

// resolve reads what the parameters take from this machine. Errors name
// the variable or the file, never a value.
func (p *HTTPParams) resolve() (*resolved, error) {
	if p.eps == nil {
		if err := p.Check(); err != nil {
			return nil, err
		}
	}
	r := &resolved{env: map[string]string{}}
	for i, e := range p.eps {
		for _, h := range e.headers {
			if !h.env {
				continue
			}
			for _, m := range envVarRef.FindAllStringSubmatch(h.value.src, -1) {
				v, ok := os.LookupEnv(m[1])
				if !ok || v == "" {
					return nil, fielderr.New(fmt.Sprintf("endpoints[%d].headers.%s", i, h.name), "environment variable %s is not set (or empty): export it before the run", m[1])
				}
				r.env[m[1]] = v
			}
		}
	}
	if t := p.TLS; t != nil && t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fielderr.New("tls.ca", "%v", err)
		}
		r.roots = x509.NewCertPool()
		if !r.roots.AppendCertsFromPEM(pem) {
			return nil, fielderr.New("tls.ca", "%s holds no PEM certificate", t.CA)
		}
	}
	return r, nil
}

// Resolve reads what the parameters take from this machine (the
// environment variables of header values, the CA file) and returns an
// error naming what is missing, never a value. A scenario calls it when it
// is validated for a run, not when a saved run is judged elsewhere.
func (p *HTTPParams) Resolve() error {
	_, err := p.resolve()
	return err
}

// EndpointNames returns the endpoints' names, in order: the names
// thresholds may give limits for (checkers.latency.endpoints).
func (p *HTTPParams) EndpointNames() []string {
	out := make([]string, len(p.Endpoints))
	for i, e := range p.Endpoints {
		out[i] = e.Name
	}
	return out
}

// New returns the workload for one run. It reads what the parameters take
// from this machine (the environment variables of header values, the CA
// file), so that a missing one stops the run before any request.
func (p *HTTPParams) New() (Instance, error) {
	if _, err := p.resolve(); err != nil {
		return nil, err
	}
	g := &httpRun{p: p, cum: make([]float64, len(p.eps))}
	total := 0.0
	for i, e := range p.eps {
		total += e.Weight
		g.cum[i] = total
	}
	for i := range g.cum {
		g.cum[i] /= total
	}
	return g, nil
}

// httpRun is the http workload's generator: each op picks an endpoint by
// weight and draws the template values its request uses.
type httpRun struct {
	p   *HTTPParams
	cum []float64 // cumulative weights, normalized to 1
	seq atomic.Int64
}

// Next picks an endpoint and the values of its templates: seq (1, 2, ...
// in the order ops are generated, unique in the run), key and list values
// from r.
func (g *httpRun) Next(r *rand.Rand, _ int) history.Op {
	x := r.Float64()
	i := min(sort.Search(len(g.cum), func(i int) bool { return g.cum[i] > x }), len(g.cum)-1)
	e := &g.p.eps[i]
	b := make([]byte, 0, 48)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, g.seq.Add(1), 10)
	for _, name := range e.uses {
		b = append(b, ',')
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		if name == "key" {
			b = append(b, `"k`...)
			b = strconv.AppendInt(b, int64(r.IntN(g.p.Keys)), 10)
			b = append(b, '"')
			continue
		}
		l := g.p.Lists[name]
		v, _ := json.Marshal(l[r.IntN(len(l))]) // a string always marshals
		b = append(b, v...)
	}
	b = append(b, '}')
	return history.Op{F: FRequest, Key: e.Name, Value: b}
}

// Observe does nothing: requests do not depend on earlier answers.
func (g *httpRun) Observe(history.Op, history.Outcome) {}

// FigureKeys names the endpoints, so that Run keeps their figures apart.
func (g *httpRun) FigureKeys() []string { return g.p.EndpointNames() }

// Final does nothing: the http workload has no final step.
func (g *httpRun) Final(_ context.Context, _ Client, _ *history.Recorder, process history.Process) (history.Process, error) {
	return process, nil
}
