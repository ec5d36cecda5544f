package lwwkv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/clustertest"
)

// cluster is clustertest's in-process cluster of lwwkv nodes. Stopping a
// node drops its replication queues, as a kill would (its data log stays).
type cluster struct{ *clustertest.Cluster }

// startCluster runs n lwwkv nodes in this process, each on its own
// loopback ports and data directory, every directed peer link through a
// relay of its own.
func startCluster(t *testing.T, n int, opts map[string]string, bugs ...string) *cluster {
	t.Helper()
	c := &cluster{clustertest.New(t, Name, n, opts, bugs...)}
	c.StartAll()
	return c
}

// nodeStatus is the part of GET /admin/status the tests read.
type nodeStatus struct {
	clustertest.NodeStatus
	PendingBy   map[string]int `json:"pending_by_peer"`
	Unreachable []string       `json:"unreachable_peers"`
}

func (c *cluster) status(id string) nodeStatus {
	c.T.Helper()
	return clustertest.MustStatus[nodeStatus](c.Cluster, id)
}

func (c *cluster) put(id, key, value string) {
	c.T.Helper()
	if code, body := c.Request(id, "PUT", "/kv/"+key, `{"value":`+value+`}`); code != 200 {
		c.T.Fatalf("put %s=%s at %s: %d %s", key, value, id, code, body)
	}
}

// noQueueRetry and noAntiEntropy make one replication path idle, so a
// test sees the other alone.
var (
	noQueueRetry  = map[string]string{"replication-retry": "1h", "anti-entropy-interval": "50ms"}
	noAntiEntropy = map[string]string{"anti-entropy-interval": "1h", "replication-retry": "50ms"}
)

// TestReplication: every node serves reads and writes; the queues bring a
// write to every peer (anti-entropy is idle here); CAS is a local decision.
func TestReplication(t *testing.T) {
	c := startCluster(t, 3, noAntiEntropy)
	c.put("n1", "k", "1")
	for _, id := range c.IDs {
		c.WaitFor("k=1 at "+id, func() bool { return c.Local(id, "k") == "1" })
	}
	if code, body := c.Request("n2", "GET", "/kv/k", ""); code != 200 || body != `{"value":1}` {
		t.Fatalf("get at n2: %d %s", code, body)
	}
	if code, body := c.Request("n3", "GET", "/kv/absent", ""); code != 200 || body != `{"value":null}` {
		t.Fatalf("get of an absent key at n3: %d %s", code, body)
	}
	if code, body := c.Request("n3", "POST", "/kv/k/cas", `{"from":1,"to":2}`); code != 200 {
		t.Fatalf("cas at n3: %d %s", code, body)
	}
	for _, id := range c.IDs {
		c.WaitFor("k=2 at "+id, func() bool { return c.Local(id, "k") == "2" })
	}
	if code, body := c.Request("n2", "POST", "/kv/k/cas", `{"from":1,"to":3}`); code != 409 || !strings.Contains(body, "mismatch") {
		t.Fatalf("cas from a value n2 no longer holds: %d %s, want 409 mismatch", code, body)
	}
	s := c.status("n1")
	if s.Role != StatusRole || s.Term != 0 || s.Keys != 1 {
		t.Fatalf("n1 status: role %q term %d keys %d, want replica, 0, 1", s.Role, s.Term, s.Keys)
	}
	c.WaitFor("n1's queues to drain", func() bool {
		s := c.status("n1")
		return s.Counters["sent"] >= 2 && s.Counters["pending"] == 0
	})
	if s := c.status("n1"); s.Counters["anti_entropy_rounds"] != 0 {
		t.Fatalf("n1 counters %v: want no anti-entropy rounds (the queues replicated)", s.Counters)
	}
	if s := c.status("n2"); s.Counters["received"] < 2 || s.Counters["merges"] < 2 {
		t.Fatalf("n2 counters %v: want received and merges >= 2 (n1's put, n3's cas)", s.Counters)
	}
}

// TestPartitionConverges: two nodes write the same key while partitioned;
// after the heal, anti-entropy alone (the queues do not retry here) brings
// both to the same winner: the write with the larger timestamp, here that
// of n2, whose clock runs 10 s ahead.
func TestPartitionConverges(t *testing.T) {
	c := startCluster(t, 3, noQueueRetry)
	c.SetClock("n2", targets.Clock{Offset: 10 * time.Second})
	for _, other := range []string{"n2", "n3"} {
		c.Partition("n1", other, true)
	}
	c.put("n2", "k", `"from-n2"`)
	c.put("n1", "k", `"from-n1"`) // later in real time, earlier by the clocks
	c.WaitFor("n3 to get n2's write (they are connected)", func() bool { return c.Local("n3", "k") == `"from-n2"` })
	c.WaitFor("n1 to fail its sends and anti-entropy rounds with both peers", func() bool {
		s := c.status("n1")
		return len(s.Unreachable) == 2 && s.Counters["anti_entropy_errors"] >= 2
	})
	if got := c.Local("n1", "k"); got != `"from-n1"` {
		t.Fatalf("partitioned n1 holds %s, want its own write", got)
	}
	if s := c.status("n1"); s.Counters["pending"] != 2 {
		t.Fatalf("n1 while partitioned: pending %d, want 2 (its write, for each peer)", s.Counters["pending"])
	}
	for _, other := range []string{"n2", "n3"} {
		c.Partition("n1", other, false)
	}
	for _, id := range c.IDs {
		c.WaitFor(id+" to hold n2's write", func() bool { return c.Local(id, "k") == `"from-n2"` })
	}
	// The node that merged the two concurrent writes counted the discarded
	// one (n1 or n2, whichever started the first exchange after the heal);
	// the others took the resolved version, whose clock covers both.
	discarded := int64(0)
	for _, id := range c.IDs {
		discarded += c.status(id).Counters["concurrent_discarded"]
	}
	if discarded < 1 {
		t.Fatalf("no node counted a concurrent write discarded")
	}
	// Anti-entropy did it: n1's queue still holds its write for both
	// peers (its one retry is an hour away).
	if s := c.status("n1"); s.Counters["pending"] != 2 {
		t.Fatalf("n1 counters %v: want its queue still pending (2)", s.Counters)
	}
	c.WaitFor("an anti-entropy round of n1's own", func() bool { return c.status("n1").Counters["anti_entropy_rounds"] >= 1 })
	c.WaitFor("n1 to see its peers reachable", func() bool { return len(c.status("n1").Unreachable) == 0 })
}

// TestCausality: n1's clock runs 10 s ahead; n2 writes after reading
// n1's write, with a smaller timestamp. Vector clocks make n2's write win
// everywhere; with wall-clock-only the earlier write of the fast clock
// wins, on n2 itself too.
func TestCausality(t *testing.T) {
	for _, tc := range []struct {
		bugs []string
		want string
	}{
		{nil, `"b"`},
		{[]string{BugWallClockOnly}, `"a"`},
	} {
		t.Run(fmt.Sprint(tc.bugs), func(t *testing.T) {
			c := startCluster(t, 2, map[string]string{"anti-entropy-interval": "50ms", "replication-retry": "50ms"}, tc.bugs...)
			c.SetClock("n1", targets.Clock{Offset: 10 * time.Second})
			c.put("n1", "k", `"a"`)
			c.WaitFor("n2 to hold a", func() bool { return c.Local("n2", "k") == `"a"` })
			c.put("n2", "k", `"b"`)
			if got := c.Local("n2", "k"); got != tc.want {
				t.Fatalf("n2 right after its own write holds %s, want %s", got, tc.want)
			}
			// n1 has n2's version once n2's queue is empty and n1 merged it.
			c.WaitFor("n2's queue to drain", func() bool { return c.status("n2").Counters["pending"] == 0 })
			c.WaitFor("anti-entropy rounds on both", func() bool {
				return c.status("n1").Counters["anti_entropy_rounds"] >= 2 && c.status("n2").Counters["anti_entropy_rounds"] >= 2
			})
			for _, id := range c.IDs {
				if got := c.Local(id, "k"); got != tc.want {
					t.Fatalf("%s holds %s, want %s", id, got, tc.want)
				}
			}
			overruled := c.status("n2").Counters["causal_overruled"]
			if (len(tc.bugs) > 0) != (overruled > 0) {
				t.Fatalf("n2 causal_overruled %d with bugs %v", overruled, tc.bugs)
			}
		})
	}
}

// TestQueueLost: n1 writes while cut off from n2, then stops (its queue is
// gone) and restarts with its data log. Anti-entropy repairs n2; with the
// no-anti-entropy bug n2 never gets the write.
func TestQueueLost(t *testing.T) {
	for _, tc := range []struct {
		bugs     []string
		converge bool
	}{
		{nil, true},
		{[]string{BugNoAntiEntropy}, false},
	} {
		t.Run(fmt.Sprint(tc.bugs), func(t *testing.T) {
			c := startCluster(t, 2, map[string]string{"anti-entropy-interval": "50ms", "replication-retry": "50ms"}, tc.bugs...)
			c.Partition("n1", "n2", true)
			c.put("n1", "k", `"lost"`)
			c.WaitFor("n1's queue to fail a send", func() bool { return c.status("n1").Counters["peer_errors"] >= 1 })
			c.Stop("n1")
			c.Partition("n1", "n2", false)
			c.Start("n1")
			if got := c.Local("n1", "k"); got != `"lost"` {
				t.Fatalf("restarted n1 holds %s, want its acknowledged write from its data log", got)
			}
			if tc.converge {
				c.WaitFor("n2 to get n1's write", func() bool { return c.Local("n2", "k") == `"lost"` })
				return
			}
			// 40 retry intervals: ample for the queue, had it survived.
			time.Sleep(2 * time.Second)
			if got := c.Local("n2", "k"); got != "null" {
				t.Fatalf("n2 holds %s: the write reached it without anti-entropy", got)
			}
			if s := c.status("n1"); s.Counters["pending"] != 0 || s.Counters["anti_entropy_rounds"] != 0 {
				t.Fatalf("restarted n1: pending %d anti-entropy rounds %d, want 0 and 0", s.Counters["pending"], s.Counters["anti_entropy_rounds"])
			}
		})
	}
}

// TestPeerAPI: the peer API requires the run's token, refuses malformed
// versions (400, nothing merged) and merges good ones.
func TestPeerAPI(t *testing.T) {
	c := clustertest.New(t, Name, 1, nil)
	c.Nodes["n1"].Cfg.Token = "secret"
	c.StartAll()
	cfg := c.Nodes["n1"].Cfg
	post := func(token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+cfg.PeerListen+PathReplicate, bytes.NewReader([]byte(body)))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := `{"from":"n2","versions":[{"key":"k","value":"v","clock":{"n2":3},"ts":1,"origin":"n2","seq":3}]}`
	bad := `{"from":"n2","versions":[{"key":"j","value":1,"clock":{"n2":1},"ts":1,"origin":"n2","seq":1},{"key":"k","value":"v","clock":{"n2":2},"ts":1,"origin":"n2","seq":3}]}`
	if code, _ := post("", good); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, body := post("secret", bad); code != 400 || !strings.Contains(body, "does not cover") {
		t.Fatalf("a clock that does not cover its write: %d %s, want 400 saying so", code, body)
	}
	if code, body := post("secret", good); code != 200 || body != `{"merged":1}` {
		t.Fatalf("good batch: %d %s", code, body)
	}
	n := targets.NodeInfo{NodeAddrs: targets.NodeAddrs{ID: "n1", Admin: cfg.Admin}, Token: "secret"}
	sys, _ := targets.LookupSystem(Name)
	for key, want := range map[string]string{"k": `"v"`, "j": "null"} {
		v, err := sys.LocalRead(context.Background(), n, key)
		if err != nil || string(v) != want {
			t.Fatalf("local read %s: %s %v, want %s", key, v, err, want)
		}
	}
}

// TestRegistration: the registered system declares what the conductor
// looks up, and refuses bad options before anything starts, naming them.
func TestRegistration(t *testing.T) {
	clustertest.CheckRegistration(t, Name, clustertest.Registration{
		Checkers: DefaultCheckers,
		Bugs:     []string{BugNoAntiEntropy, BugWallClockOnly},
		BadOptions: map[string]map[string]string{
			`option replication-retry="0"`:       {"replication-retry": "0"},
			`option peer-timeout="soon"`:         {"peer-timeout": "soon"},
			`option anti-entropy-interval="-5s"`: {"anti-entropy-interval": "-5s"},
			`unknown option "gossip"`:            {"gossip": "1"},
			`option log-level="loud"`:            {"log-level": "loud"},
		},
	})
	if err := CheckOptions(map[string]string{"replication-retry": "250", "anti-entropy-interval": "1s", "peer-timeout": "2s"}); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
	if err := Run(context.Background(), targets.NodeConfig{ID: "n1"}); err == nil || !strings.Contains(err.Error(), "peer-listen") {
		t.Fatalf("Run without addresses: %v", err)
	}
}
