// Package reports writes what a run leaves behind: the run directory, the
// results.json contract, and the terminal summary. It formats verdicts; it
// never computes them.
package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/atomicfile"
)

// Results is results.json. Field names are a contract with CI scripts (see
// DESIGN.md); add fields, never rename them.
type Results struct {
	Faultline   string   `json:"faultline"`
	Scenario    string   `json:"scenario"`
	Description string   `json:"description,omitempty"`
	Seed        int64    `json:"seed"`
	Verdict     string   `json:"verdict"` // valid, invalid, unknown
	ExitCode    int      `json:"exit_code"`
	ExitReason  string   `json:"exit_reason"` // one line: why this exit code
	Runtime     string   `json:"runtime,omitempty"`
	System      string   `json:"system,omitempty"`
	Nodes       []string `json:"nodes,omitempty"`
	Bugs        []string `json:"bugs,omitempty"`
	Start       string   `json:"start,omitempty"` // RFC 3339 UTC
	End         string   `json:"end,omitempty"`
	RunDir      string   `json:"run_dir,omitempty"`
	// RunID labels everything the run started (Docker: faultline.run=RunID;
	// `faultline clean --run RunID` removes what a killed run left).
	RunID string `json:"run_id,omitempty"`
	// KeyPrefix starts every key the run sent to the cluster (a run on a
	// shared, external cluster keeps to keys of its own); the history
	// records keys without it.
	KeyPrefix string `json:"key_prefix,omitempty"`
	// RunInvalid says why the run itself could not mean anything (exit 4).
	RunInvalid string `json:"run_invalid,omitempty"`
	// Tampered lists changes to the run's proxies that faultline did not
	// make (a toxic added, a proxy disabled, ...), found while the run went.
	Tampered []string `json:"tampered,omitempty"`
	// Stopped says, for a run that did not finish (exit 70, 130, or 64
	// once the run directory existed), in which phase and why; nil for a
	// run that finished. `faultline check` keeps it.
	Stopped *Stopped `json:"stopped,omitempty"`
	// Checkers keep a sample of their anomalies (AnomalySample each, with
	// anomaly_count); Anomalies says where every one of them is.
	Checkers []checkers.Result `json:"checkers"`
	// Consistency places the run on the consistency ladder (one verdict
	// per model, implied rungs, the strongest model that held); nil when
	// no checker of a model ran.
	Consistency *checkers.Ladder `json:"consistency,omitempty"`
	Anomalies   *AnomalyLog      `json:"anomalies,omitempty"`
	// History is the history judged when it is not the run directory's
	// history.jsonl (faultline check --out DIR of a history elsewhere).
	History string `json:"history,omitempty"`
	// Warnings are what a reader of the verdicts should know (a history
	// cut short by a crash, ...).
	Warnings   []string           `json:"warnings,omitempty"`
	Faults     []Fault            `json:"faults"`
	Schedule   []Fault            `json:"schedule,omitempty"` // planned faults (seeded), before injection; times from the run's start, as Faults
	Phases     []Phase            `json:"phases,omitempty"`
	Stats      Stats              `json:"stats"`
	Extra      map[string]any     `json:"extra,omitempty"`
	Thresholds map[string]float64 `json:"thresholds,omitempty"`
	// Shard says which part of a sharded run this run directory holds
	// (faultline run --shard I/N); nil for a run that is not sharded.
	Shard *ShardInfo `json:"shard,omitempty"`
	// Shards lists the shards a merged run was judged from (faultline
	// check DIR DIR ...), in shard order; empty for any other run.
	Shards []MergedShard `json:"shards,omitempty"`
}

// Phase is one phase of the run, in ns since the run's start: history's
// Phase, the one definition of a phase.
type Phase = history.Phase

// Fault is one fault as planned or injected, in ns since the run's start.
type Fault struct {
	Name    string         `json:"name"`
	Targets []string       `json:"targets,omitempty"`
	Params  map[string]any `json:"params,omitempty"`
	Start   int64          `json:"start_ns"`
	End     int64          `json:"end_ns,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Stopped is how a run that did not finish ended.
type Stopped struct {
	// Phase is the phase the run was in (setup, warmup, main, heal,
	// recovery, final-reads, check).
	Phase    string `json:"phase"`
	ExitCode int    `json:"exit_code"`
	Reason   string `json:"reason"`
}

// Stats summarises the load. Latencies are in microseconds. Three kinds of
// failure are kept apart: Fail counts definite rejections only (the op
// certainly did not take effect), Mismatch the cas ops whose comparison
// failed (fail with error "mismatch": a normal answer, not an error), Info
// the unknown outcomes; Ops == OK + Fail + Mismatch + Info.
type Stats struct {
	Ops          int64              `json:"ops"`
	OK           int64              `json:"ok"`
	Fail         int64              `json:"fail"`
	Mismatch     int64              `json:"mismatch"`
	Info         int64              `json:"info"`
	Missed       int64              `json:"missed,omitempty"` // open loop: scheduled ops never sent
	TargetRate   float64            `json:"target_rate"`      // ops/s; 0 = closed loop
	AchievedRate float64            `json:"achieved_rate"`    // completed ops/s over the main phase
	Duration     float64            `json:"duration_s"`
	Latency      Percentiles        `json:"latency_us"` // from intended start (open loop)
	Service      *Percentiles       `json:"service_us,omitempty"`
	DispatchLag  *Percentiles       `json:"dispatch_lag_us,omitempty"`
	ByF          map[string]OpStats `json:"by_f,omitempty"`
	// ByEndpoint has the figures of each endpoint of a workload that has
	// endpoints (http: each key of its operations), by name.
	ByEndpoint map[string]EndpointStats `json:"by_endpoint,omitempty"`
}

// EndpointStats are one endpoint's figures: its outcomes (as in Stats),
// its latency (from the intended start in open loop) and its service time,
// in microseconds.
type EndpointStats struct {
	OpStats
	Latency Percentiles `json:"latency_us"`
	Service Percentiles `json:"service_us"`
}

// Percentiles of a latency distribution, in microseconds: history's
// Percentiles, the one definition of the figures faultline reports. Compute
// them with history.PercentilesOf (a latency histogram) or
// history.PercentilesOfSamples.
type Percentiles = history.Percentiles

// OpStats counts outcomes of one operation type (Fail, Mismatch and Info
// as in Stats).
type OpStats struct {
	Ops      int64 `json:"ops"`
	OK       int64 `json:"ok"`
	Fail     int64 `json:"fail"`
	Mismatch int64 `json:"mismatch,omitempty"`
	Info     int64 `json:"info"`
}

// WriteResults writes results.json into dir atomically.
func WriteResults(dir string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, "results.json"), append(b, '\n'))
}

// ReadResults reads dir/results.json.
func ReadResults(dir string) (*Results, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "results.json"), err)
	}
	return &r, nil
}

// WriteFileAtomic writes data to a temporary file beside path and renames it.
func WriteFileAtomic(path string, data []byte) error { return atomicfile.WriteBytes(path, data) }

// NewRunDir creates the run directory. If out is not empty the run goes
// exactly there (it must not exist or be empty); else under
// base/<scenario>/<UTC timestamp>/ with a `latest` symlink beside it. The
// scenario name becomes one path component (SafeName), so nothing is
// written outside base; a `latest` that is not a symlink is left alone.
func NewRunDir(base, scenario, out string, now time.Time) (string, error) {
	if out != "" {
		if ents, err := os.ReadDir(out); err == nil && len(ents) > 0 {
			return "", fmt.Errorf("--out %s: the directory exists and is not empty; choose a new path so no earlier run is overwritten", out)
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("--out %s: %w", out, err)
		}
		if err := os.MkdirAll(filepath.Join(out, "nodes"), 0o755); err != nil {
			return "", err
		}
		return out, nil
	}
	parent := filepath.Join(base, SafeName(scenario))
	if rel, err := filepath.Rel(base, parent); err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.ContainsRune(rel, filepath.Separator) {
		return "", fmt.Errorf("scenario name %q does not make a directory inside %s", scenario, base)
	}
	stamp := now.UTC().Format("20060102T150405Z")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	// Mkdir, not a look then MkdirAll: two runs of one scenario started
	// in the same second each get a directory of their own.
	dir := filepath.Join(parent, stamp)
	for i := 2; ; i++ {
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || i > 1000 {
			return "", err
		}
		dir = filepath.Join(parent, fmt.Sprintf("%s-%d", stamp, i))
	}
	if err := os.Mkdir(filepath.Join(dir, "nodes"), 0o755); err != nil {
		return "", err
	}
	latest := filepath.Join(parent, "latest")
	if fi, err := os.Lstat(latest); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return dir, nil // not ours: leave it
	}
	tmp, err := os.MkdirTemp(parent, ".latest-")
	if err != nil {
		return dir, nil
	}
	defer os.RemoveAll(tmp)
	link := filepath.Join(tmp, "latest")
	if err := os.Symlink(filepath.Base(dir), link); err == nil {
		os.Rename(link, latest)
	}
	return dir, nil
}

// SafeName turns a scenario name (from a file or a history, so anything)
// into one path component: letters, digits, '.', '_' and '-' are kept,
// every other character becomes '-', leading dots and dashes go, and the
// result is at most 64 bytes; an empty result is "scenario".
func SafeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if b.Len() >= 64 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.TrimLeft(b.String(), ".-")
	if out == "" {
		return "scenario"
	}
	return out
}

// lockRetry is how long LockRunDir keeps trying a lock another file
// holds: `faultline runs` takes a shared lock on a run's .lock for an
// instant to see whether the run goes on (RunRunning), and a run starting
// in that instant must not be refused for it. A second run on the same
// directory holds it for good and is refused after this.
const lockRetry = 100 * time.Millisecond

// LockRunDir takes an exclusive lock on the run directory dir (a file
// .lock inside it) for as long as the run uses it; a second run on the
// same directory gets an error within lockRetry (0.1 s). unlock releases
// it. ListRuns tells a run that goes on from one that was killed by this
// lock.
func LockRunDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockRetry)
	for {
		err = lockFile(f)
		if err == nil || !lockBusy(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("run directory %s is in use by another faultline run (%v): give each run its own --out", dir, err)
	}
	return func() { f.Close() }, nil
}
