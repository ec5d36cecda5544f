// Package kvtest is what the tests of the key-value client adapters
// (etcdkv, rediskv) share: a real server process started and stopped
// (Start), a real Toxiproxy proxy driven by faultline's own link faults
// (StartProxy), the checks every adapter must pass (the register
// operations, the "not sent" rule through a proxy, option refusals), and
// a listener that never answers.
package kvtest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// Do performs f on key with value (JSON; "" for none) through c.
func Do(c targets.Client, f, key, value string) history.Outcome {
	op := history.Op{F: f, Key: key}
	if value != "" {
		op.Value = json.RawMessage(value)
	}
	return c.Do(context.Background(), op)
}

// Expect is what an adapter's outcomes look like, for the checks of this
// package.
type Expect struct {
	// Name is the adapter's: its error texts start "Name: ".
	Name string
	// Terms: an answered op carries a term > 0 (etcd's Raft term); else
	// never one (redis).
	Terms bool
	// NodeAlways: every outcome of a well-formed op, answered or not,
	// names the node it was sent to (redis: one address per op); else
	// only an answer names a node (etcd names the member that answered).
	NodeAlways bool
}

// unanswered returns the node an outcome without an answer names.
func (e Expect) unanswered(node string) string {
	if e.NodeAlways {
		return node
	}
	return ""
}

// answered fails t unless out names node and carries a term as e says.
func (e Expect) answered(t testing.TB, what string, out history.Outcome, node string) {
	t.Helper()
	if out.Node != node || (out.Term > 0) != e.Terms {
		t.Fatalf("%s: node %q term %d, want node %q and %s", what, out.Node, out.Term, node, map[bool]string{true: "a term > 0", false: "no term"}[e.Terms])
	}
}

// OK fails t unless out is ok, answered by node.
func (e Expect) OK(t testing.TB, what string, out history.Outcome, node string) {
	t.Helper()
	if out.Type != history.OK {
		t.Fatalf("%s: %+v, want ok", what, out)
	}
	e.answered(t, what, out, node)
}

// Value fails t unless out is ok, answered by node, and read value.
func (e Expect) Value(t testing.TB, what string, out history.Outcome, node, value string) {
	t.Helper()
	e.OK(t, what, out, node)
	if string(out.Value) != value {
		t.Fatalf("%s: value %s, want %s", what, out.Value, value)
	}
}

// Mismatch fails t unless out is a cas's fail "mismatch", answered by
// node.
func (e Expect) Mismatch(t testing.TB, what string, out history.Outcome, node string) {
	t.Helper()
	if !history.IsMismatch(out.Type, out.Error) || out.Error != history.Mismatch {
		t.Fatalf("%s: %+v, want fail %q", what, out, history.Mismatch)
	}
	e.answered(t, what, out, node)
}

// ClosedFails closes c and checks that an op then fails, not sent,
// saying why.
func (e Expect) ClosedFails(t testing.TB, c targets.Client) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
	if out := Do(c, "put", "k", `1`); out.Type != history.Fail || out.Error != e.Name+": not sent: the client is closed" {
		t.Errorf("put after Close: %+v, want fail %q", out, e.Name+": not sent: the client is closed")
	}
}

// RegisterOps checks c, a client of one server (node id node) with no
// keys yet, against the register semantics of every key-value adapter
// (the KV ops of DESIGN.md): an absent key reads null; values are stored
// as canonical JSON (1.0 reads 1, a cas from 1e0 matches it); a cas whose
// comparison fails is fail "mismatch" and writes nothing; null is
// absence (put null and cas to null delete, a cas from null needs the key
// absent); a malformed op is fail with an error of the adapter, and so is
// an op whose context is done. It leaves keys k and fresh absent, and f
// holding "x".
func (e Expect) RegisterOps(t *testing.T, c targets.Client, node string) {
	t.Helper()
	e.Value(t, "get of an absent key", Do(c, "get", "k", ""), node, "null")
	e.OK(t, "put string", Do(c, "put", "k", `"a b"`), node)
	e.Value(t, "get string", Do(c, "get", "k", ""), node, `"a b"`)
	e.OK(t, "put number", Do(c, "put", "k", ` 42 `), node)
	e.Value(t, "get number", Do(c, "get", "k", ""), node, `42`)
	e.OK(t, "put 1.0", Do(c, "put", "f", `1.0`), node)
	e.Value(t, "get 1.0 (canonical)", Do(c, "get", "f", ""), node, `1`)

	e.OK(t, "cas 42 -> 43", Do(c, "cas", "k", `{"from": 42, "to": 43}`), node)
	e.Value(t, "get after cas", Do(c, "get", "k", ""), node, `43`)
	e.OK(t, "cas from 1 (stored as 1.0)", Do(c, "cas", "f", `{"from": 1e0, "to": "x"}`), node)
	e.Mismatch(t, "cas with a wrong from", Do(c, "cas", "k", `{"from": 41, "to": 44}`), node)
	e.Value(t, "get after mismatch", Do(c, "get", "k", ""), node, `43`)
	e.Mismatch(t, "cas from 1 on an absent key", Do(c, "cas", "absent", `{"from": 1, "to": 2}`), node)
	e.Value(t, "the mismatch wrote nothing", Do(c, "get", "absent", ""), node, `null`)

	e.OK(t, "cas from null on an absent key", Do(c, "cas", "fresh", `{"from": null, "to": "v1"}`), node)
	e.Value(t, "get after cas from null", Do(c, "get", "fresh", ""), node, `"v1"`)
	e.Mismatch(t, "cas from null on a present key", Do(c, "cas", "fresh", `{"from": null, "to": "v2"}`), node)
	e.OK(t, "put null", Do(c, "put", "fresh", `null`), node)
	e.Value(t, "get after put null", Do(c, "get", "fresh", ""), node, `null`)
	e.OK(t, "cas to null", Do(c, "cas", "k", `{"from": 43, "to": null}`), node)
	e.Value(t, "get after cas to null", Do(c, "get", "k", ""), node, `null`)

	for _, bad := range []history.Op{
		{F: "delete", Key: "k"},
		{F: "put", Key: "k"},
		{F: "put", Key: "k", Value: json.RawMessage(`{`)},
		{F: "put", Key: "", Value: json.RawMessage(`1`)},
		{F: "cas", Key: "k", Value: json.RawMessage(`{"from": 1}`)},
	} {
		out := c.Do(context.Background(), bad)
		if out.Type != history.Fail || !strings.HasPrefix(out.Error, e.Name+": ") {
			t.Errorf("%+v: %+v, want fail with an error starting %q", bad, out, e.Name+": ")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := c.Do(ctx, history.Op{F: "put", Key: "k", Value: json.RawMessage(`1`)})
	if out.Type != history.Fail || !strings.HasPrefix(out.Error, e.Name+": not sent") {
		t.Errorf("put with a done context: %+v, want fail, not sent", out)
	}
	e.Value(t, "get after the put with a done context", Do(c, "get", "k", ""), node, `null`)
}
