package httpkv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/freeport"
	"github.com/faultline/faultline/targets"
)

// server is a real HTTP server on loopback whose answers a test scripts.
type server struct {
	*httptest.Server
	hits atomic.Int64
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) addr() string { return strings.TrimPrefix(s.URL, "http://") }

func reply(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func newClient(t *testing.T, nodes map[string]string, home string, o Options) *Client {
	t.Helper()
	c, err := New(nodes, home, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func closedAddr(t *testing.T) string {
	t.Helper()
	// A port outside the ephemeral range that nothing listens on: a port
	// from :0 could be taken by another test's outgoing connection.
	ports, err := freeport.Take(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}

var (
	get = history.Op{F: "get", Key: "k"}
	put = history.Op{F: "put", Key: "k", Value: json.RawMessage(`7`)}
	cas = history.Op{F: "cas", Key: "k", Value: json.RawMessage(`{"from":1,"to":2}`)}
)

func TestMapping(t *testing.T) {
	cases := []struct {
		name    string
		op      history.Op
		handler http.HandlerFunc
		want    history.Outcome
	}{
		{"get value", get, reply(200, `{"value": {"a": 1}}`), history.Outcome{Type: history.OK, Value: json.RawMessage(`{"a":1}`), Node: "a"}},
		{"get null", get, reply(200, `{"value":null}`), history.Outcome{Type: history.OK, Value: history.Null, Node: "a"}},
		{"get null body", get, reply(200, `null`), history.Outcome{Type: history.Info, Error: `get: a 200 body without a "value" member "null"`, Node: "a"}},
		{"get other spelling", get, reply(200, `{"Value":3}`), history.Outcome{Type: history.Info, Error: `get: a 200 body without a "value" member "{\"Value\":3}"`, Node: "a"}},
		{"definite mismatch text, not a 409", cas, reply(503, `{"error":"mismatch","definite":true}`), history.Outcome{Type: history.Fail, Error: "http 503: mismatch", Node: "a"}},
		{"get bad body", get, reply(200, `nope`), history.Outcome{Type: history.Info, Error: `get: a 200 body without a "value" member "nope"`, Node: "a"}},
		{"put ok", put, reply(200, `{}`), history.Outcome{Type: history.OK, Node: "a"}},
		{"cas ok", cas, reply(200, `{}`), history.Outcome{Type: history.OK, Node: "a"}},
		{"cas mismatch", cas, reply(409, `{"error":"mismatch"}`), history.Outcome{Type: history.Fail, Error: "mismatch", Node: "a"}},
		{"definite, no leader", put, reply(503, `{"error":"no leader","definite":true}`), history.Outcome{Type: history.Fail, Error: "http 503: no leader", Node: "a"}},
		{"definite, unknown leader", put, reply(503, `{"error":"x","definite":true,"leader":"zz"}`), history.Outcome{Type: history.Fail, Error: "http 503: x", Node: "a"}},
		{"indefinite", put, reply(504, `{"error":"timed out","definite":false,"leader":"b"}`), history.Outcome{Type: history.Info, Error: "http 504: timed out", Node: "a"}},
		{"5xx no body", put, reply(502, ``), history.Outcome{Type: history.Info, Error: "http 502: ", Node: "a"}},
		{"4xx no body", put, reply(404, `not found`), history.Outcome{Type: history.Fail, Error: "http 404: not found", Node: "a"}},
		{"get with term", get, reply(200, `{"value":1,"term":4}`), history.Outcome{Type: history.OK, Value: json.RawMessage(`1`), Node: "a", Term: 4}},
		{"put with term", put, reply(200, `{"term":9}`), history.Outcome{Type: history.OK, Node: "a", Term: 9}},
		{"mismatch with term", cas, reply(409, `{"error":"mismatch","term":3}`), history.Outcome{Type: history.Fail, Error: "mismatch", Node: "a", Term: 3}},
		{"term not an integer", put, reply(200, `{"term":"4"}`), history.Outcome{Type: history.OK, Node: "a"}},
		{"negative term", put, reply(200, `{"term":-4}`), history.Outcome{Type: history.OK, Node: "a"}},
		{"term on an error is not an answer's", put, reply(503, `{"error":"x","definite":true,"term":5}`), history.Outcome{Type: history.Fail, Error: "http 503: x", Node: "a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, tc.handler)
			c := newClient(t, map[string]string{"a": s.addr()}, "a", Options{})
			got := c.Do(context.Background(), tc.op)
			if got.Type != tc.want.Type || got.Error != tc.want.Error || got.Node != tc.want.Node || got.Term != tc.want.Term || string(got.Value) != string(tc.want.Value) {
				t.Fatalf("got %+v (value %s), want %+v (value %s)", got, got.Value, tc.want, tc.want.Value)
			}
		})
	}
}

func TestRequestEncoding(t *testing.T) {
	var seen []string
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, r.Method+" "+r.URL.EscapedPath()+" "+string(b))
		io.WriteString(w, `{}`)
	})
	c := newClient(t, map[string]string{"a": s.addr()}, "a", Options{})
	for _, op := range []history.Op{
		{F: "put", Key: "a/b c", Value: json.RawMessage(`"x"`)},
		{F: "cas", Key: "k", Value: json.RawMessage(`{"to": 2, "from": null}`)},
	} {
		if out := c.Do(context.Background(), op); out.Type != history.OK {
			t.Fatalf("%v: %+v", op, out)
		}
	}
	want := []string{
		`PUT /kv/a%2Fb%20c {"value":"x"}`,
		`POST /kv/k/cas {"from":null,"to":2}`,
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	for _, op := range []history.Op{{F: "cas", Key: "k", Value: json.RawMessage(`{"from":1}`)}, {F: "append", Key: "k"}, {F: "put", Key: "k"}} {
		if out := c.Do(context.Background(), op); out.Type != history.Fail {
			t.Fatalf("%v: want fail before sending, got %+v", op, out)
		}
	}
	if len(seen) != 2 {
		t.Fatalf("invalid ops were sent: %v", seen)
	}
}

func TestRedirect(t *testing.T) {
	b := newServer(t, reply(200, `{"value":5}`))
	a := newServer(t, reply(503, `{"error":"not the leader","definite":true,"leader":"b"}`))
	c := newClient(t, map[string]string{"a": a.addr(), "b": b.addr()}, "a", Options{})
	got := c.Do(context.Background(), get)
	if got.Type != history.OK || string(got.Value) != "5" || got.Node != "b" {
		t.Fatalf("got %+v", got)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Fatalf("hits a=%d b=%d, want 1 and 1", a.hits.Load(), b.hits.Load())
	}
	// The next op starts at home again.
	c.Do(context.Background(), get)
	if a.hits.Load() != 2 {
		t.Fatalf("second op did not start at home: hits a=%d", a.hits.Load())
	}
}

func TestRedirectLimit(t *testing.T) {
	var a, b *server
	a = newServer(t, reply(503, `{"error":"ask b","definite":true,"leader":"b"}`))
	b = newServer(t, reply(503, `{"error":"ask a","definite":true,"leader":"a"}`))
	nodes := map[string]string{"a": a.addr(), "b": b.addr()}
	c := newClient(t, nodes, "a", Options{MaxRedirects: 3})
	got := c.Do(context.Background(), put)
	if got.Type != history.Fail || got.Node != "b" || got.Error != "http 503: ask a" {
		t.Fatalf("got %+v", got)
	}
	if n := a.hits.Load() + b.hits.Load(); n != 4 {
		t.Fatalf("%d requests, want 1 + 3 redirects", n)
	}
	c0 := newClient(t, nodes, "a", Options{MaxRedirects: -1})
	if got := c0.Do(context.Background(), put); got.Type != history.Fail || got.Node != "a" {
		t.Fatalf("no redirects: got %+v", got)
	}
}

func TestConnectionFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		c := newClient(t, map[string]string{"a": closedAddr(t)}, "a", Options{})
		got := c.Do(context.Background(), put)
		if got.Type != history.Fail || !strings.HasPrefix(got.Error, "not sent") || got.Node != "a" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("redirect to a dead leader", func(t *testing.T) {
		a := newServer(t, reply(503, `{"error":"not the leader","definite":true,"leader":"b"}`))
		c := newClient(t, map[string]string{"a": a.addr(), "b": closedAddr(t)}, "a", Options{})
		got := c.Do(context.Background(), put)
		if got.Type != history.Fail || got.Node != "b" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("cut after request", func(t *testing.T) {
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		c := newClient(t, map[string]string{"a": s.addr()}, "a", Options{})
		if got := c.Do(context.Background(), put); got.Type != history.Info {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		defer close(release)
		c := newClient(t, map[string]string{"a": s.addr()}, "a", Options{Timeout: 100 * time.Millisecond})
		got := c.Do(context.Background(), cas)
		if got.Type != history.Info || got.Error != "timeout" {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("context already done", func(t *testing.T) {
		s := newServer(t, reply(200, `{}`))
		c := newClient(t, map[string]string{"a": s.addr()}, "a", Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if got := c.Do(ctx, put); got.Type != history.Fail || s.hits.Load() != 0 {
			t.Fatalf("got %+v, hits %d", got, s.hits.Load())
		}
	})
}

func TestNewRejectsUnknownHome(t *testing.T) {
	if _, err := New(map[string]string{"a": "127.0.0.1:1"}, "b", Options{}); err == nil {
		t.Fatal("New accepted a home node that is not in the node map")
	}
}

func TestKeepAlive(t *testing.T) {
	var conns atomic.Int64
	s := httptest.NewUnstartedServer(reply(200, `{}`))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	s.Start()
	defer s.Close()
	c := newClient(t, map[string]string{"a": strings.TrimPrefix(s.URL, "http://")}, "a", Options{})
	for i := 0; i < 20; i++ {
		if got := c.Do(context.Background(), put); got.Type != history.OK {
			t.Fatalf("op %d: %+v", i, got)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("20 sequential ops opened %d connections, want 1 (keep-alive)", n)
	}
}

func TestAdapter(t *testing.T) {
	a, err := targets.LookupAdapter("http")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"get", "put", "cas"} {
		if !a.Supports(op) {
			t.Errorf("the http adapter does not declare %s", op)
		}
	}
	if a.Supports("append") || a.Doc == "" || a.Errors == "" || len(a.Options) != 0 {
		t.Fatalf("adapter %+v", a)
	}

	s := newServer(t, reply(200, `{"value":3}`))
	nodes := map[string]string{"n1": s.addr()}
	cl, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if out := cl.Do(context.Background(), get); out.Type != history.OK || string(out.Value) != "3" || out.Node != "n1" {
		t.Fatalf("get through the adapter: %+v", out)
	}
	if c, ok := cl.(*Client); !ok || c.opts.Timeout != time.Second {
		t.Fatalf("the adapter's client %T does not take the configured timeout", cl)
	}

	if _, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Options: map[string]string{"retries": "3"}}); err == nil || !strings.Contains(err.Error(), `"retries"`) || !strings.Contains(err.Error(), "takes none") {
		t.Fatalf("an unknown option: %v, want an error naming it", err)
	}
	if _, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n2"}); err == nil {
		t.Fatal("a home that is not a node was accepted")
	}
}

// TestToken: the adapter sends a token only when it is configured with
// one (ClientConfig.Token), as a bearer token.
func TestToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(`{"value":1}`))
	})
	a, err := targets.LookupAdapter(AdapterName)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []targets.Token{"", "tok-1"} {
		cl, err := a.New(targets.ClientConfig{Nodes: map[string]string{"n1": s.addr()}, Home: "n1", Token: tok})
		if err != nil {
			t.Fatal(err)
		}
		if out := cl.Do(context.Background(), get); out.Type != history.OK {
			t.Errorf("get with token %q: %+v", tok, out)
		}
		cl.Close()
	}
	if want := []string{"", "Bearer tok-1"}; !slices.Equal(seen, want) {
		t.Errorf("Authorization headers sent: %q, want %q", seen, want)
	}
}
