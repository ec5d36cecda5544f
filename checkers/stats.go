package checkers

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// Stats summarises a history: operation counts by outcome and f, the
// achieved rate over the main phase, and latency percentiles computed from
// invoke to completion. These are the figures `faultline check` can
// reproduce from a history alone (the workload's own HdrHistograms, which
// measure from the intended start, are not in the history).
//
// Three kinds of failure are counted apart, in Details and the Summary:
// "fail" counts definite rejections (type fail: the operation certainly did
// not take effect), excluding "mismatch", the completions of type fail with
// error "mismatch" (a cas whose comparison failed: a normal answer, not an
// error; counted as report.html counts them); "info" counts unknown
// outcomes. With "ok" and "pending"
// (invoked, never completed) they add up to "ops", in total and per f
// ("by_f").
//
// Its figures are reported, not judged: the verdict is NotApplicable
// ("figures, not a verdict", with Result.Figures set) unless the history is malformed (a completion
// without an invoke, two invokes of one process without a completion in
// between, a process invoking again after an info completion, a completion
// whose f or key differs from its invoke, or one stamped before its
// invoke), which makes it Unknown with every problem as an anomaly.
//
// The main phase is [MainStart, MainEnd] if MainEnd > 0; else the phase
// "main" of the history's phase markers (history.Phases), if it ended; else
// the span from the first invoke to the last completion. Latency figures
// are history.PercentilesOfSamples'. When the main phase is known, the
// Summary and Details ("ops_main_phase", "ops_final_reads") say how many
// ops were invoked in it (a run's load: the workload's own count) and how
// many in the final reads: the history's ops are more than the load's.
//
// The zero value is ready to use; a Stats is safe for concurrent use.
type Stats struct {
	MainStart, MainEnd int64 // ns since the run's start
}

// Name returns "stats".
func (Stats) Name() string { return "stats" }

// Check implements Checker. It is linear in the history and ignores Budget.
func (s Stats) Check(ctx context.Context, in Input) (res Result) {
	start := time.Now()
	res = Result{Name: s.Name()}
	defer func() { res.Elapsed = time.Since(start) }()

	ops, probs := pairOps(in)
	d := make(map[string]any)
	res.Details = d

	type counts struct{ ops, ok, fail, mismatch, info, pending int64 }
	var total counts
	byF := make(map[string]*counts)
	latOK := make(map[string][]int64)
	var okLat, allLat []int64
	procs := make(map[history.Process]bool)
	for i := range ops {
		op := &ops[i]
		procs[op.Process] = true
		c := byF[op.F]
		if c == nil {
			c = new(counts)
			byF[op.F] = c
		}
		c.ops++
		total.ops++
		switch {
		case op.Pending():
			c.pending++
			total.pending++
			continue
		case op.Type == history.OK:
			c.ok++
			total.ok++
		case history.IsMismatch(op.Type, in.Events[op.Comp].Error):
			c.mismatch++
			total.mismatch++
		case op.Type == history.Fail:
			c.fail++
			total.fail++
		default:
			c.info++
			total.info++
		}
		lat := op.Return - op.Call
		if lat < 0 {
			continue // reported as a problem
		}
		allLat = append(allLat, lat)
		if op.Type == history.OK {
			okLat = append(okLat, lat)
			latOK[op.F] = append(latOK[op.F], lat)
		}
	}
	d["ops"] = total.ops
	d["ok"] = total.ok
	d["fail"] = total.fail
	d["mismatch"] = total.mismatch
	d["info"] = total.info
	d["pending"] = total.pending
	d["processes"] = len(procs)
	fs := make(map[string]any, len(byF))
	for f, c := range byF {
		m := map[string]any{"ops": c.ops, "ok": c.ok, "fail": c.fail, "info": c.info}
		if c.mismatch > 0 {
			m["mismatch"] = c.mismatch
		}
		if c.pending > 0 {
			m["pending"] = c.pending
		}
		if l := latOK[f]; len(l) > 0 {
			m["latency_us"] = history.PercentilesOfSamples(l).Map()
		}
		fs[f] = m
	}
	d["by_f"] = fs
	d["latency_us"] = history.PercentilesOfSamples(okLat).Map()
	d["latency_all_us"] = history.PercentilesOfSamples(allLat).Map()
	if n := len(in.Events); n > 0 {
		d["duration_s"] = float64(in.Events[n-1].Time-in.Events[0].Time) / 1e9
	} else {
		d["duration_s"] = 0.0
	}
	faults := 0
	for _, w := range history.FaultWindows(in.Events) {
		if !w.Instant {
			faults++
		}
	}
	d["faults"] = faults

	// Rate over the main phase.
	ws, we, source := s.window(in.Events, ops)
	var done, okDone int64
	for i := range ops {
		op := &ops[i]
		if op.Pending() || op.Return < ws || op.Return > we {
			continue
		}
		done++
		if op.Type == history.OK {
			okDone++
		}
	}
	d["rate_window"] = map[string]any{"start_ns": ws, "end_ns": we, "source": source}
	// Where the ops were invoked, when the phases are known: the main
	// phase's load, the final reads, other phases.
	split := ""
	if source != "history" {
		final, hasFinal := history.FindPhase(history.Phases(in.Events), "final-reads")
		var inMain, inFinal int64
		for i := range ops {
			switch c := ops[i].Call; {
			case c >= ws && c <= we:
				inMain++
			case hasFinal && c >= final.Start && (final.Open() || c <= final.End):
				inFinal++
			}
		}
		d["ops_main_phase"], d["ops_final_reads"] = inMain, inFinal
		parts := []string{fmt.Sprintf("%d invoked in the main phase", inMain)}
		if inFinal > 0 {
			parts = append(parts, fmt.Sprintf("%d in the final reads", inFinal))
		}
		if other := total.ops - inMain - inFinal; other > 0 {
			parts = append(parts, fmt.Sprintf("%d in other phases", other))
		}
		split = " (" + strings.Join(parts, ", ") + ")"
	}
	if span := float64(we-ws) / 1e9; span > 0 {
		d["achieved_rate"] = float64(done) / span
		d["ok_rate"] = float64(okDone) / span
	} else {
		d["achieved_rate"] = 0.0
		d["ok_rate"] = 0.0
	}

	if len(probs) > 0 {
		// A malformed history says nothing about the system under test:
		// the verdict is inconclusive (exit 2), not a violation.
		res.Verdict = Unknown
		p := probs[0]
		res.Summary = fmt.Sprintf("history is malformed: %s, the first at %s", plural(len(probs), "problem"), in.Ref(p.Event))
		res.Explanation = fmt.Sprintf("The history breaks the process-sequential rule at %s: %s. Every client process must alternate invoke and completion, and must not invoke again after an info completion; no checker can trust the pairing of operations otherwise. Fix the recorder or the tool that wrote the history.",
			in.Ref(p.Event), p.Message)
		res.Anomalies = problemAnomalies(in, probs)
		res.AnomalyCount = len(res.Anomalies)
		d["problems"] = len(probs)
		return res
	}
	res.Verdict, res.Figures = NotApplicable, true
	lat := d["latency_us"].(map[string]float64)
	res.Summary = fmt.Sprintf("figures, not a verdict: history: %d ops%s: %d ok, %s, %s, %s, %d pending; %.1f ops/s completed in the main phase; ok ops from invoke to completion p50 %s p99 %s max %s",
		total.ops, split, total.ok, plural64(total.mismatch, "cas mismatch", "cas mismatches"),
		plural64(total.fail, "definite rejection (fail)", "definite rejections (fail)"),
		plural64(total.info, "unknown outcome (info)", "unknown outcomes (info)"),
		total.pending, d["achieved_rate"], usText(lat["p50"]), usText(lat["p99"]), usText(lat["max"]))
	return res
}

// window returns the main phase and where it came from.
func (s Stats) window(evs []history.Event, ops []clientOp) (int64, int64, string) {
	if s.MainEnd > 0 {
		return s.MainStart, s.MainEnd, "given"
	}
	if p, ok := history.FindPhase(history.Phases(evs), "main"); ok && !p.Open() && p.End > p.Start {
		return p.Start, p.End, "phase markers"
	}
	ws, we := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range ops {
		op := &ops[i]
		ws = min(ws, op.Call)
		if !op.Pending() {
			we = max(we, op.Return)
		}
	}
	if we < ws {
		return 0, 0, "history"
	}
	return ws, we, "history"
}

func usText(us float64) string {
	d := time.Duration(us * 1e3)
	if d >= 10*time.Microsecond {
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

func plural64(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
