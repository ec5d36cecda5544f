package nodekit_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/httpkv"
	"github.com/faultline/faultline/targets/nodekit"
)

// TestTokenRequired: a node with a token refuses, on both APIs, every
// request without it (401, a definite error), counts them, and serves the
// requests that carry it as a bearer token or as basic auth; the kit's
// client functions and the http adapter send the token they are given.
func TestTokenRequired(t *testing.T) {
	const tok = targets.Token("s3cret-token")
	s := serve(t, targets.NodeConfig{Token: tok})
	client, admin := "http://"+s.info.Client, "http://"+s.info.Admin
	attacks := []struct{ method, url, body string }{
		{"GET", client + "/kv/k", ""},
		{"PUT", client + "/kv/k", `{"value": "evil"}`},
		{"POST", client + "/kv/k/cas", `{"from": null, "to": "evil"}`},
		{"GET", client + "/no/such/route", ""},
		{"GET", admin + "/admin/status", ""},
		{"GET", admin + "/admin/clock", ""},
		{"POST", admin + "/admin/clock", `{"offset_ms": 60000}`},
		{"GET", admin + "/admin/kv/k", ""},
	}
	for _, a := range attacks {
		for _, auth := range []string{"", "Bearer wrong", "Bearer ", "Basic " + "ZmF1bHRsaW5lOndyb25n"} {
			req, _ := http.NewRequest(a.method, a.url, strings.NewReader(a.body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error    string `json:"error"`
				Definite bool   `json:"definite"`
			}
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !body.Definite || !strings.Contains(body.Error, targets.TokenEnv) {
				t.Errorf("%s %s with Authorization %q: %d %+v, want 401, definite, naming %s", a.method, a.url, auth, resp.StatusCode, body, targets.TokenEnv)
			}
		}
	}
	if v := s.store.LocalGet("k"); v != nil {
		t.Errorf("a refused put took effect: k = %s", v)
	}
	if off := s.node.ClockOffset(); off != 0 {
		t.Errorf("a refused clock change took effect: %v", off)
	}

	// faultline's own calls carry the token.
	ctx := context.Background()
	info := s.info
	info.Token = tok
	st, err := nodekit.ReadStatus(ctx, info)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Counters["errors_unauthorized"]; n != float64(4*len(attacks)) {
		t.Errorf("errors_unauthorized = %v, want %d", n, 4*len(attacks))
	}
	if err := nodekit.SetClock(ctx, info, targets.Clock{Offset: time.Second}); err != nil || s.node.ClockOffset() != time.Second {
		t.Errorf("SetClock with the token: %v (offset %v)", err, s.node.ClockOffset())
	}
	if v, err := nodekit.LocalRead(ctx, info, "k"); err != nil || string(v) != "null" {
		t.Errorf("LocalRead with the token: %s %v", v, err)
	}
	if _, err := nodekit.ReadStatus(ctx, s.info); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("ReadStatus without the token: %v, want HTTP 401", err)
	}
	if err := nodekit.SetClock(ctx, s.info, targets.Clock{}); err == nil || s.node.ClockOffset() != time.Second {
		t.Errorf("SetClock without the token: %v (offset %v), want refused", err, s.node.ClockOffset())
	}

	a, err := targets.LookupAdapter(httpkv.AdapterName)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{"n1": s.info.Client}
	with, err := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Timeout: time.Second, Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer with.Close()
	if out := with.Do(ctx, history.Op{F: "put", Key: "k", Value: json.RawMessage(`1`)}); out.Type != history.OK {
		t.Errorf("put through the http adapter with the token: %+v", out)
	}
	without, _ := a.New(targets.ClientConfig{Nodes: nodes, Home: "n1", Timeout: time.Second})
	defer without.Close()
	if out := without.Do(ctx, history.Op{F: "get", Key: "k"}); out.Type != history.Fail || !strings.Contains(out.Error, "token") {
		t.Errorf("get through the http adapter without the token: %+v, want fail", out)
	}
	// Basic auth with the token as password (what readiness probes and
	// Toxiproxy-style URLs send) is accepted too.
	req, _ := http.NewRequest("GET", admin+"/admin/status", nil)
	req.SetBasicAuth(targets.TokenUser, string(tok))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("basic auth with the token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestNoTokenIsOpen: a node started without a token (by hand) serves
// both APIs to anyone.
func TestNoTokenIsOpen(t *testing.T) {
	s := serve(t, targets.NodeConfig{})
	if a := call(t, "GET", "http://"+s.info.Admin+"/admin/status", ""); a.code != 200 {
		t.Errorf("status of an open node: %d", a.code)
	}
	if a := call(t, "PUT", "http://"+s.info.Client+"/kv/k", `{"value":1}`); a.code != 200 {
		t.Errorf("put to an open node: %d", a.code)
	}
}
