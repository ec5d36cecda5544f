package workloads

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faultline/faultline/history"
)

// httpClient sends the http workload's requests for one worker. It is not
// safe for concurrent use (Run gives each worker its own).
//
// Outcomes:
//
//   - ok: the answer passed the endpoint's check (default: a status below
//     400); the completion's value is the op's with "status" added;
//   - fail: the answer did not pass (a 4xx/5xx, a status not in the
//     check's list, a body check), its error names the status and why; or
//     the request was certainly never sent (no connection could be made:
//     refused, a TLS handshake that failed, a timeout before connecting);
//   - info: a timeout, or a connection cut, once a connection was made and
//     the request may have been sent (or its answer's body was cut).
type httpClient struct {
	eps    []compiledEndpoint
	index  map[string]int
	envHdr [][]string // per endpoint, per header: the ${VAR}-expanded value ("" for templates)
	env    ClientEnv
	scheme string
	home   string // the home node's address ("" when it has none)
	tr     *http.Transport
	hc     *http.Client
	sb     strings.Builder
}

// newHTTPClient is the http workload's Workload.NewClient.
func newHTTPClient(p Params, env ClientEnv) (Client, error) {
	hp, ok := p.(*HTTPParams)
	if !ok {
		return nil, fmt.Errorf("workloads: http: parameters of type %T", p)
	}
	res, err := hp.resolve()
	if err != nil {
		return nil, fmt.Errorf("workloads: http: %w", err)
	}
	c := &httpClient{eps: hp.eps, index: map[string]int{}, env: env, scheme: hp.Scheme, home: env.Nodes[env.Home]}
	if c.scheme == "" {
		c.scheme = "http"
	}
	for i, e := range hp.eps {
		c.index[e.Name] = i
		vals := make([]string, len(e.headers))
		for j, h := range e.headers {
			if h.env {
				vals[j] = envVarRef.ReplaceAllStringFunc(h.value.src, func(m string) string { return res.env[m[2:len(m)-1]] })
			}
		}
		c.envHdr = append(c.envHdr, vals)
	}
	c.tr = hp.transport(res, env.Timeout)
	c.hc = &http.Client{
		Transport:     c.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// transportMu guards HTTPParams.tr.
var transportMu sync.Mutex

// transport returns the connection pool that every client built from p
// shares (made by the first, with its timeout bounding dials and TLS
// handshakes): a request takes whichever idle connection to its host there
// is, as with one net/http client used by many goroutines. At high rates
// that keeps far fewer connections busy, and costs much less CPU per
// request, than one pool per worker.
func (p *HTTPParams) transport(res *resolved, timeout time.Duration) *http.Transport {
	transportMu.Lock()
	defer transportMu.Unlock()
	if p.tr != nil {
		return p.tr
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: res.roots}
	if t := p.TLS; t != nil {
		tlsCfg.ServerName = t.ServerName
		tlsCfg.InsecureSkipVerify = t.InsecureSkipVerify
	}
	dialTimeout := timeout
	if dialTimeout <= 0 || dialTimeout > 5*time.Second {
		dialTimeout = 5 * time.Second
	}
	p.tr = &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: dialTimeout,
		MaxIdleConnsPerHost: 4096, // as many as requests in flight: none is closed after a burst
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return p.tr
}

// Close releases the idle connections of the clients' shared pool.
func (c *httpClient) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

func notSent(format string, args ...any) history.Outcome {
	return history.Outcome{Type: history.Fail, Error: "not sent: " + fmt.Sprintf(format, args...)}
}

// Do sends the request of op's endpoint with op's template values and
// judges the answer. See httpClient for the outcomes.
func (c *httpClient) Do(ctx context.Context, op history.Op) history.Outcome {
	i, ok := c.index[op.Key]
	if !ok || op.F != FRequest {
		return notSent("the http workload sends %q ops to its endpoints, not %q to %q", FRequest, op.F, op.Key)
	}
	e := &c.eps[i]
	data, err := templateData(op.Value)
	if err != nil {
		return notSent("the op's value is not a JSON object of template values")
	}
	raw, err := e.url.render(data, &c.sb)
	if err != nil {
		return notSent("url: %v", err)
	}
	u, err := requestURL(raw, c.scheme, c.home)
	if err != nil {
		return notSent("%v", err)
	}
	relative := strings.HasPrefix(raw, "/")
	node := ""
	if relative {
		if c.home == "" {
			return notSent("a relative URL, and home node %q has no address", c.env.Home)
		}
		node = c.env.Home
	}
	var body io.Reader
	if e.body.src != "" {
		b, err := e.body.render(data, &c.sb)
		if err != nil {
			return notSent("body: %v", err)
		}
		body = strings.NewReader(b)
	}
	if err := ctx.Err(); err != nil {
		return notSent("%v", err)
	}
	if c.env.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.env.Timeout)
		defer cancel()
	}
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected.Store(true) }})
	req, err := http.NewRequestWithContext(ctx, e.Method, "", body)
	if err != nil {
		return notSent("%v", err)
	}
	req.URL, req.Host = u, u.Host // parsed once, by requestURL
	for j, h := range e.headers {
		v := c.envHdr[i][j]
		if !h.env {
			if v, err = h.value.render(data, &c.sb); err != nil {
				return notSent("header %s: %v", h.name, err)
			}
		}
		if h.name == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(h.name, v)
	}
	if relative && c.env.Token != "" && !e.hasAuth {
		req.Header.Set("Authorization", "Bearer "+c.env.Token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		why := transportError(err, c.env.Timeout)
		if !connected.Load() {
			return history.Outcome{Type: history.Fail, Node: node, Error: "not sent: " + why}
		}
		return history.Outcome{Type: history.Info, Node: node, Error: why}
	}
	out := c.judge(e, resp)
	out.Node = node
	if out.Type == history.OK {
		out.Value = withStatus(op.Value, resp.StatusCode)
	}
	return out
}

// templateData decodes an op's value, a JSON object, into the values its
// templates see: numbers as json.Number (so seq prints as written),
// strings as strings. Objects of flat members, as Next writes them, are
// read directly; anything else goes through encoding/json.
func templateData(v []byte) (map[string]any, error) {
	if data, ok := flatObject(v); ok {
		return data, nil
	}
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if err := dec.Decode(&data); err != nil {
		return nil, err
	}
	if data == nil {
		return nil, errors.New("null")
	}
	return data, nil
}

// flatObject reads {"name":VALUE,...} where every name is a plain string
// (no escapes) and every VALUE an integer or a string without escapes;
// false for anything else.
func flatObject(v []byte) (map[string]any, bool) {
	if len(v) < 2 || v[0] != '{' || v[len(v)-1] != '}' {
		return nil, false
	}
	data := make(map[string]any, 4)
	rest := v[1 : len(v)-1]
	for len(rest) > 0 {
		name, after, ok := plainString(rest)
		if !ok || len(after) == 0 || after[0] != ':' {
			return nil, false
		}
		after = after[1:]
		if len(after) > 0 && after[0] == '"' {
			var s string
			if s, after, ok = plainString(after); !ok {
				return nil, false
			}
			data[name] = s
		} else {
			n := 0
			if len(after) > 0 && after[0] == '-' {
				n++
			}
			digits := n
			for n < len(after) && after[n] >= '0' && after[n] <= '9' {
				n++
			}
			if n == digits || (after[digits] == '0' && n > digits+1) {
				return nil, false // no digit, or a leading zero
			}
			data[name] = json.Number(after[:n])
			after = after[n:]
		}
		switch {
		case len(after) == 0:
			rest = nil
		case after[0] == ',':
			rest = after[1:]
			if len(rest) == 0 {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return data, true
}

// plainString reads a JSON string without escapes or control characters
// at the start of b and returns it and what follows.
func plainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c == '\\' || c < 0x20:
			return "", nil, false
		}
	}
	return "", nil, false
}

// judge reads resp's body and checks the answer against e's check.
func (c *httpClient) judge(e *compiledEndpoint, resp *http.Response) history.Outcome {
	defer resp.Body.Close()
	code := resp.StatusCode
	var buf []byte
	var err error
	ch := e.Check
	if ch != nil && (ch.BodyContains != "" || ch.JSONField != "") {
		buf, err = io.ReadAll(io.LimitReader(resp.Body, MaxCheckedBody+1))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return history.Outcome{Type: history.Info, Error: fmt.Sprintf("status %d, then the body was cut: %s", code, transportError(err, c.env.Timeout))}
	}
	if e.status != nil {
		if !e.status[code] {
			return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d (want %s)", code, statusList(ch.Status))}
		}
	} else if code >= 400 {
		return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d", code)}
	}
	if ch == nil {
		return history.Outcome{Type: history.OK}
	}
	if len(buf) > MaxCheckedBody {
		return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d: the body is larger than %d bytes, the most a check reads", code, MaxCheckedBody)}
	}
	if ch.BodyContains != "" && !bytes.Contains(buf, []byte(ch.BodyContains)) {
		return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d: the body lacks %q", code, ch.BodyContains)}
	}
	if ch.JSONField != "" {
		v, why := jsonField(buf, ch.JSONField)
		switch {
		case why != "":
			return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d: %s", code, why)}
		case e.equals != "":
			got, err := history.CanonicalJSON(v)
			if err != nil || got != e.equals {
				return history.Outcome{Type: history.Fail, Error: fmt.Sprintf("status %d: field %s is %s, want %s", code, ch.JSONField, shortText(string(v), 80), shortText(e.equals, 80))}
			}
		}
	}
	return history.Outcome{Type: history.OK}
}

// jsonField returns the value at a dotted path of a JSON body, or why
// there is none (not JSON, no such field, null).
func jsonField(body []byte, path string) (json.RawMessage, string) {
	cur := json.RawMessage(body)
	if !json.Valid(cur) {
		return nil, "the body is not JSON"
	}
	for _, part := range strings.Split(path, ".") {
		var obj map[string]json.RawMessage
		var arr []json.RawMessage
		switch {
		case json.Unmarshal(cur, &obj) == nil && obj != nil:
			v, ok := obj[part]
			if !ok {
				return nil, fmt.Sprintf("the JSON body has no field %s", path)
			}
			cur = v
		case json.Unmarshal(cur, &arr) == nil && arr != nil:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n >= len(arr) {
				return nil, fmt.Sprintf("the JSON body has no field %s (%q indexes an array of %d)", path, part, len(arr))
			}
			cur = arr[n]
		default:
			return nil, fmt.Sprintf("the JSON body has no field %s", path)
		}
	}
	if string(bytes.TrimSpace(cur)) == "null" {
		return nil, fmt.Sprintf("field %s of the JSON body is null", path)
	}
	return cur, ""
}

// withStatus returns the op's value (a JSON object) with "status" added.
func withStatus(v json.RawMessage, code int) json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) < 2 || v[len(v)-1] != '}' {
		return json.RawMessage(`{"status":` + strconv.Itoa(code) + `}`)
	}
	b := make([]byte, 0, len(v)+16)
	b = append(b, v[:len(v)-1]...)
	if len(bytes.TrimSpace(v[1:len(v)-1])) > 0 {
		b = append(b, ',')
	}
	b = append(b, `"status":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, '}')
}

func statusList(st []int) string {
	s := make([]string, len(st))
	for i, v := range st {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

func shortText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// transportError says what went wrong with a request, without its URL
// (the url.Error's text repeats it): a timeout by its bound.
func transportError(err error, timeout time.Duration) string {
	if errors.Is(err, context.DeadlineExceeded) {
		if timeout > 0 {
			return fmt.Sprintf("timeout after %s", timeout)
		}
		return "timeout"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
