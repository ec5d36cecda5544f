// Package httpkv is a targets.Client for any service speaking faultline's
// HTTP/JSON key-value API (the reference systems, or an external service):
//
//	GET  /kv/{key}       -> 200 {"value": V}   (V null when absent)
//	PUT  /kv/{key}       {"value": V}          -> 200 {}
//	POST /kv/{key}/cas   {"from": X, "to": Y}  -> 200 {} | 409 {"error":"mismatch"}
//	other failures       -> 4xx/5xx {"error": TEXT, "definite": BOOL, "leader": ID}
//
// A 200 or 409 body may carry "term": N (a positive integer), the term or
// epoch under which the node answered; it becomes Outcome.Term (else 0).
//
// Outcome mapping (Jepsen semantics):
//
//   - 200: ok; a get's Value is the value read (history.Null when absent).
//   - 409 {"error":"mismatch"}: fail with Error "mismatch".
//   - an error body with "definite": true: if it names a leader other than
//     the node asked, that leader is a known node, and redirects remain, the
//     same op is sent to the leader within the same Do (it certainly was not
//     applied); otherwise fail.
//   - an error body with "definite": false, a 5xx without an error body, a
//     timeout, or a connection cut after the request may have been sent:
//     info (the effect is unknown).
//   - a 4xx other than 409 without an error body: fail (HTTP says a client
//     error was not processed).
//   - the connection could not be made (dial refused or timed out): fail.
//   - a 200 to a get whose body cannot be decoded: info.
//
// Every op starts at the client's home node (no leader caching), so reads
// are served by the node the worker is bound to, and a bug such as raftkv's
// stale-read shows up.
//
// The package registers itself as the client adapter "http" (see
// targets.RegisterAdapter); New builds a client for direct use.
package httpkv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// AdapterName is the name under which the package registers its adapter.
const AdapterName = "http"

func init() {
	targets.RegisterAdapter(targets.Adapter{
		Name: AdapterName,
		Doc:  "faultline's HTTP/JSON key-value API: the reference systems' client API, or any service speaking it (GET|PUT /kv/{key}, POST /kv/{key}/cas)",
		Ops:  []string{"get", "put", "cas"},
		Errors: "200 is ok; 409 {\"error\":\"mismatch\"} is fail (mismatch); an error body with \"definite\": true is fail, " +
			"unless it names another node as leader: then the op is sent there (at most 2 redirects); \"definite\": false, a 5xx without an error body, " +
			"a timeout or a connection cut once the request may have been sent is info; a 4xx without an error body, " +
			"or a connection that could not be made, is fail",
		New: newAdapterClient,
	})
}

// newAdapterClient is the adapter's New: a Client for cfg.Home over
// cfg.Nodes, each op bounded by cfg.Timeout, sending cfg.Token if set. The
// adapter takes no options.
func newAdapterClient(cfg targets.ClientConfig) (targets.Client, error) {
	if len(cfg.Options) > 0 {
		return nil, targets.CheckOptionName(AdapterName, nil, slices.Sorted(maps.Keys(cfg.Options))[0])
	}
	return New(cfg.Nodes, cfg.Home, Options{Timeout: cfg.Timeout, Token: cfg.Token})
}

// Options tune a Client. Zero values take the defaults.
type Options struct {
	// Timeout bounds one Do call, redirects included (default 2s). When it
	// expires the op's outcome is info (or fail if nothing was sent).
	Timeout time.Duration
	// DialTimeout bounds connecting to one node (default 1s, capped by what
	// remains of Timeout). A failed dial makes the op fail: nothing was sent.
	DialTimeout time.Duration
	// MaxRedirects is how many times one op may follow a definite refusal
	// that names the leader (default 2; negative means never).
	MaxRedirects int
	// Token, if set, is sent with every request as "Authorization: Bearer
	// TOKEN" (faultline's own nodes require their run's token); "" sends
	// no Authorization header.
	Token targets.Token
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.MaxRedirects == 0 {
		o.MaxRedirects = 2
	} else if o.MaxRedirects < 0 {
		o.MaxRedirects = 0
	}
	return o
}

// Client sends ops to one home node and follows redirects to the leader.
//
// A Client is not safe for concurrent use: give each worker its own (one
// Client per process keeps every process sequential). It is cheap to create:
// it owns an http.Transport with keep-alives and at most two idle
// connections per node, opened lazily. Close releases the idle connections.
type Client struct {
	nodes map[string]string // id -> host:port to dial
	home  string
	opts  Options
	tr    *http.Transport
	hc    *http.Client
}

var _ targets.Client = (*Client)(nil)

// New returns a client whose ops start at node home. nodes maps every node
// id to the host:port to dial for it (maybe a proxy); it is copied.
func New(nodes map[string]string, home string, opts Options) (*Client, error) {
	if _, ok := nodes[home]; !ok {
		ids := make([]string, 0, len(nodes))
		for id := range nodes {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return nil, fmt.Errorf("httpkv: home node %q is not among the nodes %v", home, ids)
	}
	c := &Client{nodes: make(map[string]string, len(nodes)), home: home, opts: opts.withDefaults()}
	for id, addr := range nodes {
		c.nodes[id] = addr
	}
	dialer := &net.Dialer{Timeout: c.opts.DialTimeout, KeepAlive: 30 * time.Second}
	c.tr = &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		MaxIdleConns:        2 * len(nodes),
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	c.hc = &http.Client{
		Transport: c.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	return c, nil
}

// Home returns the node every op starts at.
func (c *Client) Home() string { return c.home }

// Close releases idle connections. The client stays usable.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// errorBody is the API's failure JSON.
type errorBody struct {
	Error    *string `json:"error"`
	Definite bool    `json:"definite"`
	Leader   string  `json:"leader"`
}

// Do performs op (f = get, put or cas) and reports its outcome; it never
// returns an error. See the package doc for the mapping.
func (c *Client) Do(ctx context.Context, op history.Op) history.Outcome {
	method, suffix, body, err := encodeOp(op)
	if err != nil {
		return history.Outcome{Type: history.Fail, Error: err.Error()}
	}
	if err := ctx.Err(); err != nil {
		return history.Outcome{Type: history.Fail, Error: "not sent: " + err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()

	node := c.home
	for redirects := 0; ; redirects++ {
		out, leader := c.try(ctx, node, method, "/kv/"+url.PathEscape(op.Key)+suffix, body, op.F)
		if leader == "" || leader == node || redirects >= c.opts.MaxRedirects {
			return out
		}
		if _, known := c.nodes[leader]; !known {
			return out
		}
		node = leader
	}
}

func encodeOp(op history.Op) (method, suffix string, body []byte, err error) {
	switch op.F {
	case "get":
		return http.MethodGet, "", nil, nil
	case "put":
		if len(op.Value) == 0 {
			return "", "", nil, errors.New("httpkv: put needs a value")
		}
		body, err = json.Marshal(map[string]json.RawMessage{"value": op.Value})
		if err != nil {
			return "", "", nil, fmt.Errorf("httpkv: put value is not valid JSON: %v", err)
		}
		return http.MethodPut, "", body, nil
	case "cas":
		var c history.CAS
		if err := json.Unmarshal(op.Value, &c); err != nil || c.From == nil || c.To == nil {
			return "", "", nil, fmt.Errorf(`httpkv: cas value must be {"from": X, "to": Y}, got %s`, op.Value)
		}
		body, err = json.Marshal(c)
		if err != nil {
			return "", "", nil, fmt.Errorf("httpkv: cas value is not valid JSON: %v", err)
		}
		return http.MethodPost, "/cas", body, nil
	}
	return "", "", nil, fmt.Errorf("httpkv: unsupported op %q (want get, put or cas)", op.F)
}

// try sends one request to node. It returns the outcome and, when the node
// definitely refused and named a leader, that leader's id.
func (c *Client) try(ctx context.Context, node, method, path string, body []byte, f string) (history.Outcome, string) {
	out := history.Outcome{Node: node}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.nodes[node]+path, rd)
	if err != nil {
		out.Type, out.Error = history.Fail, "httpkv: build request: "+err.Error()
		return out, ""
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.opts.Token.SetOn(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		if isDialError(err) {
			out.Type, out.Error = history.Fail, "not sent: "+shortError(err)
		} else {
			out.Type, out.Error = history.Info, shortError(err)
		}
		return out, ""
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil && resp.StatusCode != http.StatusOK {
		out.Type, out.Error = history.Info, fmt.Sprintf("http %d, body cut: %s", resp.StatusCode, shortError(err))
		return out, ""
	}

	out.Term = answerTerm(resp.StatusCode, rb)
	if resp.StatusCode == http.StatusOK {
		if f != "get" {
			out.Type = history.OK
			return out, ""
		}
		if err != nil {
			out.Type, out.Error = history.Info, "get: body cut: "+shortError(err)
			return out, ""
		}
		// Exactly {"value": V}: a body without that member (null, {}, or
		// "Value", which encoding/json would match case-insensitively)
		// says nothing of what the node read.
		var m map[string]json.RawMessage
		v, ok := json.RawMessage(nil), false
		if json.Unmarshal(rb, &m) == nil {
			v, ok = m["value"]
		}
		if !ok {
			out.Type, out.Error = history.Info, fmt.Sprintf("get: a 200 body without a \"value\" member %.100q", rb)
			return out, ""
		}
		out.Type, out.Value = history.OK, compact(v)
		return out, ""
	}

	var eb errorBody
	parsed := json.Unmarshal(rb, &eb) == nil && eb.Error != nil
	switch {
	case resp.StatusCode == http.StatusConflict && parsed && *eb.Error == "mismatch":
		out.Type, out.Error = history.Fail, "mismatch"
		return out, ""
	// Only a 409 is a mismatch; any other error text is prefixed with its
	// status, so that no other answer reads as a cas observation.
	case parsed && eb.Definite:
		out.Type, out.Error = history.Fail, fmt.Sprintf("http %d: %s", resp.StatusCode, *eb.Error)
		return out, eb.Leader
	case parsed:
		out.Type, out.Error = history.Info, fmt.Sprintf("http %d: %s", resp.StatusCode, *eb.Error)
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		out.Type, out.Error = history.Fail, fmt.Sprintf("http %d: %.200s", resp.StatusCode, strings.TrimSpace(string(rb)))
	default:
		out.Type, out.Error = history.Info, fmt.Sprintf("http %d: %.200s", resp.StatusCode, strings.TrimSpace(string(rb)))
	}
	return out, ""
}

// answerTerm returns the "term" of a 200 or 409 body: the term or epoch the
// node answered under; 0 when absent, not a positive integer, or the status
// is another.
func answerTerm(code int, body []byte) uint64 {
	if code != http.StatusOK && code != http.StatusConflict {
		return 0
	}
	var b struct {
		Term json.RawMessage `json:"term"`
	}
	if json.Unmarshal(body, &b) != nil || len(b.Term) == 0 {
		return 0
	}
	t, err := strconv.ParseUint(string(b.Term), 10, 64)
	if err != nil {
		return 0
	}
	return t
}

// compact returns raw without insignificant whitespace; null when empty.
func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return history.Null
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return json.RawMessage(buf.Bytes())
}

// isDialError reports whether err happened while connecting, before any
// byte of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// shortError strips the URL from an http.Client error and names timeouts.
func shortError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}
