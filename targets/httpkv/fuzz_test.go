package httpkv

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
)

// fuzzAnswer is what the fuzzed server answers to every request.
type fuzzAnswer struct {
	code   int
	header [][2]string
	body   []byte

	mu   sync.Mutex
	sent []byte // the part of body the server could send (none for a 204)
	hits int
}

// FuzzResponse drives a Client against a real HTTP server (on loopback)
// that answers with a fuzzed status code, headers and body. Do must never
// panic and must map every answer to ok, fail or info as the package doc
// says: ok only for a 200 (and, for a get, a body {"value": V}, V being the
// value read); fail only for a definite refusal, a 409 mismatch, or a 4xx
// without an error body; info for the rest. Headers that change how the
// response is framed (Content-Length, Transfer-Encoding, Trailer, control
// bytes in a value) may make the response unreadable: then only "ok means
// 200, fail means not 200" is checked (an unreadable answer is info).
//
// Seeds: the answers the reference nodes give, and broken ones below; the
// corpus in testdata/fuzz/FuzzResponse holds what fuzzing found.
func FuzzResponse(f *testing.F) {
	for _, s := range []struct {
		op     byte
		code   uint16
		header string
		body   string
	}{
		{0, 200, "Content-Type: application/json", `{"value":"w-1"}`},
		{0, 200, "", `{"value":null}`},
		{0, 200, "", `{"value": {"a" : [1, 2]} }`},
		{0, 200, "", `{"value":1}{"value":2}`},
		{0, 200, "", `{}`},
		{0, 200, "", `null`},
		{0, 200, "", `{"VALUE":3}`},
		{0, 200, "", ``},
		{0, 200, "Content-Length: 100", `{"value":1}`},
		{0, 200, "Transfer-Encoding: chunked", `{"value":1}`},
		{1, 200, "", `{}`},
		{1, 201, "", `{}`},
		{1, 204, "", ``},
		{1, 304, "", `{"value":1}`},
		{1, 302, "Location: http://127.0.0.1:1/", ``},
		{2, 409, "", `{"error":"mismatch"}`},
		{2, 409, "", `{"error":"conflict","definite":false}`},
		{2, 409, "", `conflict`},
		{1, 503, "", `{"error":"not leader","definite":true,"leader":"n2"}`},
		{1, 503, "", `{"error":"not leader","definite":true,"leader":"n9"}`},
		{1, 503, "", `{"error":"timeout","definite":false}`},
		{1, 500, "", `{"error":"mismatch","definite":true}`},
		{1, 500, "", `{"error":null,"definite":true}`},
		{1, 500, "", `{"error":"x","definite":"true"}`},
		{1, 401, "", `{"error":"unauthorized","definite":true}`},
		{1, 404, "", `not found`},
		{1, 429, "Retry-After: 1", ``},
		{1, 502, "", `<html>bad gateway</html>`},
		{1, 999, "X-A: b\nX-B: \x01", `{}`},
		{0, 200, "Content-Length: x", `{"value":1}`},
	} {
		f.Add(s.op, s.code, s.header, []byte(s.body))
	}
	var cur struct {
		sync.Mutex
		a *fuzzAnswer
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		cur.Lock()
		a := cur.a
		cur.Unlock()
		for _, kv := range a.header {
			w.Header().Add(kv[0], kv[1])
		}
		w.WriteHeader(a.code)
		n, _ := w.Write(a.body)
		a.mu.Lock()
		a.sent = a.body[:n]
		a.hits++
		a.mu.Unlock()
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // fuzzed headers it refuses
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	f.Fuzz(func(t *testing.T, opb byte, code uint16, header string, body []byte) {
		a := &fuzzAnswer{code: int(code), body: body}
		if a.code < 200 || a.code > 999 {
			a.code = 200 + a.code%800 // a 1xx is not a final answer; WriteHeader takes 3 digits
		}
		loose := false
		for _, line := range strings.Split(header, "\n") {
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			name, value = strings.TrimSpace(name), strings.TrimSpace(value)
			switch http.CanonicalHeaderKey(name) {
			case "Content-Length", "Transfer-Encoding", "Trailer":
				loose = true
			}
			if strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				loose = true
			}
			a.header = append(a.header, [2]string{name, value})
		}
		cur.Lock()
		cur.a = a
		cur.Unlock()

		op := []history.Op{
			{F: "get", Key: "k"},
			{F: "put", Key: "k", Value: json.RawMessage(`"w-1"`)},
			{F: "cas", Key: "k", Value: json.RawMessage(`{"from":"w-1","to":"w-2"}`)},
		}[int(opb)%3]
		c, err := New(map[string]string{"n1": addr, "n2": addr}, "n1", Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out := c.Do(context.Background(), op)

		a.mu.Lock()
		sent, hits := a.sent, a.hits
		a.mu.Unlock()
		if hits < 1 || hits > 3 {
			t.Fatalf("%d requests for one op (1, plus at most 2 redirects)", hits)
		}
		if out.Node != "n1" && out.Node != "n2" {
			t.Fatalf("outcome names node %q", out.Node)
		}
		switch out.Type {
		case history.OK:
			if a.code != http.StatusOK {
				t.Fatalf("ok for an http %d", a.code)
			}
			if op.F == "get" && !json.Valid(out.Value) {
				t.Fatalf("ok get with a value that is not JSON: %q", out.Value)
			}
			if op.F != "get" && out.Value != nil {
				t.Fatalf("ok %s with a value %q", op.F, out.Value)
			}
		case history.Fail:
			if a.code == http.StatusOK {
				t.Fatal("fail for an http 200")
			}
		case history.Info:
		default:
			t.Fatalf("outcome type %q", out.Type)
		}
		if loose {
			return
		}

		want, wantValue := expected(op.F, a.code, sent)
		if out.Type != want {
			t.Fatalf("http %d %q to a %s: got %s (%q), want %s", a.code, sent, op.F, out.Type, out.Error, want)
		}
		if want == history.OK && op.F == "get" && !bytes.Equal(out.Value, wantValue) {
			t.Fatalf("get read %s, the body says %s", out.Value, wantValue)
		}
		if isMismatch(out) && a.code != http.StatusConflict {
			t.Fatalf("http %d recorded as a cas mismatch", a.code)
		}
	})
}

// expected is the package doc's mapping of one answer (the same at every
// node, so a redirect ends the same way), written from the doc.
func expected(f string, code int, body []byte) (history.Type, json.RawMessage) {
	if code == http.StatusOK {
		if f != "get" {
			return history.OK, nil
		}
		// 200 {"value": V}: an object with a "value" member.
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil || m == nil {
			return history.Info, nil
		}
		v, ok := m["value"]
		if !ok {
			return history.Info, nil
		}
		var buf bytes.Buffer
		json.Compact(&buf, v)
		return history.OK, buf.Bytes()
	}
	// {"error": TEXT, "definite": BOOL, "leader": ID?}
	var eb struct {
		Error    *string `json:"error"`
		Definite bool    `json:"definite"`
		Leader   string  `json:"leader"`
	}
	errBody := json.Unmarshal(body, &eb) == nil && eb.Error != nil
	switch {
	case code == http.StatusConflict && errBody && *eb.Error == "mismatch":
		return history.Fail, nil
	case errBody && eb.Definite:
		return history.Fail, nil
	case errBody:
		return history.Info, nil
	case code >= 400 && code < 500:
		return history.Fail, nil
	}
	return history.Info, nil
}

// isMismatch reports whether the checkers and the stats read out as a cas
// whose comparison failed (checkers/register.go, workloads/stats.go): only
// a 409 mismatch answer may be recorded so.
func isMismatch(out history.Outcome) bool {
	return history.IsMismatch(out.Type, out.Error)
}
