package kvtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// TimedOutWrite checks a client c (of node, each op bounded by timeout)
// of a server srv that stops answering: after a warm-up put, srv is
// paused (SIGSTOP); a put then gets no answer before its timeout and is
// info "NAME: timeout" (the server may apply it once it runs), and a get
// is fail (a read has no effect). Once srv runs again, c reads again. It
// returns the outcome of a cas sent between the put and the get, for the
// adapter to judge: whether it could have been sent depends on how the
// adapter's client uses its connections.
func (e Expect) TimedOutWrite(t *testing.T, srv Pausable, c targets.Client, node string, timeout time.Duration) (cas history.Outcome) {
	t.Helper()
	e.OK(t, "warm-up put", Do(c, "put", "k", `1`), node)

	srv.Pause(t)
	start := time.Now()
	put := Do(c, "put", "k", `2`)
	took := time.Since(start)
	cas = Do(c, "cas", "k", `{"from": 1, "to": 3}`)
	get := Do(c, "get", "k", "")
	srv.Resume(t)

	if put.Type != history.Info || put.Error != e.Name+": timeout" || put.Node != e.unanswered(node) {
		t.Fatalf("put to a paused server: %+v, want info %q naming node %q", put, e.Name+": timeout", e.unanswered(node))
	}
	if took < timeout*9/10 || took > timeout+1500*time.Millisecond {
		t.Errorf("put took %v, want about its timeout (%v)", took, timeout)
	}
	if get.Type != history.Fail || !strings.HasPrefix(get.Error, e.Name+": ") {
		t.Errorf("get from a paused server: %+v, want fail (a read has no effect)", get)
	}
	out := Eventually(t, 5*time.Second, c, "get", "k", "")
	t.Logf("after SIGCONT the key holds %s (the info put of 2 may or may not have been applied)", out.Value)
	return cas
}

// NeverConnected checks a client c of node at addr, where nothing
// listens: put, cas and get are fail, not sent, connection refused, each
// of them times times in a row (more than once checks that the client
// keeps dialing); and ping (the adapter's Ping) says refused at once, not
// at its deadline.
func (e Expect) NeverConnected(t *testing.T, c targets.Client, node, addr string, times int, ping func(ctx context.Context, addr string, opts map[string]string) error) {
	t.Helper()
	for i := range times {
		for _, op := range []struct{ f, v string }{{"put", `1`}, {"cas", `{"from": 1, "to": 2}`}, {"get", ""}} {
			out := Do(c, op.f, "k", op.v)
			if out.Type != history.Fail || out.Node != e.unanswered(node) || !strings.HasPrefix(out.Error, e.Name+": ") ||
				!strings.Contains(out.Error, "not sent") || !strings.Contains(out.Error, "connection refused") {
				t.Fatalf("%s #%d where nothing listens: %+v, want fail: not sent, connection refused", op.f, i+1, out)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := ping(ctx, addr, nil)
	if err == nil || !strings.HasPrefix(err.Error(), e.Name+": ") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("Ping where nothing listens: %v, want connection refused", err)
	}
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("Ping where nothing listens took %v: it should not wait for its deadline", took)
	}
}
