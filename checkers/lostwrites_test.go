package checkers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/faultline/faultline/history"
)

// hb builds histories for tests: each op is invoked and completed at the
// given times.
type hb struct{ evs []history.Event }

func (h *hb) op(p int, f, key string, inv, comp int64, typ history.Type, arg, out string) {
	var a json.RawMessage
	if arg != "" {
		a = json.RawMessage(arg)
	}
	h.evs = append(h.evs, history.Event{Type: history.Invoke, Process: history.Process(p), Time: inv, F: f, Key: key, Value: a})
	c := history.Event{Type: typ, Process: history.Process(p), Time: comp, F: f, Key: key, Value: a}
	if out != "" {
		c.Value = json.RawMessage(out)
	}
	h.evs = append(h.evs, c)
}

// final marks the final-reads phase: from 50 to 100.
func (h *hb) final() {
	h.phase("final-reads", "start", 50)
	h.phase("final-reads", "end", 100)
}

func (h *hb) phase(name, ph string, t int64) {
	h.evs = append(h.evs, history.Event{Type: history.Info, Process: history.Observer, Time: t, F: "phase", Value: json.RawMessage(`"` + name + `"`), Phase: ph})
}

// sorted returns the events ordered by time (ops above are appended as
// pairs; a real history interleaves them).
func (h *hb) sorted() []history.Event {
	out := append([]history.Event(nil), h.evs...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Time < out[j-1].Time; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func TestLostWrites(t *testing.T) {
	cases := []struct {
		name  string
		build func(h *hb)
		want  Verdict
		kind  string
	}{
		{"final read sees the last write", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "2")
		}, Valid, ""},
		{"final read sees an overwritten value", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
		}, Invalid, "lost-write"},
		{"concurrent writes may land in either order", func(h *hb) {
			h.op(0, "put", "k", 10, 40, history.OK, "1", "")
			h.op(1, "put", "k", 20, 30, history.OK, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
		}, Valid, ""},
		{"final read finds the key absent", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "null")
		}, Invalid, "lost-write"},
		{"an info write may have landed last", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 5, 8, history.Info, "7", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "7")
		}, Valid, ""},
		{"a failed write is not acknowledged", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.Fail, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
		}, Valid, ""},
		{"a successful cas is a write", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "cas", "k", 30, 40, history.OK, `{"from":1,"to":2}`, "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
		}, Invalid, "lost-write"},
		{"a value nobody wrote", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "99")
		}, Invalid, "phantom-value"},
		{"no final read succeeded", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.Info, "", "")
		}, Unknown, ""},
		// Repeated values: a read cannot name the write it saw (it was
		// unknown before the not_applicable verdict existed).
		{"repeated values: not applicable", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "1", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
		}, NotApplicable, ""},
		// Without a final-reads phase there are no final reads: the last
		// reads are not taken for them (they were before this change).
		{"without phase markers: not applicable", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.op(3, "get", "k", 60, 70, history.OK, "", "1")
		}, NotApplicable, ""},
		{"a final-reads phase that never ended: not applicable", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.phase("final-reads", "start", 50)
			h.op(3, "get", "k", 60, 70, history.OK, "", "1")
		}, NotApplicable, ""},
		{"a stale final read that a later final read corrects", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
			h.op(3, "get", "k", 80, 90, history.OK, "", "2")
		}, Invalid, "stale-read"},
		// A value the stale read did not miss (here an info write's) does
		// not show that the missed write survived.
		{"a later final read of another value: lost", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 21, 22, history.OK, "2", "")
			h.op(1, "put", "k", 23, 24, history.Info, "3", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
			h.op(3, "get", "k", 80, 90, history.OK, "", "3")
		}, Invalid, "lost-write"},
		{"a later final read of another missed write: stale", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 21, 22, history.OK, "2", "")
			h.op(1, "put", "k", 23, 24, history.OK, "3", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
			h.op(3, "get", "k", 80, 90, history.OK, "", "2")
		}, Invalid, "stale-read"},
		{"a later final read of the same old value: lost", func(h *hb) {
			h.op(0, "put", "k", 10, 20, history.OK, "1", "")
			h.op(1, "put", "k", 30, 40, history.OK, "2", "")
			h.final()
			h.op(2, "get", "k", 60, 70, history.OK, "", "1")
			h.op(3, "get", "k", 80, 90, history.OK, "", "1")
		}, Invalid, "lost-write"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &hb{}
			c.build(h)
			res := LostWrites{}.Check(context.Background(), Input{Events: h.sorted()})
			if res.Verdict != c.want {
				t.Fatalf("verdict %s, want %s: %s %s", res.Verdict, c.want, res.Summary, res.Explanation)
			}
			if c.kind != "" && (len(res.Anomalies) == 0 || res.Anomalies[0].Kind != c.kind) {
				t.Fatalf("anomalies %+v, want kind %s", res.Anomalies, c.kind)
			}
		})
	}
}

func TestLostWritesFixture(t *testing.T) {
	h, evs, err := history.ReadFile("testdata/lost-write.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	res := LostWrites{}.Check(context.Background(), Input{Header: h, Events: evs})
	if res.Verdict != Invalid || !strings.Contains(res.Explanation, "k1") {
		t.Fatalf("got %s: %s\n%s", res.Verdict, res.Summary, res.Explanation)
	}
	// The same history is not linearizable either (the final read is stale).
	lin := (&Linearizability{}).Check(context.Background(), Input{Header: h, Events: evs})
	if lin.Verdict != Invalid {
		t.Fatalf("linearizability: %s %s", lin.Verdict, lin.Summary)
	}
	for _, f := range []string{"valid-register.jsonl", "concurrent-valid.jsonl"} {
		h, evs, err := history.ReadFile("testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		res := LostWrites{}.Check(context.Background(), Input{Header: h, Events: evs})
		if res.Verdict == Invalid {
			t.Errorf("%s: %s %s", f, res.Summary, fmt.Sprint(res.Anomalies))
		}
	}
}
