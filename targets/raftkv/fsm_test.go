package raftkv

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/faultline/faultline/targets"
)

func applyCmd(t *testing.T, f *fsm, index uint64, c command) applyResult {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return f.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: b}).(applyResult)
}

func TestFSMApplySnapshotRestore(t *testing.T) {
	f := newFSM()
	if got := string(f.get("k")); got != "null" {
		t.Fatalf("absent key reads %s, want null", got)
	}
	if r := applyCmd(t, f, 1, command{Op: "cas", Key: "k", From: json.RawMessage(`1`), To: json.RawMessage(`2`)}); !r.Mismatch {
		t.Fatalf("cas from 1 on an absent key: %+v, want mismatch", r)
	}
	if r := applyCmd(t, f, 2, command{Op: "cas", Key: "k", From: json.RawMessage(`null`), To: json.RawMessage(`"a"`)}); r.Mismatch || r.Err != nil {
		t.Fatalf("cas from null on an absent key: %+v, want success", r)
	}
	applyCmd(t, f, 3, command{Op: "put", Key: "j", Value: json.RawMessage(`{"x":1}`)})
	if r := applyCmd(t, f, 4, command{Op: "cas", Key: "j", From: json.RawMessage(`{"x":1}`), To: json.RawMessage(`5`)}); r.Mismatch {
		t.Fatal("cas with the stored value mismatched")
	}
	if r := f.Apply(&raft.Log{Index: 5, Data: []byte(`{"op":"drop"}`)}).(applyResult); r.Err == nil {
		t.Fatal("unknown op applied without error")
	}

	// Snapshot into raft's in-memory snapshot store, restore into a new FSM.
	store := raft.NewInmemSnapshotStore()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	applyCmd(t, f, 6, command{Op: "put", Key: "k", Value: json.RawMessage(`"after"`)}) // not in the snapshot
	sink, err := store.Create(raft.SnapshotVersionMax, 4, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	g := newFSM()
	applyCmd(t, g, 1, command{Op: "put", Key: "stale", Value: json.RawMessage(`1`)})
	if err := g.Restore(rc); err != nil {
		t.Fatal(err)
	}
	if g.len() != 2 || string(g.get("k")) != `"a"` || string(g.get("j")) != `5` || string(g.get("stale")) != "null" {
		t.Fatalf("restored state: k=%s j=%s stale=%s len=%d; want k=\"a\" j=5, no stale, 2 keys", g.get("k"), g.get("j"), g.get("stale"), g.len())
	}
	if err := g.Restore(io.NopCloser(strings.NewReader(`{"version":2,"data":{}}`))); err == nil {
		t.Fatal("restore accepted an unknown snapshot version")
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(map[string]string{"heartbeat-timeout": "500", "election-timeout": "1s", "snapshot-threshold": "10"})
	if err != nil {
		t.Fatal(err)
	}
	if o.heartbeat.Milliseconds() != 500 || o.election.Milliseconds() != 1000 || o.snapThreshold != 10 || o.lease.Milliseconds() != 150 {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range []map[string]string{
		{"heartbeat": "1s"},
		{"election-timeout": "soon"},
		{"snapshot-threshold": "-1"},
		{"log-level": "loud"},
		{"unsynced-flush": "0"},
		{"unsynced-flush": "-1"},
		{"apply-timeout": "-500"},
		{"heartbeat-timeout": "0"},
		{"commit-timeout": "0s"},
		{"transport-timeout": "9223372036854775807"},
	} {
		if _, err := parseOptions(bad); err == nil {
			t.Errorf("parseOptions(%v) accepted it", bad)
		}
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	base := targets.NodeConfig{System: Name, ID: "n1", Listen: "127.0.0.1:0", Admin: "127.0.0.1:0", PeerListen: "127.0.0.1:0", DataDir: t.TempDir()}
	for name, mod := range map[string]func(*targets.NodeConfig){
		"lease above heartbeat": func(c *targets.NodeConfig) {
			c.Opts = map[string]string{"leader-lease-timeout": "1s", "heartbeat-timeout": "500ms"}
		},
		"unknown bug":    func(c *targets.NodeConfig) { c.Bugs = []string{"no-such-bug"} },
		"no data dir":    func(c *targets.NodeConfig) { c.DataDir = "" },
		"unknown option": func(c *targets.NodeConfig) { c.Opts = map[string]string{"x": "1"} },
	} {
		cfg := base
		mod(&cfg)
		if err := targets.RunNode(context.Background(), cfg); err == nil {
			t.Errorf("%s: RunNode returned nil, want an error", name)
		}
	}
}

func TestDataDirInUse(t *testing.T) {
	c := startCluster(t, 1)
	cfg := c.Nodes["n1"].Cfg
	cfg.Listen, cfg.Admin, cfg.PeerListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Opts = map[string]string{"lock-timeout": "100ms"}
	if err := targets.RunNode(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "another node") {
		t.Fatalf("second node on the same data directory: %v, want an error naming the cause", err)
	}
}
