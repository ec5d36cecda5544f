package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

// Hostile strings: what a target could put in keys, values, errors, roles
// and log lines.
const (
	hostileScript = `<script>alert(1)</script>`
	hostileClose  = `"</script><script>alert(2)</script>`
	hostileQuote  = `'";!--"<XSS>=&{()}`
	hostileImg    = `<img src=x onerror=alert(3)>`
	hostileUni    = "ключ\u2028日本語\u0000\x01🙂"
)

type genOpts struct {
	ops     int     // client operations
	rate    float64 // ops/s of simulated time
	hostile bool    // put hostile strings everywhere a target can
	verdict checkers.Verdict
}

// genRun writes a synthetic but well-formed run directory: history.jsonl
// (header, client ops from 16 processes, nemesis and observer events),
// results.json, latency.hlog and nodes/*.log. Faults: a partition window
// over [30%, 40%] of the run (ops fail or time out inside it), an instant
// kill at 60%, and a latency fault from 70% with no recorded end.
func genRun(t testing.TB, dir string, o genOpts) *Results {
	t.Helper()
	if o.rate == 0 {
		o.rate = 2000
	}
	if o.verdict == "" {
		o.verdict = checkers.Valid
	}
	if err := os.MkdirAll(filepath.Join(dir, "nodes"), 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	span := int64(float64(o.ops) / o.rate * 1e9)
	start := int64(500e6)
	end := start + span
	partS, partE := start+span*3/10, start+span*4/10
	killAt := start + span*6/10
	slowS := start + span*7/10

	f, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	hdr, _ := json.Marshal(history.HeaderLine{Type: history.Header, Faultline: "test", Scenario: "synthetic", Seed: 42, Start: "2026-01-02T03:04:05Z"})
	w.Write(append(hdr, '\n'))
	var buf []byte
	emit := func(ev *history.Event) {
		buf = ev.AppendJSON(buf[:0])
		buf = append(buf, '\n')
		w.Write(buf)
	}
	faultName, keyPrefix, errText, role := "partition", "k", "timeout", "leader"
	if o.hostile {
		faultName, keyPrefix, errText, role = hostileScript, hostileClose, hostileImg+hostileQuote, hostileScript
	}
	nemesis := []history.Event{
		{Type: history.Info, Process: history.Nemesis, Time: partS, F: faultName, Value: json.RawMessage(`{"mode":"drop","x":` + jsonQ(hostileClose) + `}`), Phase: "start"},
		{Type: history.Info, Process: history.Nemesis, Time: partE, F: faultName, Value: json.RawMessage(`{"mode":"drop","x":` + jsonQ(hostileClose) + `}`), Phase: "end"},
		{Type: history.Info, Process: history.Nemesis, Time: killAt, F: "kill", Value: json.RawMessage(`["n2"]`)},
		{Type: history.Info, Process: history.Nemesis, Time: slowS, F: "latency", Value: json.RawMessage(`{"ms":200}`), Phase: "start"},
	}
	nextNem := 0
	nextObs := int64(0)
	const procs = 16
	procID := [procs]int{}
	for i := range procID {
		procID[i] = i
	}
	nextProc := procs
	gap := int64(1e9 / o.rate)
	for i := 0; i < o.ops; i++ {
		t0 := start + int64(i)*gap
		for nextNem < len(nemesis) && nemesis[nextNem].Time <= t0 {
			emit(&nemesis[nextNem])
			nextNem++
		}
		for nextObs <= t0 {
			for n := 1; n <= 3; n++ {
				r := "follower"
				term := 1
				if nextObs > partE {
					term = 2
				}
				if n == 1 && nextObs <= partE || n == 3 && nextObs > partE {
					r = role
				}
				ev := history.Event{Type: history.Info, Process: history.Observer, Time: nextObs, F: "status", Node: "n" + strconv.Itoa(n),
					Value: json.RawMessage(fmt.Sprintf(`{"role":%s,"term":%d,"leader":"n1"}`, jsonQ(r), term))}
				if n == 2 && nextObs > killAt && nextObs < killAt+1e9 {
					ev.Value = json.RawMessage(`{"role":"unreachable"}`)
					ev.Error = "connection refused " + errText
				}
				emit(&ev)
			}
			nextObs += 250e6
		}
		w0 := i % procs
		p := history.Process(procID[w0])
		key := keyPrefix + strconv.Itoa(i%8)
		fs := [...]string{"get", "put", "cas"}[i%3]
		inv := history.Event{Type: history.Invoke, Process: p, Time: t0, F: fs, Key: key}
		if fs == "put" {
			inv.Value = json.RawMessage(strconv.Itoa(i))
		}
		emit(&inv)
		lat := int64(math.Exp(rng.NormFloat64()*0.5) * 1.5e6)
		if t0 >= slowS {
			lat += 200e6
		}
		done := history.Event{Process: p, Time: t0 + lat, F: fs, Key: key, Type: history.OK, Node: "n1"}
		switch {
		case t0 >= partS && t0 < partE && i%2 == 0:
			done.Type, done.Error, done.Time = history.Info, errText, t0+500e6
			procID[w0] = nextProc
			nextProc++
		case t0 >= partS && t0 < partE:
			done.Type, done.Error = history.Fail, "no leader "+errText
		case fs == "get":
			done.Value = json.RawMessage(jsonQ(hostileUni))
		}
		emit(&done)
	}
	for ; nextNem < len(nemesis); nextNem++ {
		emit(&nemesis[nextNem])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// latency.hlog: one interval per simulated second.
	hf, err := os.Create(filepath.Join(dir, "latency.hlog"))
	if err != nil {
		t.Fatal(err)
	}
	lw := hdrhistogram.NewHistogramLogWriter(hf)
	baseMs := int64(1767322800000)
	lw.OutputLogFormatVersion()
	lw.OutputStartTime(baseMs)
	lw.OutputBaseTime(baseMs)
	lw.SetBaseTime(baseMs)
	lw.OutputLegend()
	for s := start; s < end; s += 1e9 {
		h := hdrhistogram.New(1, 3_600_000_000, 3)
		for j := 0; j < 50; j++ {
			v := int64(math.Exp(rng.NormFloat64()*0.5) * 1800)
			if s >= slowS {
				v += 200000
			}
			h.RecordValue(v)
		}
		h.SetStartTimeMs(baseMs + s/1e6)
		h.SetEndTimeMs(baseMs + (s+1e9)/1e6)
		if err := lw.OutputIntervalHistogram(h); err != nil {
			t.Fatal(err)
		}
	}
	hf.Close()

	for n := 1; n <= 3; n++ {
		log := fmt.Sprintf("2026/01/02 03:04:05 node n%d started\n", n)
		if o.hostile {
			log += "2026/01/02 03:04:06 got key " + hostileScript + " value " + hostileClose + "\n"
		}
		os.WriteFile(filepath.Join(dir, "nodes", fmt.Sprintf("n%d.log", n)), []byte(log), 0o644)
	}
	os.WriteFile(filepath.Join(dir, "linearizability.html"), []byte("<html></html>"), 0o644)

	r := &Results{
		Faultline: "test", Scenario: "synthetic", Description: "generated for the reports tests", Seed: 42,
		Verdict: string(o.verdict), Runtime: "local", System: "raftkv", Nodes: []string{"n1", "n2", "n3"},
		Start: "2026-01-02T03:04:05Z", End: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(end + 1e9)).Format(time.RFC3339Nano),
		RunDir: dir,
		Phases: []Phase{{Name: "setup", Start: 0, End: 100e6}, {Name: "warmup", Start: 100e6, End: start}, {Name: "main", Start: start, End: end},
			{Name: "heal", Start: end, End: end}, {Name: "recovery", Start: end, End: end + 1e9}},
		Faults: []Fault{
			{Name: faultName, Targets: []string{"n1", "n2|n3"}, Params: map[string]any{"mode": "drop"}, Start: partS, End: partE},
			{Name: "kill", Targets: []string{"n2"}, Start: killAt},
			{Name: "latency", Params: map[string]any{"ms": 200}, Start: slowS, Error: "latency: " + errText},
		},
		Stats: Stats{Ops: int64(o.ops), OK: int64(o.ops * 9 / 10), Fail: int64(o.ops / 20), Info: int64(o.ops / 20), TargetRate: o.rate, AchievedRate: o.rate * 0.99,
			Duration: float64(span) / 1e9, Latency: Percentiles{P50: 1500, P90: 2500, P99: 200000, P999: 500000, Max: 501000, Mean: 9000}},
	}
	r.Checkers = []checkers.Result{
		{Name: "linearizability", Verdict: o.verdict, Summary: "checked " + strconv.Itoa(o.ops) + " ops", Elapsed: 12 * time.Millisecond,
			Explanation: "key " + keyPrefix + "3 read a value no write produced: " + hostileQuote,
			Anomalies:   []checkers.Anomaly{{Kind: "stale-read", Key: keyPrefix + "3", Time: partE + 1e6, Message: "read " + hostileScript + " after " + hostileUni, Data: map[string]any{"value": hostileClose}}},
			Details:     map[string]any{"per_key": map[string]string{keyPrefix + "3": string(o.verdict)}}},
		{Name: "stats", Verdict: checkers.NotApplicable, Figures: true, Summary: "fine"},
	}
	r.Verdict, r.ExitCode, r.ExitReason = string(o.verdict), 0, "every checker valid"
	if o.verdict == checkers.Invalid {
		r.ExitCode, r.ExitReason = 1, "violation found by linearizability"
	}
	if err := WriteResults(dir, r); err != nil {
		t.Fatal(err)
	}
	return r
}

// jsonQ quotes s as a JSON string.
func jsonQ(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
