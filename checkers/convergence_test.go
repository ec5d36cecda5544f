package checkers

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// rread is one replica-read event.
func rread(at int, round int, node, key, value string) string {
	return fmt.Sprintf(`{"type":"info","process":"observer","time":%d,"f":"replica-read","node":"%s","key":"%s","value":{"round":%d,"value":%s}}`, at, node, key, round, value)
}

func healEnds(at int) string {
	return fmt.Sprintf(`{"type":"info","process":"observer","time":%d,"f":"phase","value":"heal","phase":"start"}`+"\n"+
		`{"type":"info","process":"observer","time":%d,"f":"phase","value":"heal","phase":"end"}`, at-10, at)
}

func convergenceOf(t *testing.T, within time.Duration, lines ...string) Result {
	t.Helper()
	return Convergence{Within: within}.Check(context.Background(), Input{Events: eventsOf(t, lines...)})
}

func TestConvergence(t *testing.T) {
	// Round 1 disagrees on k1, round 2 agrees (1.0 and 1 are one value):
	// converged 2 ms after the heal.
	rounds := []string{healEnds(1000),
		rread(1100, 1, "n1", "k1", "1"), rread(1110, 1, "n2", "k1", "2"), rread(1120, 1, "n1", "k2", "null"), rread(1130, 1, "n2", "k2", "null"),
		rread(3000, 2, "n1", "k1", "2"), rread(3010, 2, "n2", "k1", "2.0"), rread(3020, 2, "n1", "k2", "null"), rread(3030, 2, "n2", "k2", "null"),
	}
	ok := convergenceOf(t, time.Second, rounds...)
	if ok.Verdict != Valid || ok.Details["converged_after_ns"] != int64(2030) || !strings.Contains(ok.Summary, "all 2 replicas agreed on all 2 keys") {
		t.Fatalf("converged: %s %s %v", ok.Verdict, ok.Summary, ok.Details)
	}
	late := convergenceOf(t, time.Microsecond, rounds...)
	if late.Verdict != Invalid || !strings.Contains(late.Summary, "converged late") {
		t.Fatalf("converged after the bound: %s %s", late.Verdict, late.Summary)
	}

	// The last round still disagrees on k1; n3 did not answer k2.
	bad := convergenceOf(t, time.Second, healEnds(1000),
		rread(1100, 1, "n1", "k1", "1"), rread(1110, 1, "n2", "k1", "2"), rread(1115, 1, "n3", "k1", "2"),
		rread(1120, 1, "n1", "k2", "5"), rread(1130, 1, "n2", "k2", "5"),
		`{"type":"info","process":"observer","time":1140,"f":"replica-read","node":"n3","key":"k2","value":{"round":1,"error":"connection refused"}}`)
	if bad.Verdict != Invalid || len(bad.Anomalies) != 2 {
		t.Fatalf("diverged: %s %v", bad.Verdict, bad.Anomalies)
	}
	a := bad.Anomalies[0]
	if a.Kind != "diverged" || a.Key != "k1" || !strings.Contains(a.Message, "n1 holds 1 (history.jsonl:3), n2 holds 2 (history.jsonl:4), n3 holds 2") || a.Refs[0] != "history.jsonl:3" {
		t.Errorf("k1: %+v", a)
	}
	if m := bad.Anomalies[1].Message; !strings.Contains(m, "n3 holds no answer (connection refused)") {
		t.Errorf("k2: %s", m)
	}

	if na := convergenceOf(t, time.Second, healEnds(1000)); na.Verdict != NotApplicable {
		t.Errorf("no replica reads: %s", na.Verdict)
	}
}
