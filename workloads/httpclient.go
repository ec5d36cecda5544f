package workloads

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/valyala/fasthttp"
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
//
// Requests go through fasthttp's client (github.com/valyala/fasthttp, the
// client of load generators such as bombardier): it sends and reads on the
// calling goroutine, where net/http hands every request to a writer and a
// reader goroutine per connection, and so costs about a third less CPU per
// request (BenchmarkHTTPOpenLoop). It never retries a request by itself,
// sends the path as written (no normalization) and adds no Content-Type.
type httpClient struct {
	eps    []compiledEndpoint
	index  map[string]int
	envHdr [][]string // per endpoint, per header: the ${VAR}-expanded value ("" for templates)
	env    ClientEnv
	scheme string
	home   string // the home node's address ("" when it has none)
	pool   *httpPool
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
	c.pool = hp.connPool(res, env.Timeout)
	return c, nil
}

// poolMu guards HTTPParams.pool.
var poolMu sync.Mutex

// httpPool is the connection pool that every client built from one
// HTTPParams shares: a request takes whichever idle connection to its host
// there is, as with one net/http client used by many goroutines. At high
// rates that keeps far fewer connections busy, and costs much less CPU per
// request, than one pool per worker. plain sends http:// URLs, secure
// https:// ones; each dials (and secure completes its TLS handshake) in
// its own dial function, so an error there is known to come before the
// request was sent (dialError).
type httpPool struct {
	plain, secure *fasthttp.Client
}

// dialError is an error of a dial or a TLS handshake: the request that
// needed the connection was never sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// connPool returns the pool that every client built from p shares (made by
// the first, with its timeout bounding dials and TLS handshakes).
func (p *HTTPParams) connPool(res *resolved, timeout time.Duration) *httpPool {
	poolMu.Lock()
	defer poolMu.Unlock()
	if p.pool != nil {
		return p.pool
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
	dialer := &net.Dialer{KeepAlive: 30 * time.Second}
	dial := func(addr string, d time.Duration) (net.Conn, error) {
		d = min(d, dialTimeout)
		if d <= 0 {
			d = dialTimeout
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, &dialError{err}
		}
		return conn, nil
	}
	dialTLS := func(addr string, d time.Duration) (net.Conn, error) {
		start := time.Now()
		conn, err := dial(addr, d)
		if err != nil {
			return nil, err
		}
		cfg := tlsCfg
		if cfg.ServerName == "" {
			cfg = tlsCfg.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(conn, cfg)
		left := max(min(d, dialTimeout)-time.Since(start), time.Millisecond)
		if d <= 0 {
			left = dialTimeout - time.Since(start)
		}
		ctx, cancel := context.WithTimeout(context.Background(), left)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &dialError{err}
		}
		return tc, nil
	}
	client := func(d fasthttp.DialFuncWithTimeout) *fasthttp.Client {
		return &fasthttp.Client{
			Name:                      "faultline",
			DialTimeout:               d,
			MaxConnsPerHost:           math.MaxInt32, // as many as requests in flight
			MaxIdleConnDuration:       30 * time.Second,
			MaxIdemponentCallAttempts: 1, // never a request the history does not show
			ReadBufferSize:            16 << 10,
			DisablePathNormalizing:    true,
			StreamResponseBody:        true,
		}
	}
	p.pool = &httpPool{plain: client(dial), secure: client(dialTLS)}
	return p.pool
}

// Close releases the idle connections of the clients' shared pool.
func (c *httpClient) Close() error {
	c.pool.plain.CloseIdleConnections()
	c.pool.secure.CloseIdleConnections()
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
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetNoDefaultContentType(true)
	req.Header.SetMethod(e.Method)
	req.SetRequestURI(u.String())
	if e.body.src != "" {
		b, err := e.body.render(data, &c.sb)
		if err != nil {
			return notSent("body: %v", err)
		}
		req.SetBodyString(b)
	}
	for j, h := range e.headers {
		v := c.envHdr[i][j]
		if !h.env {
			if v, err = h.value.render(data, &c.sb); err != nil {
				return notSent("header %s: %v", h.name, err)
			}
		}
		if h.name == "Host" {
			req.Header.SetHost(v)
			req.UseHostHeader = true
			continue
		}
		req.Header.Set(h.name, v)
	}
	if relative && c.env.Token != "" && !e.hasAuth {
		req.Header.Set("Authorization", "Bearer "+c.env.Token)
	}
	if err := ctx.Err(); err != nil {
		return notSent("%v", err)
	}
	deadline, bounded := ctx.Deadline()
	if c.env.Timeout > 0 {
		if d := time.Now().Add(c.env.Timeout); !bounded || d.Before(deadline) {
			deadline, bounded = d, true
		}
	}
	if !bounded {
		deadline = time.Now().Add(100 * 365 * 24 * time.Hour)
	}
	fc := c.pool.plain
	if u.Scheme == "https" {
		fc = c.pool.secure
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := fc.DoDeadline(req, resp, deadline); err != nil {
		why := transportError(err, c.env.Timeout)
		var de *dialError
		if errors.As(err, &de) || errors.Is(err, fasthttp.ErrNoFreeConns) {
			return history.Outcome{Type: history.Fail, Node: node, Error: "not sent: " + why}
		}
		return history.Outcome{Type: history.Info, Node: node, Error: why}
	}
	out := c.judge(e, resp)
	out.Node = node
	if out.Type == history.OK {
		out.Value = withStatus(op.Value, resp.StatusCode())
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
func (c *httpClient) judge(e *compiledEndpoint, resp *fasthttp.Response) history.Outcome {
	body := resp.BodyStream()
	if body == nil {
		body = bytes.NewReader(resp.Body())
	} else {
		defer resp.CloseBodyStream()
	}
	code := resp.StatusCode()
	var buf []byte
	var err error
	ch := e.Check
	if ch != nil && (ch.BodyContains != "" || ch.JSONField != "") {
		buf, err = io.ReadAll(io.LimitReader(body, MaxCheckedBody+1))
		if err == nil {
			_, err = io.Copy(io.Discard, body)
		}
	} else {
		_, err = io.Copy(io.Discard, body)
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
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		if timeout > 0 {
			return fmt.Sprintf("timeout after %s", timeout)
		}
		return "timeout"
	}
	if errors.Is(err, fasthttp.ErrConnectionClosed) {
		return "the connection was closed before the answer (EOF)"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
