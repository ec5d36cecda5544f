package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/testenv"
)

// requireEtcd fails under CI=true, and skips elsewhere, when Debian's etcd
// (etcd-server) is not installed: the etcd examples run it.
func requireEtcd(t *testing.T) {
	t.Helper()
	testenv.Etcd(t)
}

// processLeftovers lists the processes of the named binaries still running with
// a command line that names dir (the run directory of a local run of a
// process target).
func processLeftovers(dir string, binaries ...string) []string {
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		named := false
		for _, b := range binaries {
			named = named || strings.Contains(cmd, b)
		}
		if named && strings.Contains(cmd, dir) && !strings.Contains(string(stat), ") Z ") {
			out = append(out, e.Name()+": "+cmd)
		}
	}
	return out
}

// TestEtcdPeerPartitionRefusedLocally: a peer partition asked of etcd on
// the local runtime, where one resolver serves every member, is refused at
// validation (exit 64), naming the reason and the line, before anything
// starts.
func TestEtcdPeerPartitionRefusedLocally(t *testing.T) {
	requireEtcd(t)
	src, err := os.ReadFile(filepath.Join(moduleRoot(t), "examples", "etcd-process.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), "    - {fault: kill, target: leader}\n", "    - {fault: kill, target: leader}\n    - {fault: partition-leader, mode: drop}\n", 1)
	line := 0
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, "partition-leader") {
			line = i + 1
		}
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "etcd-local-partition.yaml")
	os.WriteFile(f, []byte(text), 0o644)
	code, out := faultline(t, time.Minute, "run", f, "--out", filepath.Join(dir, "run"))
	want := "etcd-local-partition.yaml:" + strconv.Itoa(line) + ":"
	if code != 64 || !strings.Contains(out, want) || !strings.Contains(out, "one resolver") || !strings.Contains(out, "runtime docker") {
		t.Errorf("exit %d, want 64 at %s saying why (one resolver) and what to do (runtime docker)\n%s", code, want, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Errorf("a run directory was created for a refused scenario")
	}
	if left := processLeftovers(dir, "etcd"); len(left) > 0 {
		t.Errorf("etcd started for a refused scenario: %v", left)
	}
}

// cutsWereReal checks, from the history of an etcd run on Docker, that its
// partitions really cut etcd's links: after every partition that isolated
// the leader, a member on the majority side became leader in a higher term
// while the partition lasted or within a second of its heal (an election
// can take longer than a partition: etcd's status reports a term only once
// the member has a leader in it), and the isolated members' applied index
// stood still once the cut had settled (0.5 s). It returns how many
// partitions of the leader it checked.
func cutsWereReal(t *testing.T, dir string) int {
	t.Helper()
	_, evs, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	type status struct {
		Role         string `json:"role"`
		Term         uint64 `json:"term"`
		AppliedIndex uint64 `json:"applied_index"`
	}
	type fault struct {
		Fault   string     `json:"fault"`
		ID      int        `json:"id"`
		Targets []string   `json:"targets"`
		Groups  [][]string `json:"groups"`
	}
	var obs []history.Event
	starts, ends := map[int]history.Event{}, map[int]int64{}
	for _, e := range evs {
		if e.Process == history.Observer && e.F == "status" && e.Error == "" {
			obs = append(obs, e)
		}
		if e.Process == history.Nemesis {
			var f fault
			if json.Unmarshal(e.Value, &f) == nil && strings.HasPrefix(f.Fault, "partition") {
				if e.Phase == "start" {
					starts[f.ID] = e
				} else if e.Phase == "end" {
					ends[f.ID] = e.Time
				}
			}
		}
	}
	checked := 0
	for id, s := range starts {
		var f fault
		json.Unmarshal(s.Value, &f)
		end, ok := ends[id]
		if !ok {
			continue
		}
		isolated := f.Targets
		if len(f.Groups) == 2 {
			isolated = f.Groups[0]
			if len(f.Groups[1]) < len(isolated) {
				isolated = f.Groups[1]
			}
		}
		// The leader and the highest term the observer saw before the cut.
		leader, term := "", uint64(0)
		for _, e := range obs {
			var st status
			if e.Time > s.Time || json.Unmarshal(e.Value, &st) != nil {
				continue
			}
			term = max(term, st.Term)
			if st.Role == "leader" {
				leader = e.Node
			}
		}
		if !slices.Contains(isolated, leader) {
			continue
		}
		checked++
		newLeader := false
		applied := map[string]map[uint64]bool{}
		for _, e := range obs {
			var st status
			if e.Time < s.Time || e.Time > end+int64(time.Second) || json.Unmarshal(e.Value, &st) != nil {
				continue
			}
			if !slices.Contains(isolated, e.Node) && st.Role == "leader" && st.Term > term {
				newLeader = true
			}
			if slices.Contains(isolated, e.Node) && e.Time > s.Time+int64(500*time.Millisecond) && e.Time <= end && st.AppliedIndex > 0 {
				if applied[e.Node] == nil {
					applied[e.Node] = map[uint64]bool{}
				}
				applied[e.Node][st.AppliedIndex] = true
			}
		}
		if !newLeader {
			t.Errorf("partition %d (%s, history.jsonl:%d) isolated leader %s, and no member of the majority became leader in a term above %d while it lasted or within 1 s of its heal: the cut was not real", id, f.Fault, s.Line, leader, term)
		}
		for n, idx := range applied {
			if len(idx) > 1 {
				t.Errorf("partition %d (%s, history.jsonl:%d): isolated member %s applied entries while cut off (applied indexes %v)", id, f.Fault, s.Line, n, slices.Sorted(maps.Keys(idx)))
			}
		}
	}
	return checked
}

// TestFaultsOfAProcessTarget: `faultline faults --system process` says
// which faults a process target whose nodes name their peers can take on
// each runtime: peer partitions only on Docker.
func TestFaultsOfAProcessTarget(t *testing.T) {
	avail := func(runtime string) string {
		code, out := faultline(t, time.Minute, "faults", "--system", "process", "--runtime", runtime)
		if code != 0 {
			t.Fatalf("faults --runtime %s: exit %d\n%s", runtime, code, out)
		}
		i := strings.Index(out, "\npartition-leader ")
		j := strings.Index(out[i+1:], "available")
		return strings.SplitN(out[i+1+j:], "\n", 2)[0]
	}
	if a := avail("local"); !strings.Contains(a, "NO") || !strings.Contains(a, "one resolver") {
		t.Errorf("local: partition-leader %q, want NO with the reason", a)
	}
	if a := avail("docker"); !strings.Contains(a, "yes") {
		t.Errorf("docker: partition-leader %q, want yes", a)
	}
}
