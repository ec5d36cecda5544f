package targets

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestToken: a token is random, never printed, accepted as a bearer token
// or a basic-auth password, and compared whole.
func TestToken(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || len(a) < 20 {
		t.Fatalf("NewToken gave %d chars, twice the same: %v", len(a), a == b)
	}
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, NodeInfo{Token: a}, ClusterSpec{Token: a}, ClientConfig{Token: a})} {
		if strings.Contains(s, string(a)) {
			t.Errorf("printing shows the token: %s", s)
		}
	}
	req := func(auth string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	basic := httptest.NewRequest("GET", "/", nil)
	basic.SetBasicAuth("anyone", string(a))
	set := httptest.NewRequest("GET", "/", nil)
	a.SetOn(set)
	for _, c := range []struct {
		r    *http.Request
		want bool
	}{
		{req(""), false},
		{req("Bearer " + string(b)), false},
		{req("Bearer " + string(a)[:10]), false},
		{req("Bearer " + string(a) + "x"), false},
		{req("Bearer " + string(a)), true},
		{req("bearer " + string(a)), true},
		{basic, true},
		{set, true},
	} {
		if got := a.Allows(c.r); got != c.want {
			t.Errorf("Allows(Authorization %q) = %v, want %v", c.r.Header.Get("Authorization"), got, c.want)
		}
	}
	if !Token("").Allows(req("")) {
		t.Error("no token should allow everything")
	}
	none := httptest.NewRequest("GET", "/", nil)
	Token("").SetOn(none)
	if h := none.Header.Get("Authorization"); h != "" {
		t.Errorf("no token sets Authorization %q", h)
	}
}

// TestNodeEnv: the node's environment has exactly the run's token, not an
// inherited one.
func TestNodeEnv(t *testing.T) {
	env := NodeEnv([]string{"A=1", TokenEnv + "=inherited", "B=2"}, "run")
	if strings.Join(env, " ") != "A=1 B=2 "+TokenEnv+"=run" {
		t.Errorf("NodeEnv = %v", env)
	}
	if env := NodeEnv([]string{TokenEnv + "=inherited"}, ""); len(env) != 0 {
		t.Errorf("NodeEnv without a token = %v, want the inherited token dropped", env)
	}
}

// TestWaitReadySendsTheTokenAndHidesIt: the readiness probe of an API that
// requires the token passes, and its errors never show the token.
func TestWaitReadySendsTheTokenAndHidesIt(t *testing.T) {
	tok := NewToken()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tok.Allows(r) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "{}")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := WaitReady(context.Background(), addr, ReadyPath, tok, time.Second, nil); err != nil {
		t.Errorf("with the token: %v", err)
	}
	err := WaitReady(context.Background(), addr, ReadyPath, NewToken(), 100*time.Millisecond, nil)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("with another token: %v, want not ready (401)", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range []error{
		WaitReady(context.Background(), addr, ReadyPath, tok+"x", 100*time.Millisecond, nil),
		WaitReady(ctx, addr, ReadyPath, tok+"x", time.Second, nil),
		WaitReady(context.Background(), addr, ReadyPath, tok+"x", time.Second, func(context.Context) error { return fmt.Errorf("exited") }),
	} {
		if err == nil || strings.Contains(err.Error(), string(tok)) {
			t.Errorf("error %v: want one that does not show the token", err)
		}
	}
}
