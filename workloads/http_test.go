package workloads

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/fielderr"
)

// seen is one request as the test server received it.
type seen struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// recorder is a real HTTP server (on loopback) that keeps every request
// and answers as its handler says.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newRecorder(t *testing.T, tlsServer bool, answer func(w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(b), Header: r.Header.Clone()})
		rec.mu.Unlock()
		if answer != nil {
			answer(w, r)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	})
	rec.Server = httptest.NewUnstartedServer(h)
	rec.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS tests' refused handshakes
	if tlsServer {
		rec.StartTLS()
	} else {
		rec.Start()
	}
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

func (r *recorder) addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(r.URL, "http://"), "https://")
}

func httpParams(t *testing.T, p *HTTPParams) *HTTPParams {
	t.Helper()
	if p.Keys == 0 {
		p.Keys = 1000
	}
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	return p
}

func httpClientFor(t *testing.T, p *HTTPParams, env ClientEnv) *httpClient {
	t.Helper()
	if env.Timeout == 0 {
		env.Timeout = 2 * time.Second
	}
	c, err := newHTTPClient(p, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.(io.Closer).Close() })
	return c.(*httpClient)
}

func mustNew(t *testing.T, p *HTTPParams) *httpRun {
	t.Helper()
	in, err := p.New()
	if err != nil {
		t.Fatal(err)
	}
	return in.(*httpRun)
}

func TestHTTPParamsCheck(t *testing.T) {
	for _, c := range []struct {
		name  string
		p     HTTPParams
		field string
		text  string
	}{
		{"no endpoints", HTTPParams{Keys: 1}, "endpoints", "at least one"},
		{"bad name", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a b", URL: "/"}}}, "endpoints[0].name", "letters"},
		{"twice", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/"}, {Name: "a", URL: "/"}}}, "endpoints[1].name", "twice"},
		{"url neither path nor absolute", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "x/y"}}}, "endpoints[0].url", "relative to the node"},
		{"url ftp", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "ftp://h/x"}}}, "endpoints[0].url", "http://"},
		{"unknown template value", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/{{.nope}}"}}}, "endpoints[0].url", "{{.nope}}"},
		{"bad template", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/{{.seq"}}}, "endpoints[0].url", "template"},
		{"env and template", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Headers: map[string]string{"X": "${A}{{.seq}}"}}}}, "endpoints[0].headers.X", "not both"},
		{"bad header name", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Headers: map[string]string{"X Y": "1"}}}}, "endpoints[0].headers.X Y", "header name"},
		{"negative weight", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Weight: -1}}}, "endpoints[0].weight", "weight"},
		{"bad method", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Method: "GE T"}}}, "endpoints[0].method", "method"},
		{"bad status", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Check: &HTTPCheck{Status: []int{99}}}}}, "endpoints[0].check.status[0]", "100 to 599"},
		{"equals without field", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Check: &HTTPCheck{JSONEquals: 1}}}}, "endpoints[0].check.json_equals", "json_field"},
		{"bad json path", HTTPParams{Keys: 1, Endpoints: []Endpoint{{Name: "a", URL: "/", Check: &HTTPCheck{JSONField: "a..b"}}}}, "endpoints[0].check.json_field", "dotted"},
		{"list named seq", HTTPParams{Keys: 1, Lists: map[string][]string{"seq": {"x"}}, Endpoints: []Endpoint{{Name: "a", URL: "/"}}}, "lists.seq", "other than seq"},
		{"empty list", HTTPParams{Keys: 1, Lists: map[string][]string{"l": nil}, Endpoints: []Endpoint{{Name: "a", URL: "/"}}}, "lists.l", "empty"},
		{"scheme", HTTPParams{Keys: 1, Scheme: "ftp", Endpoints: []Endpoint{{Name: "a", URL: "/"}}}, "scheme", "https"},
		{"keys", HTTPParams{Keys: 0, Endpoints: []Endpoint{{Name: "a", URL: "/"}}}, "keys", "keys"},
		{"ca and skip verify", HTTPParams{Keys: 1, TLS: &HTTPTLS{CA: "x.pem", InsecureSkipVerify: true}, Endpoints: []Endpoint{{Name: "a", URL: "/"}}}, "tls", "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.p.Check()
			var fe *fielderr.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Check: %v, want an error about field %s", err, c.field)
			}
			if fe.Field != c.field || !strings.Contains(fe.Msg, c.text) {
				t.Errorf("Check: field %q: %s; want field %q saying %q", fe.Field, fe.Msg, c.field, c.text)
			}
		})
	}
	ok := HTTPParams{Keys: 5, Lists: map[string][]string{"color": {"red"}}, Endpoints: []Endpoint{
		{Name: "a", URL: "/x/{{.key}}?c={{.color | urlquery}}", Headers: map[string]string{"X-Seq": "{{.seq}}", "Authorization": "Bearer ${SOME_TOKEN}"}, Body: `{"c": {{json .color}}}`},
		{Name: "b.c-d_e", URL: "https://example.com/{{.seq}}", Weight: 0.5, Headers: map[string]string{"X-A-Header-Name-Longer-Than-32-Characters": "1"}},
	}}
	if err := ok.Check(); err != nil {
		t.Fatalf("a valid scenario's parameters: %v", err)
	}
	if got := ok.eps[0].uses; strings.Join(got, ",") != "color,key" {
		t.Errorf("endpoint a uses %v, want [color key] (seq is always recorded)", got)
	}
	if ok.eps[1].Weight != 0.5 || ok.eps[0].Weight != 1 || ok.eps[0].Method != "GET" {
		t.Errorf("defaults: weight %v and %v, method %s", ok.eps[0].Weight, ok.eps[1].Weight, ok.eps[0].Method)
	}
}

// TestHTTPTemplating sends every op the generator makes to a real server
// and checks that the request it received is the endpoint's, rendered
// with the values the op records (and only those).
func TestHTTPTemplating(t *testing.T) {
	srv := newRecorder(t, false, nil)
	p := httpParams(t, &HTTPParams{Keys: 7, Lists: map[string][]string{"color": {"red", "green & blue", `q"uote`}}, Endpoints: []Endpoint{
		{Name: "get", URL: "/items/{{.key}}?n={{.seq}}&c={{urlquery .color}}", Headers: map[string]string{"X-Seq": "{{.seq}}", "Accept": "application/json"}},
		{Name: "post", Method: "POST", URL: srv.URL + "/abs", Body: `{"color": {{json .color}}, "seq": {{.seq}}}`},
	}})
	g := mustNew(t, p)
	c := httpClientFor(t, p, ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1"})
	r := rand.New(rand.NewPCG(1, 2))
	var ops []history.Op
	for range 60 {
		op := g.Next(r, 0)
		out := c.Do(context.Background(), op)
		if out.Type != history.OK {
			t.Fatalf("%s %s: %s %s", op.Key, op.Value, out.Type, out.Error)
		}
		if want := map[string]string{"get": "n1", "post": ""}[op.Key]; out.Node != want {
			t.Errorf("%s answered by node %q, want %q (absolute URLs name no node)", op.Key, out.Node, want)
		}
		var v map[string]any
		if err := json.Unmarshal(out.Value, &v); err != nil || v["status"] != 200.0 {
			t.Errorf("completion value %s: want the op's values and status 200", out.Value)
		}
		ops = append(ops, op)
	}
	reqs := srv.requests()
	if len(reqs) != len(ops) {
		t.Fatalf("%d requests for %d ops", len(reqs), len(ops))
	}
	kinds := map[string]int{}
	for i, op := range ops {
		var v struct {
			Seq   int64   `json:"seq"`
			Key   *string `json:"key"`
			Color *string `json:"color"`
		}
		if err := json.Unmarshal(op.Value, &v); err != nil {
			t.Fatal(err)
		}
		if v.Seq != int64(i+1) {
			t.Errorf("op %d has seq %d, want %d", i, v.Seq, i+1)
		}
		kinds[op.Key]++
		q := reqs[i]
		switch op.Key {
		case "get":
			if v.Key == nil || v.Color == nil {
				t.Fatalf("op %s records no key or color", op.Value)
			}
			if q.Method != "GET" || q.Path != "/items/"+*v.Key || q.Header.Get("X-Seq") != strconv.FormatInt(v.Seq, 10) || q.Header.Get("Accept") != "application/json" {
				t.Errorf("op %s: request %s %s?%s X-Seq %q", op.Value, q.Method, q.Path, q.Query, q.Header.Get("X-Seq"))
			}
			wantQuery := fmt.Sprintf("n=%d&c=%s", v.Seq, urlQuery(*v.Color))
			if q.Query != wantQuery {
				t.Errorf("query %q, want %q", q.Query, wantQuery)
			}
		case "post":
			if v.Key != nil {
				t.Errorf("op %s records a key its templates do not use", op.Value)
			}
			var body struct {
				Color string `json:"color"`
				Seq   int64  `json:"seq"`
			}
			if err := json.Unmarshal([]byte(q.Body), &body); err != nil || v.Color == nil || body.Color != *v.Color || body.Seq != v.Seq || q.Path != "/abs" || q.Method != "POST" {
				t.Errorf("op %s: request %s %s body %q (%v)", op.Value, q.Method, q.Path, q.Body, err)
			}
		}
	}
	if kinds["get"] == 0 || kinds["post"] == 0 {
		t.Errorf("endpoints used: %v", kinds)
	}
}

func urlQuery(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", " ", "+", `"`, "%22").Replace(s)
}

// TestHTTPWeights: the endpoints' shares of a seeded run follow their
// weights, and the same seed gives the same sequence of ops.
func TestHTTPWeights(t *testing.T) {
	p := httpParams(t, &HTTPParams{Endpoints: []Endpoint{
		{Name: "a", URL: "/a"}, {Name: "b", URL: "/b", Weight: 2}, {Name: "c", URL: "/c/{{.key}}", Weight: 7},
	}})
	seq := func() []string {
		g := mustNew(t, p)
		r := rand.New(rand.NewPCG(42, 0))
		out := make([]string, 30000)
		for i := range out {
			op := g.Next(r, 0)
			out[i] = op.Key + string(op.Value)
		}
		return out
	}
	first, second := seq(), seq()
	n := map[string]int{}
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("op %d differs for the same seed: %s, %s", i, first[i], second[i])
		}
		n[first[i][:1]]++
	}
	for name, w := range map[string]float64{"a": 0.1, "b": 0.2, "c": 0.7} {
		got := float64(n[name]) / float64(len(first))
		if d := got - w; d > 0.01 || d < -0.01 {
			t.Errorf("endpoint %s: share %.3f, want %.2f ± 0.01 (counts %v)", name, got, w, n)
		}
	}
}

// TestHTTPChecks: each kind of response check against a real server, with
// the outcome and its error.
func TestHTTPChecks(t *testing.T) {
	srv := newRecorder(t, false, func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		if code == 0 {
			code = 200
		}
		w.WriteHeader(code)
		io.WriteString(w, r.URL.Query().Get("body"))
	})
	env := ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1"}
	for _, c := range []struct {
		name  string
		url   string
		check *HTTPCheck
		want  history.Type
		err   string
	}{
		{"200 default", "/?code=200", nil, history.OK, ""},
		{"302 default", "/?code=302", nil, history.OK, ""},
		{"404 default", "/?code=404", nil, history.Fail, "status 404"},
		{"503 default", "/?code=503", nil, history.Fail, "status 503"},
		{"201 not listed", "/?code=201", &HTTPCheck{Status: []int{200}}, history.Fail, "status 201 (want 200)"},
		{"404 listed", "/?code=404", &HTTPCheck{Status: []int{200, 404}}, history.OK, ""},
		{"body contains", "/?body=all good", &HTTPCheck{BodyContains: "good"}, history.OK, ""},
		{"body lacks", "/?body=all bad", &HTTPCheck{BodyContains: "good"}, history.Fail, `status 200: the body lacks "good"`},
		{"body check on a 500", "/?code=500&body=good", &HTTPCheck{BodyContains: "good"}, history.Fail, "status 500"},
		{"json field", `/?body={"data":{"items":[{"id":7}]}}`, &HTTPCheck{JSONField: "data.items.0.id"}, history.OK, ""},
		{"json field absent", `/?body={"data":{}}`, &HTTPCheck{JSONField: "data.items"}, history.Fail, "no field data.items"},
		{"json field null", `/?body={"a":null}`, &HTTPCheck{JSONField: "a"}, history.Fail, "null"},
		{"json index out", `/?body={"a":[1]}`, &HTTPCheck{JSONField: "a.3"}, history.Fail, "array of 1"},
		{"not json", `/?body=hello`, &HTTPCheck{JSONField: "a"}, history.Fail, "not JSON"},
		{"json equals", `/?body={"a":{"b":1.0,"c":"x"}}`, &HTTPCheck{JSONField: "a", JSONEquals: map[string]any{"c": "x", "b": 1}}, history.OK, ""},
		{"json differs", `/?body={"a":2}`, &HTTPCheck{JSONField: "a", JSONEquals: 3}, history.Fail, "field a is 2, want 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			u := c.url
			if i := strings.Index(u, "body="); i >= 0 {
				u = u[:i] + "body=" + url.QueryEscape(u[i+5:])
			}
			p := httpParams(t, &HTTPParams{Endpoints: []Endpoint{{Name: "e", URL: u, Check: c.check}}})
			cl := httpClientFor(t, p, env)
			out := cl.Do(context.Background(), mustNew(t, p).Next(rand.New(rand.NewPCG(1, 1)), 0))
			if out.Type != c.want || (c.err != "" && !strings.Contains(out.Error, c.err)) {
				t.Errorf("%s %q, want %s %q", out.Type, out.Error, c.want, c.err)
			}
		})
	}
}

// TestHTTPOutcomes: a request that was never sent is fail; one that may
// have been received and got no complete answer is info.
func TestHTTPOutcomes(t *testing.T) {
	// Nothing listens here.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	srv := newRecorder(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/cut": // read the request, then drop the connection
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		case "/short-body": // promise 100 bytes, send 5, drop
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			io.WriteString(w, "hello")
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}
	})
	p := httpParams(t, &HTTPParams{Endpoints: []Endpoint{{Name: "e", URL: "/hang"}}})
	op := func(string) history.Op {
		return history.Op{F: FRequest, Key: "e", Value: json.RawMessage(`{"seq":1}`)}
	}
	for _, c := range []struct {
		name, node, path string
		want             history.Type
		err              string
	}{
		{"refused", refused, "", history.Fail, "not sent"},
		{"timeout once sent", srv.addr(), "/hang", history.Info, "timeout after 300ms"},
		{"connection cut after the request", srv.addr(), "/cut", history.Info, "EOF"},
		{"body cut", srv.addr(), "/short-body", history.Info, "the body was cut"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pp := *p
			pp.Endpoints = []Endpoint{{Name: "e", URL: c.path}}
			if c.path == "" {
				pp.Endpoints[0].URL = "/"
			}
			pp.eps = nil
			if err := pp.Check(); err != nil {
				t.Fatal(err)
			}
			cl := httpClientFor(t, &pp, ClientEnv{Nodes: map[string]string{"n1": c.node}, Home: "n1", Timeout: 300 * time.Millisecond})
			out := cl.Do(context.Background(), op(c.path))
			if out.Type != c.want || !strings.Contains(out.Error, c.err) || out.Node != "n1" {
				t.Errorf("%s %q node %q, want %s %q by n1", out.Type, out.Error, out.Node, c.want, c.err)
			}
		})
	}
	// A cancelled context, or an op of another workload, is never sent.
	cl := httpClientFor(t, p, ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if out := cl.Do(ctx, op("")); out.Type != history.Fail || !strings.HasPrefix(out.Error, "not sent") {
		t.Errorf("cancelled: %s %q", out.Type, out.Error)
	}
	if out := cl.Do(context.Background(), history.Op{F: "get", Key: "k1"}); out.Type != history.Fail || !strings.HasPrefix(out.Error, "not sent") {
		t.Errorf("a get: %s %q", out.Type, out.Error)
	}
}

// TestHTTPTLS: https to a real TLS server, verified against a CA file,
// refused (never sent) without it, and accepted unverified only when asked.
func TestHTTPTLS(t *testing.T) {
	srv := newRecorder(t, true, nil)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1"}
	for _, c := range []struct {
		name   string
		p      HTTPParams
		want   history.Type
		errHas string
	}{
		{"relative https with the CA", HTTPParams{Scheme: "https", TLS: &HTTPTLS{CA: ca}, Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.OK, ""},
		{"absolute https with the CA", HTTPParams{TLS: &HTTPTLS{CA: ca}, Endpoints: []Endpoint{{Name: "e", URL: srv.URL + "/a"}}}, history.OK, ""},
		{"the system's roots", HTTPParams{Scheme: "https", Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.Fail, "not sent"},
		{"a name the certificate lacks", HTTPParams{Scheme: "https", TLS: &HTTPTLS{CA: ca, ServerName: "other.test"}, Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.Fail, "other.test"},
		{"the name it has", HTTPParams{Scheme: "https", TLS: &HTTPTLS{CA: ca, ServerName: "example.com"}, Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.OK, ""},
		{"skip verify", HTTPParams{Scheme: "https", TLS: &HTTPTLS{InsecureSkipVerify: true}, Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.OK, ""},
		{"plain http to a TLS server", HTTPParams{Endpoints: []Endpoint{{Name: "e", URL: "/r"}}}, history.Fail, "status 400"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := httpParams(t, &c.p)
			out := httpClientFor(t, p, env).Do(context.Background(), mustNew(t, p).Next(rand.New(rand.NewPCG(1, 1)), 0))
			if out.Type != c.want || !strings.Contains(out.Error, c.errHas) {
				t.Errorf("%s %q, want %s %q", out.Type, out.Error, c.want, c.errHas)
			}
		})
	}
	bad := httpParams(t, &HTTPParams{TLS: &HTTPTLS{CA: filepath.Join(t.TempDir(), "none.pem")}, Endpoints: []Endpoint{{Name: "e", URL: "/"}}})
	if _, err := bad.New(); err == nil || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("a CA file that does not exist: New gave %v", err)
	}
}

// TestHTTPSecretHeaders: a header value from the environment reaches the
// server and nothing the workload records; the run's token goes to the
// nodes only, and not over an endpoint's own Authorization.
func TestHTTPSecretHeaders(t *testing.T) {
	const secret = "s3cr3t-Zq8v-never-recorded"
	t.Setenv("FAULTLINE_TEST_API_KEY", secret)
	srv := newRecorder(t, false, nil)
	other := newRecorder(t, false, nil)
	p := httpParams(t, &HTTPParams{Endpoints: []Endpoint{
		{Name: "keyed", URL: "/k", Headers: map[string]string{"X-Api-Key": "${FAULTLINE_TEST_API_KEY}"}},
		{Name: "own-auth", URL: "/o", Headers: map[string]string{"Authorization": "Basic ${FAULTLINE_TEST_API_KEY}"}},
		{Name: "elsewhere", URL: other.URL + "/e"},
	}})
	var hist bytes.Buffer
	rec, err := history.NewRecorder(&hist, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := mustNew(t, p)
	st, err := Run(context.Background(), Config{
		Duration: 300 * time.Millisecond, Concurrency: 2, Seed: 3, Generator: in, Recorder: rec,
		NewClient: func(int) (Client, error) {
			return newHTTPClient(p, ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1", Timeout: time.Second, Token: "run-token"})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec.Close()
	if st.OK != st.Ops || st.Ops < 10 {
		t.Fatalf("%d ops, %d ok", st.Ops, st.OK)
	}
	if bytes.Contains(hist.Bytes(), []byte(secret)) || bytes.Contains(hist.Bytes(), []byte("run-token")) {
		t.Errorf("the history holds a secret")
	}
	for _, q := range srv.requests() {
		switch q.Path {
		case "/k":
			if q.Header.Get("X-Api-Key") != secret || q.Header.Get("Authorization") != "Bearer run-token" {
				t.Errorf("/k: X-Api-Key %q, Authorization %q", q.Header.Get("X-Api-Key"), q.Header.Get("Authorization"))
			}
		case "/o":
			if q.Header.Get("Authorization") != "Basic "+secret {
				t.Errorf("/o: Authorization %q, want the endpoint's own", q.Header.Get("Authorization"))
			}
		}
	}
	for _, q := range other.requests() {
		if q.Header.Get("Authorization") != "" {
			t.Errorf("an absolute URL got Authorization %q: the run's token goes to its nodes only", q.Header.Get("Authorization"))
		}
	}
	if len(other.requests()) == 0 || len(srv.requests()) == 0 {
		t.Errorf("requests: %d to the node, %d elsewhere", len(srv.requests()), len(other.requests()))
	}
	os.Unsetenv("FAULTLINE_TEST_API_KEY")
	_, err = p.New()
	if err == nil || !strings.Contains(err.Error(), "FAULTLINE_TEST_API_KEY") || strings.Contains(err.Error(), secret) {
		t.Errorf("unset variable: New gave %v", err)
	}
}

// TestHTTPRunByEndpoint: an open-loop run keeps each endpoint's counts and
// histograms apart, and they add up to the totals.
func TestHTTPRunByEndpoint(t *testing.T) {
	srv := newRecorder(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(20 * time.Millisecond)
		}
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
		}
	})
	p := httpParams(t, &HTTPParams{Endpoints: []Endpoint{{Name: "fast", URL: "/fast", Weight: 2}, {Name: "slow", URL: "/slow"}, {Name: "bad", URL: "/bad"}}})
	st, evs := record(t, context.Background(), Config{
		Duration: time.Second, Rate: 200, Concurrency: 16, Seed: 5, Generator: mustNew(t, p),
		NewClient: func(int) (Client, error) {
			return newHTTPClient(p, ClientEnv{Nodes: map[string]string{"n1": srv.addr()}, Home: "n1", Timeout: time.Second})
		},
	})
	checkHistory(t, evs)
	var ops, ok, fail int64
	for _, name := range []string{"fast", "slow", "bad"} {
		c := st.ByKey[name]
		if c == nil || c.Ops == 0 || c.Latency.TotalCount() != c.Ops || c.Service.TotalCount() != c.Ops {
			t.Fatalf("endpoint %s: %+v", name, c)
		}
		ops, ok, fail = ops+c.Ops, ok+c.OK, fail+c.Fail
	}
	if ops != st.Ops || ok != st.OK || fail != st.Fail || st.ByKey["bad"].Fail != st.ByKey["bad"].Ops {
		t.Errorf("by endpoint: %d ops %d ok %d fail; totals %d %d %d", ops, ok, fail, st.Ops, st.OK, st.Fail)
	}
	if fast, slow := st.ByKey["fast"].Service.ValueAtQuantile(50), st.ByKey["slow"].Service.ValueAtQuantile(50); slow < 20000 || fast >= 20000 {
		t.Errorf("median service time: fast %d µs, slow %d µs (slow sleeps 20 ms)", fast, slow)
	}
	for _, e := range evs {
		if e.Process.IsClient() && (e.F != FRequest || st.ByKey[e.Key] == nil) {
			t.Fatalf("event %+v: want f request on an endpoint", e)
		}
	}
}

// templateData's direct path reads what Next writes exactly as
// encoding/json would, and leaves everything else to it.
func TestTemplateData(t *testing.T) {
	for _, v := range []string{
		`{"seq":1}`, `{"seq":12345678901234567,"color":"red","key":"k7"}`, `{"seq":-3,"s":""}`,
		`{"s":"caf\u00e9"}`, `{"s":"a\"b"}`, `{"z":0,"m":-10}`, `{"n":1.5}`, `{"n":1e3}`, `{"o":{"a":1}}`, `{"b":true}`, `{ "seq": 1 }`, `{}`,
	} {
		got, err := templateData([]byte(v))
		if err != nil {
			t.Errorf("%s: %v", v, err)
			continue
		}
		var want map[string]any
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		dec.Decode(&want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: %v, want %v", v, got, want)
		}
	}
	for _, v := range []string{``, `null`, `[1]`, `{"a":}`, `{"a":1,}`, `{"a" 1}`, `{"a":-}`, `{"a":1-2}`, `{"a":01}`} {
		if got, err := templateData([]byte(v)); err == nil {
			t.Errorf("%q: %v, want an error", v, got)
		}
	}
}
