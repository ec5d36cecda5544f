package pbkv

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline/faultline/targets"
	"github.com/faultline/faultline/targets/internal/clustertest"
	"github.com/faultline/faultline/targets/nodekit"
)

// openNode opens a node n1 of a 3-node cluster on dir without starting
// it, so its handlers can be called directly; past says whether its start
// lies beyond the election timeout (so that it may vote).
func openNode(t *testing.T, dir string, past bool) *node {
	t.Helper()
	d, m, es, err := openDisk(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := targets.NodeConfig{ID: "n1", Peers: map[string]string{"n2": "127.0.0.1:1", "n3": "127.0.0.1:1"}}
	n := newNode(cfg, o, false, nodekit.New(cfg), hclog.NewNullLogger(), d, m, es, func() {})
	if past {
		n.heard = time.Now().Add(-time.Hour)
	}
	t.Cleanup(n.closeDisk)
	return n
}

func put(epoch, index uint64, key, value string) entry {
	return entry{Epoch: epoch, Index: index, Op: "put", Key: key, Value: json.RawMessage(value)}
}

// A vote is durable: reopened on its data directory, the node does not
// vote for another candidate in the same epoch; and right after a start it
// votes for nobody (it may have acknowledged a primary's lease just before
// it stopped).
func TestVoteDurable(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, true)
	if r := n.onVote(voteReq{Epoch: 5, Candidate: "n2"}); !r.Granted || r.Epoch != 5 {
		t.Fatalf("first vote in epoch 5: %+v, want granted", r)
	}
	if r := n.onVote(voteReq{Epoch: 5, Candidate: "n3"}); r.Granted {
		t.Fatalf("second vote in epoch 5 for another candidate: %+v, want refused", r)
	}
	n.closeDisk()

	n = openNode(t, dir, true)
	if n.epoch != 5 || n.votedFor != "n2" {
		t.Fatalf("reopened: epoch %d voted for %q, want 5 and n2", n.epoch, n.votedFor)
	}
	if r := n.onVote(voteReq{Epoch: 5, Candidate: "n3"}); r.Granted {
		t.Fatalf("after a restart, a vote in epoch 5 for n3: %+v, want refused (it voted for n2)", r)
	}
	if r := n.onVote(voteReq{Epoch: 5, Candidate: "n2"}); !r.Granted {
		t.Fatalf("after a restart, n2 asking again in epoch 5: %+v, want granted (the same vote)", r)
	}
	if r := n.onVote(voteReq{Epoch: 4, Candidate: "n3"}); r.Granted || r.Epoch != 5 {
		t.Fatalf("a vote request of an older epoch: %+v, want refused with epoch 5", r)
	}
	n.closeDisk()

	n = openNode(t, dir, false)
	if r := n.onVote(voteReq{Epoch: 6, Candidate: "n3"}); r.Granted || n.epoch != 5 {
		t.Fatalf("right after a start: %+v (epoch now %d), want refused and the epoch unchanged", r, n.epoch)
	}
}

// A node votes only for a candidate whose log is at least as up to date
// (last entry's epoch, then its index); entries it acknowledged survive a
// restart.
func TestVoteUpToDate(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, true)
	r := n.onAppend(appendReq{Epoch: 2, Leader: "n2", Entries: []entry{put(1, 1, "a", "1"), put(2, 2, "a", "2")}, Commit: 1})
	if !r.Success || r.Match != 2 {
		t.Fatalf("append: %+v, want success up to 2", r)
	}
	if got := string(n.LocalGet("a")); got != "1" {
		t.Fatalf("applied a = %s, want 1 (committed up to 1)", got)
	}
	n.closeDisk()
	n = openNode(t, dir, true)
	if n.lastIndex() != 2 || n.lastEpoch() != 2 || n.epoch != 2 {
		t.Fatalf("reopened: last (%d, %d) epoch %d, want entries up to (2, 2) in epoch 2", n.lastEpoch(), n.lastIndex(), n.epoch)
	}
	for _, tc := range []struct {
		req  voteReq
		want bool
	}{
		{voteReq{Epoch: 3, Candidate: "n3", LastEpoch: 1, LastIndex: 5}, false}, // older last epoch, longer log
		{voteReq{Epoch: 3, Candidate: "n3", LastEpoch: 2, LastIndex: 1}, false}, // same epoch, shorter
		{voteReq{Epoch: 3, Candidate: "n3", LastEpoch: 2, LastIndex: 2, Pre: true}, true},
		{voteReq{Epoch: 3, Candidate: "n3", LastEpoch: 2, LastIndex: 2}, true},
	} {
		if r := n.onVote(tc.req); r.Granted != tc.want {
			t.Errorf("vote %+v: %+v, want granted %v", tc.req, r, tc.want)
		}
	}
	if n.epoch != 3 || n.votedFor != "n3" {
		t.Fatalf("after the votes: epoch %d voted for %q, want 3 and n3", n.epoch, n.votedFor)
	}
}

// A backup drops its entries that the primary of a newer epoch does not
// have, and the log file says so after a restart; messages of an older
// epoch are refused; a repeated message changes nothing.
func TestAppendTruncates(t *testing.T) {
	dir := t.TempDir()
	n := openNode(t, dir, true)
	if r := n.onAppend(appendReq{Epoch: 1, Leader: "n2", Entries: []entry{put(1, 1, "k", "1"), put(1, 2, "k", "2"), put(1, 3, "k", "3")}, Commit: 1}); !r.Success {
		t.Fatalf("append in epoch 1: %+v", r)
	}
	// Epoch 2's primary had only entry 1 of epoch 1: its log diverges at 2.
	r := n.onAppend(appendReq{Epoch: 2, Leader: "n3", PrevIndex: 3, PrevEpoch: 2})
	if r.Success || r.Hint == 0 || r.Hint > 3 {
		t.Fatalf("append with a previous entry it lacks: %+v, want a refusal with a hint <= 3", r)
	}
	r = n.onAppend(appendReq{Epoch: 2, Leader: "n3", PrevIndex: 1, PrevEpoch: 1, Entries: []entry{{Epoch: 2, Index: 2, Op: "noop"}, put(2, 3, "k", "20")}, Commit: 3})
	if !r.Success || r.Match != 3 {
		t.Fatalf("append of epoch 2: %+v, want success up to 3", r)
	}
	if got := string(n.LocalGet("k")); got != "20" {
		t.Fatalf("k = %s, want 20", got)
	}
	if n.counters.truncated.Load() != 2 {
		t.Fatalf("truncated %d entries, want 2", n.counters.truncated.Load())
	}
	// The deposed primary of epoch 1, whose log matches up to entry 1.
	if r := n.onAppend(appendReq{Epoch: 1, Leader: "n2", PrevIndex: 1, PrevEpoch: 1, Entries: []entry{put(1, 2, "k", "4")}, Commit: 2}); r.Success || r.Epoch != 2 {
		t.Fatalf("append of the old epoch: %+v, want refused with epoch 2", r)
	}
	if n.leader != "n3" || n.epochAt(2) != 2 || string(n.LocalGet("k")) != "20" {
		t.Fatalf("after an append of the old epoch: leader %s, entry 2 of epoch %d, k = %s; want n3, 2, 20 (nothing changed)", n.leader, n.epochAt(2), n.LocalGet("k"))
	}
	// The same message again (late, or repeated): nothing is truncated.
	if r := n.onAppend(appendReq{Epoch: 2, Leader: "n3", PrevIndex: 1, PrevEpoch: 1, Entries: []entry{{Epoch: 2, Index: 2, Op: "noop"}}, Commit: 3}); !r.Success || n.lastIndex() != 3 {
		t.Fatalf("a repeated shorter message: %+v, last index %d, want success and entry 3 kept", r, n.lastIndex())
	}
	n.closeDisk()

	n = openNode(t, dir, true)
	var epochs []uint64
	for _, e := range n.entries {
		epochs = append(epochs, e.Epoch)
	}
	if len(epochs) != 3 || epochs[0] != 1 || epochs[1] != 2 || epochs[2] != 2 {
		t.Fatalf("reopened log epochs %v, want [1 2 2]", epochs)
	}
	if n.commit != 0 || len(n.kv) != 0 {
		t.Fatalf("reopened: commit %d, %d keys; a restarted node learns the commit index from the primary", n.commit, len(n.kv))
	}
}

// A log whose last line was cut by a crash loses that line only; a log
// with an unreadable line before readable ones is refused; a second
// process cannot open a directory in use.
func TestDiskRecovery(t *testing.T) {
	dir := t.TempDir()
	good := `{"e":1,"i":1,"op":"noop"}` + "\n" + `{"e":1,"i":2,"op":"put","k":"a","v":1}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, logFile), []byte(good+`{"e":1,"i":3,"op":"pu`), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _, es, err := openDisk(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 {
		t.Fatalf("read %d entries, want the 2 before the torn line", len(es))
	}
	if err := d.append([]entry{put(1, 3, "a", "2")}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := openDisk(dir, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("a second open of a directory in use: %v, want a lock error", err)
	}
	d.close()
	d, _, es, err = openDisk(dir, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 || string(es[2].Value) != "2" {
		t.Fatalf("after the repair and an append: %+v, want 3 entries ending with a=2", es)
	}
	d.close()

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, logFile), []byte("garbage\n"+good), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := openDisk(bad, time.Second); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a log with a bad line before good ones: %v, want a corruption error", err)
	}
	if err := os.WriteFile(filepath.Join(bad, logFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, metaFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := openDisk(bad, time.Second); err == nil || !strings.Contains(err.Error(), metaFile) {
		t.Fatalf("a broken %s: %v, want an error naming it", metaFile, err)
	}
}

// TestRegistration: the registered system declares what the conductor
// looks up, and refuses bad options before anything starts, naming them.
func TestRegistration(t *testing.T) {
	clustertest.CheckRegistration(t, Name, clustertest.Registration{
		Checkers: []string{"linearizability", "lost-writes", "split-brain", "convergence"},
		Bugs:     []string{BugNoFencing},
		BadOptions: map[string]map[string]string{
			"rpc-timeout":         {"rpc-timeout": "-1s"},
			"replication-timeout": {"replication-timeout": "soon"},
			"lock-timeout":        {"lock-timeout": "0"},
			"lease-duration":      {"lease-duration": "600ms"},     // not below election-timeout
			"heartbeat-interval":  {"heartbeat-interval": "400ms"}, // not below lease-duration
			"log-level":           {"log-level": "loud"},
			"election-timeout":    {"election-timeout": "100"}, // ms: below the lease
		},
	})
	if err := CheckOptions(map[string]string{"heartbeat": "1s"}); err == nil || !strings.Contains(err.Error(), "heartbeat-interval") {
		t.Errorf("an unknown option: %v, want the known names", err)
	}
	if err := Run(t.Context(), targets.NodeConfig{ID: "n1"}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("Run without addresses: %v, want them required", err)
	}
}

// A primary serves reads only while a majority acknowledged a message
// sent within lease-duration, and only once its epoch's first entry
// committed; with the bug, always.
func TestLeaseRead(t *testing.T) {
	n := openNode(t, t.TempDir(), true)
	n.mu.Lock()
	n.epoch, n.role, n.leader = 3, primary, "n1"
	n.entries = []entry{{Epoch: 3, Index: 1, Op: "noop"}, put(3, 2, "k", "7")}
	n.noop = 1
	n.commitTo(2)
	n.mu.Unlock()
	get := func() (string, error) {
		t.Helper()
		v, err := n.Get(t.Context(), "k")
		return string(v), err
	}
	setAcked := func(ago time.Duration) {
		n.mu.Lock()
		n.acked["n2"] = time.Now().Add(-ago)
		n.mu.Unlock()
	}
	if _, err := get(); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("no acknowledgement yet: %v, want a refusal for want of a lease", err)
	}
	setAcked(n.opts.lease / 3)
	if v, err := get(); err != nil || v != "7" {
		t.Fatalf("within the lease: %q, %v, want 7", v, err)
	}
	setAcked(n.opts.lease + time.Millisecond)
	if _, err := get(); err == nil || !strings.Contains(err.Error(), "lease") {
		t.Fatalf("lease expired: %v, want a refusal", err)
	}
	if n.counters.leaseRefusals.Load() != 2 {
		t.Fatalf("lease refusals %d, want 2", n.counters.leaseRefusals.Load())
	}
	n.noFencing = true
	if v, err := get(); err != nil || v != "7" {
		t.Fatalf("bug no-fencing, lease expired: %q, %v, want 7 served anyway", v, err)
	}
	n.noFencing = false
	setAcked(0)
	n.mu.Lock()
	n.noop = 3 // a later epoch's first entry, not committed
	n.entries = append(n.entries, entry{Epoch: 3, Index: 3, Op: "noop"})
	n.ready = make(chan struct{})
	n.opts.replication = 20 * time.Millisecond
	n.mu.Unlock()
	if _, err := get(); err == nil || !strings.Contains(err.Error(), "first entry") {
		t.Fatalf("first entry not committed: %v, want a refusal", err)
	}
}

// With a token, the peer API refuses requests that do not carry it, and
// the transport sends it.
func TestPeerToken(t *testing.T) {
	n := openNode(t, t.TempDir(), true)
	n.cfg.Token = "s3cret"
	srv, err := n.servePeers("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	body := `{"epoch":1,"candidate":"n2","pre":true}`
	resp, err := http.Post("http://"+srv.addr+"/peer/vote", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("vote without the token: %s, want 401", resp.Status)
	}
	tr := newTransport(targets.NodeConfig{Token: "s3cret", Peers: map[string]string{"n1": srv.addr}}, time.Second)
	defer tr.close()
	if r, err := tr.vote(t.Context(), "n1", voteReq{Epoch: 1, Candidate: "n2", Pre: true}); err != nil || !r.Granted {
		t.Fatalf("pre-vote with the token: %+v, %v, want granted", r, err)
	}
	bad := newTransport(targets.NodeConfig{Token: "wrong", Peers: map[string]string{"n1": srv.addr}}, time.Second)
	defer bad.close()
	if _, err := bad.vote(t.Context(), "n1", voteReq{Epoch: 1, Candidate: "n2", Pre: true}); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("pre-vote with a wrong token: %v, want 401", err)
	}
}
