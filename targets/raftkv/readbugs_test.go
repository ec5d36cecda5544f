package raftkv

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/clustertest"
)

// newLeader waits until a running node other than old leads in a term
// above term, and every running node but old names it; it returns the
// leader and its term.
func (c *cluster) newLeader(old string, term uint64) (string, uint64) {
	c.T.Helper()
	ids := slices.DeleteFunc(c.Running(), func(id string) bool { return id == old })
	leader, s := c.AgreedLeader("a new leader other than "+old, "leader", ids, func(leader string, s clustertest.NodeStatus) bool {
		return leader != old && s.Term > term
	})
	return leader, s.Term
}

func (c *cluster) term(id string) uint64 {
	c.T.Helper()
	return clustertest.MustStatus[nodeStatus](c.Cluster, id).Term
}

// rawStatus is node id's whole status answer.
func (c *cluster) rawStatus(id string) map[string]any {
	c.T.Helper()
	return clustertest.MustStatus[map[string]any](c.Cluster, id)
}

func answeredIn(t *testing.T, what string, out history.Outcome, term uint64) {
	t.Helper()
	if out.Term != term {
		t.Fatalf("%s: answered under term %d, want %d (%+v)", what, out.Term, term, out)
	}
}

// TestFSMApplyTerm: the FSM answers every entry with the entry's term.
func TestFSMApplyTerm(t *testing.T) {
	f := newFSM()
	for i, c := range []command{
		{Op: "put", Key: "k", Value: json.RawMessage(`1`)},
		{Op: "cas", Key: "k", From: json.RawMessage(`2`), To: json.RawMessage(`3`)}, // mismatch
		{Op: "cas", Key: "k", From: json.RawMessage(`1`), To: json.RawMessage(`3`)},
	} {
		b, _ := json.Marshal(c)
		r := f.Apply(&raft.Log{Index: uint64(i + 1), Term: uint64(5 + i), Type: raft.LogCommand, Data: b}).(applyResult)
		if r.Term != uint64(5+i) || r.Err != nil || r.Mismatch != (i == 1) {
			t.Errorf("entry %d (%s) in term %d: %+v", i+1, c.Op, 5+i, r)
		}
	}
}

// TestTermsOnAnswers: a put or cas (a mismatch too) is answered under the
// term of its entry, a read under the term its barrier confirmed; after a
// new leader is elected, its answers carry its higher term.
func TestTermsOnAnswers(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leader()
	cl := c.Client(leader)
	term := c.term(leader)
	out := do(t, cl, "put", "k", "1")
	mustOK(t, out, "")
	answeredIn(t, "put", out, term)
	out = do(t, cl, "get", "k", "")
	mustOK(t, out, "1")
	answeredIn(t, "get", out, term)
	out = do(t, cl, "cas", "k", `{"from":2,"to":3}`)
	if out.Type != history.Fail || out.Error != "mismatch" {
		t.Fatalf("cas mismatch: %+v", out)
	}
	answeredIn(t, "cas mismatch", out, term)
	out = do(t, cl, "cas", "k", `{"from":1,"to":3}`)
	mustOK(t, out, "")
	answeredIn(t, "cas", out, term)

	c.Stop(leader)
	leader2, term2 := c.newLeader(leader, term)
	cl2 := c.Client(leader2)
	out = do(t, cl2, "put", "k", "4")
	mustOK(t, out, "")
	answeredIn(t, "put on the new leader", out, term2)
	out = do(t, cl2, "get", "k", "")
	mustOK(t, out, "4")
	answeredIn(t, "get on the new leader", out, term2)
	c.Start(leader)
}

// TestStaleReadBug: with stale-read nothing shows without a fault (the
// leader answers the latest value, followers refuse); a leader cut off from
// the others keeps serving its old state under its old term while the new
// leader takes writes; healed, it learns the new term and refuses again.
func TestStaleReadBug(t *testing.T) {
	c := startCluster(t, 3, BugStaleRead)
	leader := c.leader()
	f := c.follower(leader)
	atLeader, atFollower := c.Client(leader), c.Client(f)
	term := c.term(leader)

	// Without a fault: linearizable, and followers do not serve.
	for i, v := range []string{"1", "2", "3"} {
		mustOK(t, do(t, atLeader, "put", "k", v), "")
		out := do(t, atLeader, "get", "k", "")
		mustOK(t, out, v)
		answeredIn(t, "read on the leader", out, term)
		if i == 0 {
			continue
		}
		// From the second read on, the leader reads locally (its barrier
		// in this term committed with the first).
		if st, _ := c.status(leader); st.Counters["stale_reads"] < int64(i) {
			t.Fatalf("after %d reads the leader counts %d local reads", i+1, st.Counters["stale_reads"])
		}
	}
	c.waitApplied(f, c.commitIndex(leader))
	// Through the follower: redirected to the leader, which answers.
	if out := do(t, atFollower, "get", "k", ""); out.Type != history.OK || out.Node != leader || string(out.Value) != "3" {
		t.Fatalf("read sent to the follower %s: %+v, want the leader %s to answer 3", f, out, leader)
	}
	if st, _ := c.status(f); st.Counters["stale_reads"] != 0 {
		t.Fatalf("the follower served %d reads locally", st.Counters["stale_reads"])
	}

	// Cut the leader off: the others elect a new leader, which takes a write.
	c.Isolate(leader, true)
	leader2, term2 := c.newLeader(leader, term)
	mustOK(t, do(t, c.Client(leader2), "put", "k", "4"), "")
	out := do(t, atLeader, "get", "k", "")
	mustOK(t, out, "3") // stale: the new leader acknowledged 4
	if out.Node != leader {
		t.Fatalf("stale read answered by %s, want the old leader %s", out.Node, leader)
	}
	answeredIn(t, "stale read on the deposed leader", out, term)
	if st, _ := c.status(leader); st.Role == "leader" || st.Term != term {
		t.Fatalf("the isolated leader is %s in term %d: want it stepped down, still in term %d", st.Role, st.Term, term)
	}
	// Writes there are refused, as on any node that does not lead.
	if out := do(t, atLeader, "put", "k", "5"); out.Type != history.Fail {
		t.Fatalf("a put on the deposed leader: %+v, want fail", out)
	}

	// Healed, it learns the new term and stops serving.
	c.Isolate(leader, false)
	c.WaitFor("the old leader to learn the new term", func() bool { return c.term(leader) >= term2 })
	out = do(t, atLeader, "get", "k", "")
	mustOK(t, out, "4")
	if out.Node == leader {
		t.Fatalf("the old leader answered a read itself after learning term %d: %+v", term2, out)
	}
}

// TestLeaseReadBug: with lease-read the leader answers reads from its
// lease; a partition alone never makes the deposed leader serve a stale
// value (the lease ends before a new leader can be elected), but with its
// clock slowed down (drift -0.99) the lease outlives the election, and the
// deposed leader serves its old state under its old term.
func TestLeaseReadBug(t *testing.T) {
	c := startCluster(t, 3, BugLeaseRead)
	leader := c.leader()
	atLeader := c.Client(leader)
	term := c.term(leader)
	mustOK(t, do(t, atLeader, "put", "k", "1"), "")
	c.WaitFor("a lease on the leader", func() bool {
		m := c.rawStatus(leader)
		return m["lease_term"] == float64(term) && m["lease_left_ms"].(float64) > 0
	})
	out := do(t, atLeader, "get", "k", "")
	mustOK(t, out, "1")
	answeredIn(t, "lease read", out, term)
	if st, _ := c.status(leader); st.Counters["lease_reads"] < 1 {
		t.Fatalf("lease_reads %d after a read under a lease", st.Counters["lease_reads"])
	}
	if f := c.follower(leader); c.rawStatus(f)["lease_term"] != float64(0) {
		t.Fatalf("follower %s holds a lease: %v", f, c.rawStatus(f)["lease_term"])
	}

	// A partition without clock faults: the deposed leader's lease is over
	// before the new leader is elected, so it never serves the old value.
	c.Isolate(leader, true)
	leader2, term2 := c.newLeader(leader, term)
	mustOK(t, do(t, c.Client(leader2), "put", "k", "2"), "")
	if out := do(t, atLeader, "get", "k", ""); out.Type == history.OK {
		t.Fatalf("the deposed leader %s served %s after the new leader %s took 2 (its lease must be over, by a true clock)", leader, out.Value, leader2)
	}
	c.Isolate(leader, false)
	c.WaitFor("the old leader to learn the new term", func() bool { return c.term(leader) >= term2 })

	// Slow the current leader's clock to 1% speed, then cut it off.
	leader3 := c.leader()
	term3 := c.term(leader3)
	at3 := c.Client(leader3)
	mustOK(t, do(t, at3, "put", "k", "3"), "")
	c.SetClock(leader3, targets.Clock{Drift: -0.99})
	time.Sleep(100 * time.Millisecond) // leases renewed on the slow clock
	c.Isolate(leader3, true)
	leader4, _ := c.newLeader(leader3, term3)
	mustOK(t, do(t, c.Client(leader4), "put", "k", "4"), "")
	out = do(t, at3, "get", "k", "")
	mustOK(t, out, "3") // stale: the new leader acknowledged 4
	if out.Node != leader3 {
		t.Fatalf("stale read answered by %s, want the deposed leader %s", out.Node, leader3)
	}
	answeredIn(t, "stale lease read", out, term3)
	if st, _ := c.status(leader3); st.Role == "leader" {
		t.Fatalf("the isolated %s still reports itself leader", leader3)
	}

	// Its clock reset, the lease is over at once.
	c.SetClock(leader3, targets.Clock{})
	if out := do(t, at3, "get", "k", ""); out.Type == history.OK {
		t.Fatalf("the deposed leader served %s with its clock reset", out.Value)
	}
	c.Isolate(leader3, false)
}

// TestReadLeaseOption: read-lease is auto (half of heartbeat-timeout) or a
// duration below heartbeat-timeout; anything else is refused, naming it.
func TestReadLeaseOption(t *testing.T) {
	o, err := parseOptions(nil)
	if err != nil || o.readLease != o.heartbeat/2 {
		t.Fatalf("default read-lease %v (heartbeat-timeout %v): %v", o.readLease, o.heartbeat, err)
	}
	if o, err := parseOptions(map[string]string{"read-lease": "120ms", "heartbeat-timeout": "400ms"}); err != nil || o.readLease != 120*time.Millisecond {
		t.Fatalf("read-lease 120ms: %v %v", o.readLease, err)
	}
	if o, err := parseOptions(map[string]string{"heartbeat-timeout": "1s", "election-timeout": "1s"}); err != nil || o.readLease != 500*time.Millisecond {
		t.Fatalf("auto with heartbeat-timeout 1s: %v %v", o.readLease, err)
	}
	for _, bad := range []string{"300ms", "1s", "0", "soon"} {
		if err := CheckOptions(map[string]string{"read-lease": bad}); err == nil || !strings.Contains(err.Error(), "read-lease") {
			t.Errorf("read-lease %s: %v, want refused naming read-lease", bad, err)
		}
	}
}
