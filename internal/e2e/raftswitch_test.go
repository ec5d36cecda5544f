package e2e

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/reports"
)

// historyTimes reads dir's history.jsonl and returns, for each line that
// is a client operation's event (1-based, the header counted), the time
// its operation was invoked; and the time the first fault started (a
// nemesis start event), -1 if none did.
func historyTimes(t *testing.T, dir string) (invoked map[int]int64, firstFault int64) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	invoked = map[int]int64{}
	firstFault = -1
	last := map[int64]int64{} // process -> its latest invoke's time
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		var e struct {
			Type    string          `json:"type"`
			Process json.RawMessage `json:"process"`
			Phase   string          `json:"phase"`
			F       string          `json:"f"`
			Time    int64           `json:"time"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("history.jsonl:%d: %v", n, err)
		}
		if string(e.Process) == `"nemesis"` && e.Phase == "start" && e.F != "heal" {
			if firstFault < 0 || e.Time < firstFault {
				firstFault = e.Time
			}
			continue
		}
		p, err := strconv.ParseInt(string(e.Process), 10, 64)
		if err != nil {
			continue // header, observer, nemesis
		}
		if e.Type == "invoke" {
			last[p] = e.Time
		}
		if at, ok := last[p]; ok {
			invoked[n] = at
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return invoked, firstFault
}

// firstAnomalyInvoked returns the earliest invoke time of the operations
// the anomalies of dir are about (each anomaly's first history line), and
// that line.
func firstAnomalyInvoked(t *testing.T, dir string) (int64, string) {
	t.Helper()
	invoked, _ := historyTimes(t, dir)
	first, ref := int64(math.MaxInt64), ""
	for _, a := range readAnomalies(t, dir) {
		if len(a.Refs) == 0 {
			continue
		}
		i := strings.LastIndexByte(a.Refs[0], ':')
		n, err := strconv.Atoi(a.Refs[0][i+1:])
		if i < 0 || err != nil {
			t.Fatalf("%s anomaly %s: reference %q is not FILE:LINE", a.Checker, a.Kind, a.Refs[0])
		}
		at, ok := invoked[n]
		if !ok {
			t.Fatalf("%s anomaly %s: %s is not a client operation", a.Checker, a.Kind, a.Refs[0])
		}
		if at < first {
			first, ref = at, a.Refs[0]
		}
	}
	if ref == "" {
		t.Fatal("no anomaly names a history line")
	}
	return first, ref
}

// checkFaultOnly checks TestExamples' run of raft-stale-read or
// raft-lease-read, whose bugs are invisible without faults: split-brain
// finds the deposed leader still serving, and the first operation any
// anomaly is about was invoked after the first fault started.
func checkFaultOnly(t *testing.T, dir string) {
	res, err := reports.ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	sb := checkerResult(t, res, "split-brain")
	deposed := 0
	for _, a := range sb.Anomalies {
		if a.Kind == "deposed-leader" {
			deposed++
		}
	}
	if sb.Verdict != checkers.Invalid || deposed == 0 {
		t.Errorf("split-brain %s with %d deposed-leader anomalies, want invalid naming the deposed leader: %s", sb.Verdict, deposed, sb.Summary)
	}
	_, firstFault := historyTimes(t, dir)
	if firstFault < 0 {
		t.Fatal("no fault started")
	}
	first, ref := firstAnomalyInvoked(t, dir)
	t.Logf("first fault at %v; first anomaly's operation (%s) invoked at %v", time.Duration(firstFault), ref, time.Duration(first))
	if first <= firstFault {
		t.Errorf("the operation of anomaly %s was invoked at %v, before the first fault started (%v): the bug shows without faults", ref, time.Duration(first), time.Duration(firstFault))
	}
}

// TestRaftSwitchLeasePartitionOnly runs raft-lease-read without its clock
// faults: the leader partitions alone cannot stretch the read lease past
// the next election (it is shorter than the followers' election timeout),
// so the run is valid.
func TestRaftSwitchLeasePartitionOnly(t *testing.T) {
	src := readText(t, filepath.Join(moduleRoot(t), "examples", "raft-lease-read.yaml"))
	var kept []string
	partitions := 0
	for _, l := range strings.Split(src, "\n") {
		if strings.Contains(l, "fault: clock-skew") {
			continue
		}
		if strings.Contains(l, "fault: partition-leader") {
			partitions++
		}
		kept = append(kept, l)
	}
	if partitions == 0 || len(kept) == len(strings.Split(src, "\n")) {
		t.Fatalf("raft-lease-read.yaml no longer has clock-skew and partition-leader faults on separate lines:\n%s", src)
	}
	path := filepath.Join(t.TempDir(), "raft-lease-partitions.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", path, "--out", filepath.Join(t.TempDir(), "run"), "--seed", "7", "--quiet"}
	if shortRuns() {
		args = append(args, "--duration", "8s")
	}
	code, out := faultline(t, 5*time.Minute, args...)
	if code != 0 {
		t.Fatalf("exit %d, want 0: lease reads without clock faults must stay linearizable\n%s", code, out)
	}
	res, err := reports.ReadResults(args[3])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Faults) == 0 {
		t.Fatal("no fault was injected")
	}
	for _, name := range []string{"linearizability", "split-brain"} {
		if c := checkerResult(t, res, name); c.Verdict != checkers.Valid {
			t.Errorf("%s %s, want valid: %s", name, c.Verdict, c.Summary)
		}
	}
}
