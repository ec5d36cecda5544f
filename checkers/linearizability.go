package checkers

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/history"
)

// DefaultLinearizabilityBudget is the time the linearizability checker
// spends when Input.Budget is 0.
const DefaultLinearizabilityBudget = 60 * time.Second

// DefaultVisualizeMaxOps bounds the operations drawn in linearizability.html
// (a browser struggles with more).
const DefaultVisualizeMaxOps = 20000

// DefaultMaxKeyOps bounds the operations checked on one key. Porcupine's
// memory grows with the square of a key's operations (about 0.5 GB at
// 20,000); beyond the bound only a prefix of the key's history is checked.
const DefaultMaxKeyOps = 20000

// explainGrace is the least time given to explaining a violation (and
// drawing it) once the verdict is known, even if the budget is spent.
const explainGrace = time.Second

// maxDrawnIllegalKeys bounds the keys drawn in linearizability.html when
// some are not linearizable (every such key is explained, time allowing).
const maxDrawnIllegalKeys = 8

// Linearizability checks that the register operations of a history (get or
// read, put or write, cas) are linearizable, key by key, with Porcupine.
//
// Model: each key is a register that starts absent (null). An ok operation
// took effect between its invoke and its completion. An info operation, or
// an invoke with no completion, may have taken effect at any time after its
// invoke or never (its return is after every event of the history). Failed
// reads and failed writes are dropped; a cas that failed with error
// "mismatch" did not take effect but observed that the register did not
// hold its "from" value. Values are compared as JSON (1 equals 1.0, object
// key order does not matter).
//
// Keys are told apart by identity (history.Event.KeyID: the number 1 and the
// string "1" are different registers). Written values need not be unique:
// a history whose writes repeat values is judged like any other (Unknown
// only if the budget runs out).
//
// Keys are checked concurrently. Running out of Input.Budget (default
// DefaultLinearizabilityBudget) or ctx gives Unknown, never Valid; once a
// violation is found, up to one more second may be spent explaining it. If
// Input.OutDir is set, linearizability.html (Porcupine's visualization, with
// fault windows as annotations) is written there; each operation's details
// there start with its line in the history (Input.Ref).
//
// Evidence: an Invalid result has one anomaly per key that is not
// linearizable (AnomalyCount says how many). Each names the operation that
// could not take effect (its Node the node that answered it, its Refs that
// operation's completion and invoke first, then the operations that
// contradict it) and its kind: "stale-read" (a read of a value an
// acknowledged write had replaced, where a later read shows that write or
// a newer value), "lost-write" (the same, where no later read shows it),
// "stale-cas", "never-written", "future-read", "mismatch-contradicted" or
// "nonlinearizable" (no simpler diagnosis). Messages name operations by
// Input.Ref and the node that answered them.
//
// The zero value is ready to use; a Linearizability is safe for concurrent
// use.
type Linearizability struct {
	// VisualizeMaxOps bounds the operations drawn in linearizability.html;
	// 0 means DefaultVisualizeMaxOps. Keys are drawn whole, violations first.
	VisualizeMaxOps int
	// Workers is the number of keys checked at once; 0 means GOMAXPROCS.
	Workers int
	// MaxKeyOps bounds the operations checked on one key; 0 means
	// DefaultMaxKeyOps. A key with more is checked on the prefix of its
	// history up to the bound: a violation there is a violation (Invalid),
	// but a valid prefix leaves the key Unknown.
	MaxKeyOps int

	disablePruning bool // tests: check info writes nobody observed, too
}

// Name returns "linearizability".
func (Linearizability) Name() string { return "linearizability" }

// keyOutcome is the verdict on one key.
type keyOutcome struct {
	key       history.Key
	ops       int      // operations on the key
	checked   []*regOp // what was checked (a prefix if truncated)
	truncated bool     // only a prefix was checked
	result    porcupine.CheckResult
	why       string // for Unknown: "budget", "cancelled" or "truncated"
	elapsed   time.Duration
}

// Check implements Checker.
func (l Linearizability) Check(ctx context.Context, in Input) (res Result) {
	start := time.Now()
	res = Result{Name: l.Name()}
	defer func() { res.Elapsed = time.Since(start) }()

	budget := in.Budget
	if budget <= 0 {
		budget = DefaultLinearizabilityBudget
	}
	deadline := start.Add(budget)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	h, probs, err := buildRegisterHistory(in, !l.disablePruning)
	if err != nil {
		res.Verdict = Unknown
		res.Summary = "could not read the history's register operations"
		res.Explanation = fmt.Sprintf("A register value could not be read: %v. Values must be JSON; a cas value must be {\"from\":X,\"to\":Y}. Fix the tool that wrote the history.", err)
		return res
	}
	if len(probs) > 0 {
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("history is malformed (%s): invokes and completions cannot be paired", plural(len(probs), "problem"))
		res.Explanation = fmt.Sprintf("Linearizability needs every client process to alternate invoke and completion; %s. The stats checker reports the same problems. Fix the recorder or the tool that wrote the history.",
			probs[0].Message)
		res.Anomalies = problemAnomalies(in, probs)
		res.AnomalyCount = len(res.Anomalies)
		return res
	}
	details := map[string]any{
		"keys":     len(h.keys),
		"ops":      h.ops,
		"clock":    h.clock,
		"budget_s": budget.Seconds(),
	}
	for k, v := range h.count {
		details[k] = v
	}
	res.Details = details
	if len(h.foreign) > 0 {
		details["keys_with_other_ops"] = len(h.foreign)
	}
	if h.ops == 0 && len(h.foreign) > 0 {
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("cannot judge: %s touched by operations a register does not have (%s)", plural(len(h.foreign), "key"), foreignList(h.foreign, 5))
		res.Explanation = "The linearizability checker models a register (get/read, put/write, cas). Operations of other kinds that may have taken effect change keys in ways it cannot follow, so those keys are left undecided rather than judged as if the operations never happened."
		return res
	}
	if h.ops == 0 {
		res.Verdict = Unknown
		res.Summary = "nothing to check: no completed get/put/cas operations"
		res.Explanation = "The history has no register operations that completed (f get/read, put/write or cas), so linearizability says nothing about it. Check that the workload ran (see the stats checker) and that it is a register/kv workload."
		return res
	}

	var stop atomic.Bool
	unwatch := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer unwatch()
	model := h.registerModel(&stop)

	outcomes := l.checkKeys(model, h, deadline, &stop)
	var illegal, unknown []*keyOutcome
	for i := range outcomes {
		switch outcomes[i].result {
		case porcupine.Illegal:
			illegal = append(illegal, &outcomes[i])
		case porcupine.Ok:
		default:
			unknown = append(unknown, &outcomes[i])
		}
	}
	details["keys_invalid"] = len(illegal)
	details["keys_unknown"] = len(unknown)
	details["keys_valid"] = len(outcomes) - len(illegal) - len(unknown)
	details["per_key"] = perKeyDetails(outcomes)
	truncated := 0
	for _, o := range outcomes {
		if o.truncated {
			truncated++
		}
	}
	if truncated > 0 {
		details["keys_truncated"] = truncated
	}

	// Explain violations and draw the visualization (one verbose pass).
	var explained map[history.Key]Anomaly
	if !stop.Load() && (len(illegal) > 0 || in.OutDir != "") {
		explained = l.explainAndDraw(h, illegal, outcomes, in, deadline, details)
	}

	switch {
	case len(illegal) > 0:
		res.Verdict = Invalid
		for _, o := range illegal {
			if a, ok := explained[o.key]; ok {
				res.Anomalies = append(res.Anomalies, a)
			}
		}
		for _, o := range illegal {
			if _, ok := explained[o.key]; !ok {
				res.Anomalies = append(res.Anomalies, Anomaly{
					Kind: "nonlinearizable", Key: o.key.Text, KeyIsNumber: o.key.Number,
					Message: fmt.Sprintf("Key %s: Porcupine found no order of its %d operations consistent with a register and their real-time order (not explained: the time for explanations ran out)", o.key, o.ops),
					Data:    map[string]any{"meaning": violationMeaning["nonlinearizable"]},
				})
			}
		}
		res.AnomalyCount = len(res.Anomalies)
		res.Summary = fmt.Sprintf("not linearizable: no valid order for %d of %s (%s; %s); %d ops checked",
			len(illegal), plural(len(outcomes), "key"), kindCounts(res.Anomalies), keyList(illegal, 5), h.ops)
		res.Explanation = linearizabilityExplanation(res.Anomalies, illegal, details)
	case len(unknown) > 0:
		res.Verdict = Unknown
		var slow, cut []*keyOutcome
		for _, o := range unknown {
			if o.why == "truncated" {
				cut = append(cut, o)
			} else {
				slow = append(slow, o)
			}
		}
		var parts, expl []string
		if len(slow) > 0 {
			reason := fmt.Sprintf("did not finish within the budget of %s", budget)
			if ctx.Err() != nil {
				reason = fmt.Sprintf("were not finished when the check was cancelled (%v)", ctx.Err())
			}
			parts = append(parts, fmt.Sprintf("%d of %d keys %s", len(slow), len(outcomes), reason))
			expl = append(expl, fmt.Sprintf("Porcupine could not decide keys %s: they %s. The search grows exponentially with the number of concurrent operations on a key, and an operation with unknown outcome (info) stays concurrent with everything after it. Give the checker more time (checkers.linearizability.budget), spread the load over more keys, lower the concurrency, or shorten the faults that cause timeouts.",
				keyList(slow, 10), reason))
		}
		if len(cut) > 0 {
			maxKeyOps := l.MaxKeyOps
			if maxKeyOps <= 0 {
				maxKeyOps = DefaultMaxKeyOps
			}
			parts = append(parts, fmt.Sprintf("%d keys too large to check whole", len(cut)))
			expl = append(expl, fmt.Sprintf("Keys %s have more than %d operations each (the first has %d). Porcupine's memory grows with the square of a key's operations, so only the first %d operations of each were checked, and they are linearizable; the rest is undecided. Spread the workload over more keys or shorten the run.",
				keyList(cut, 10), maxKeyOps, cut[0].ops, maxKeyOps))
		}
		res.Summary = "undecided: " + strings.Join(parts, "; ")
		res.Explanation = strings.Join(expl, "\n\n")
	case len(h.foreign) > 0:
		res.Verdict = Unknown
		res.Summary = fmt.Sprintf("linearizable on %s; %s undecided: touched by operations a register does not have (%s)",
			plural(len(outcomes), "key"), plural(len(h.foreign), "key"), foreignList(h.foreign, 5))
		res.Explanation = "The linearizability checker models a register (get/read, put/write, cas). Operations of other kinds that may have taken effect change keys in ways it cannot follow, so those keys are left undecided rather than judged as if the operations never happened."
	default:
		res.Verdict = Valid
		res.Summary = fmt.Sprintf("linearizable: %d ops on %s", h.ops, plural(len(outcomes), "key"))
	}
	return res
}

// linearizabilityExplanation shows the first anomalies, says once what
// each kind found means, which nodes answered the operations in question,
// and where the rest and the visualization are.
func linearizabilityExplanation(as []Anomaly, illegal []*keyOutcome, details map[string]any) string {
	const shown = 3
	var b strings.Builder
	for i, a := range as {
		if i == shown {
			break
		}
		b.WriteString(a.Message)
		b.WriteString("\n\n")
	}
	seen := map[string]bool{}
	nodes := map[string]int{}
	for _, a := range as {
		if m, ok := a.Data["meaning"].(string); ok && !seen[a.Kind] {
			seen[a.Kind] = true
			b.WriteString(m)
			b.WriteString(" ")
		}
		if a.Kind != "nonlinearizable" {
			nodes[a.Node]++
		}
	}
	if len(as) > 1 {
		fmt.Fprintf(&b, "\n\nIn all, %d keys are not linearizable (%s): %s.", len(illegal), kindCounts(as), keyList(illegal, 20))
		if len(nodes) > 0 {
			fmt.Fprintf(&b, " The operations in question were answered by %s.", nodeCounts(nodes))
		}
		if len(as) > shown {
			fmt.Fprintf(&b, " All %d are listed in the anomalies (anomalies.jsonl).", len(as))
		}
	}
	if p, ok := details["visualization"].(string); ok {
		fmt.Fprintf(&b, " Open %s to see the longest valid order Porcupine found and the operation that breaks it.", p)
	}
	return strings.TrimSpace(b.String())
}

// foreignList names up to n keys and the operation that took them out.
func foreignList(m map[history.Key]string, n int) string {
	keys := make([]history.Key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortKeys(keys)
	var parts []string
	for i, k := range keys {
		if i == n {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s by %s", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// checkKeys runs Porcupine on every key with a worker pool, biggest keys
// first. Keys not started by the deadline are left undecided.
func (l Linearizability) checkKeys(model porcupine.Model, h *regHistory, deadline time.Time, stop *atomic.Bool) []keyOutcome {
	keys := h.keysBySize()
	outcomes := make([]keyOutcome, len(keys))
	maxKeyOps := l.MaxKeyOps
	if maxKeyOps <= 0 {
		maxKeyOps = DefaultMaxKeyOps
	}
	workers := l.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if workers > len(keys) {
		workers = len(keys)
	}
	// Each check is of one key's operations: partitioning them again by
	// key would only copy them.
	model.Partition = nil
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				k := keys[i]
				o := &outcomes[i]
				o.key, o.ops, o.checked = k, len(h.byKey[k]), h.byKey[k]
				if o.ops > maxKeyOps {
					o.checked, o.truncated = truncateKey(o.checked, maxKeyOps, h.end), true
				}
				if o.ops == 0 {
					o.result = porcupine.Ok
					continue
				}
				timeout := time.Until(deadline)
				if stop.Load() {
					o.result, o.why = porcupine.Unknown, "cancelled"
					continue
				}
				if timeout <= 0 {
					o.result, o.why = porcupine.Unknown, "budget"
					continue
				}
				t0 := time.Now()
				r := porcupine.CheckOperationsTimeout(model, porcupineOps(o.checked), timeout)
				o.elapsed = time.Since(t0)
				switch {
				case stop.Load():
					// The search was cut short; its answer means nothing.
					r, o.why = porcupine.Unknown, "cancelled"
				case r == porcupine.Unknown:
					o.why = "budget"
				case r == porcupine.Ok && o.truncated:
					// Only a prefix is known to be valid.
					r, o.why = porcupine.Unknown, "truncated"
				}
				o.result = r
			}
		}()
	}
	wg.Wait()
	// Report in the history's key order.
	pos := make(map[history.Key]int, len(h.keys))
	for i, k := range h.keys {
		pos[k] = i
	}
	sort.Slice(outcomes, func(i, j int) bool { return pos[outcomes[i].key] < pos[outcomes[j].key] })
	return outcomes
}

// explainAndDraw reruns Porcupine verbosely on the keys worth showing: the
// illegal ones, or, for a valid history, as many keys as the visualization
// can hold. It explains each illegal key and writes linearizability.html if
// in.OutDir is set.
func (l Linearizability) explainAndDraw(h *regHistory, illegal []*keyOutcome, outcomes []keyOutcome, in Input, deadline time.Time, details map[string]any) map[history.Key]Anomaly {
	maxOps := l.VisualizeMaxOps
	if maxOps <= 0 {
		maxOps = DefaultVisualizeMaxOps
	}
	var selected []*keyOutcome
	total := 0
	if len(illegal) > 0 {
		for _, o := range illegal {
			if len(selected) >= maxDrawnIllegalKeys || (len(selected) > 0 && total+len(o.checked) > maxOps) {
				break
			}
			selected = append(selected, o)
			total += len(o.checked)
		}
	} else {
		for i := range outcomes {
			o := &outcomes[i]
			if o.result != porcupine.Ok || len(o.checked) == 0 {
				continue
			}
			if len(selected) > 0 && total+len(o.checked) > maxOps {
				break
			}
			selected = append(selected, o)
			total += len(o.checked)
		}
	}
	if len(selected) == 0 {
		return nil
	}
	var ops []porcupine.Operation
	for _, o := range selected {
		ops = append(ops, porcupineOps(o.checked)...)
	}
	explainBy := deadline
	if t := time.Now().Add(explainGrace); t.After(explainBy) {
		explainBy = t
	}
	// No stop flag: a replay for the visualization must not fail a step.
	model := h.registerModel(nil)
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, time.Until(explainBy))
	partials := info.PartialLinearizationsOperations()

	explained := make(map[history.Key]Anomaly)
	if len(illegal) > 0 {
		for i, o := range selected {
			if i < len(partials) {
				explained[o.key] = h.explainKey(o, partials[i], in, verdict == porcupine.Unknown)
			}
		}
		// The illegal keys not drawn are explained one by one, while
		// time remains.
		for _, o := range illegal {
			if _, done := explained[o.key]; done {
				continue
			}
			left := time.Until(explainBy)
			if left <= 0 {
				break
			}
			v, kinfo := porcupine.CheckOperationsVerbose(model, porcupineOps(o.checked), left)
			if p := kinfo.PartialLinearizationsOperations(); len(p) > 0 {
				explained[o.key] = h.explainKey(o, p[0], in, v == porcupine.Unknown)
			}
		}
	}
	if in.OutDir != "" {
		info.AddAnnotations(faultAnnotations(h))
		path := filepath.Join(in.OutDir, "linearizability.html")
		page := vizPage{Title: vizTitle(in), Processes: map[int]string{}}
		for _, ops := range h.byKey {
			for _, op := range ops {
				page.Processes[op.row] = op.proc.String()
			}
		}
		if err := writeVisualization(model, info, path, page); err != nil {
			details["visualization_error"] = err.Error()
		} else {
			details["visualization"] = path
			details["visualized_keys"] = len(selected)
			details["visualized_ops"] = total
			if verdict == porcupine.Unknown {
				details["visualization_note"] = "drawing ran out of time: the orders shown may be incomplete"
			}
		}
	}
	return explained
}

// perKeyDetails reports every key's verdict when there are few keys, else
// only the keys that are not valid. Keys are named by their text (a
// numeric key whose text is also a string key's reads "1 (number)").
func perKeyDetails(outcomes []keyOutcome) map[string]string {
	m := make(map[string]string)
	strs := make(map[string]bool)
	for _, o := range outcomes {
		if !o.key.Number {
			strs[o.key.Text] = true
		}
	}
	for _, o := range outcomes {
		v := Valid
		switch o.result {
		case porcupine.Illegal:
			v = Invalid
		case porcupine.Ok:
		default:
			v = Unknown
		}
		if len(outcomes) <= 64 || v != Valid {
			name := o.key.Text
			if o.key.Number && strs[name] {
				name += " (number)"
			}
			m[name] = string(v)
		}
	}
	return m
}

// truncateKey returns the prefix of a key's operations (in invoke order) up
// to max, made safe to check alone: an operation of the prefix that had not
// completed when the first excluded one was invoked is weakened, since ops
// outside the prefix may have taken effect before it. Reads and mismatches
// among them are dropped, writes become info. If the whole history is
// linearizable, so is this prefix.
func truncateKey(ops []*regOp, max int, end int64) []*regOp {
	cut := ops[max].call
	out := make([]*regOp, 0, max)
	for _, op := range ops[:max] {
		if op.ret < cut {
			out = append(out, op)
			continue
		}
		switch op.kind {
		case opPut, opCAS:
			// Its completion (or the read that proved it took effect) is
			// past the cut: in the prefix it may or may not take effect.
			w := *op
			w.info, w.ret, w.tookEffect = true, end, false
			out = append(out, &w)
		}
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func keyList(os []*keyOutcome, max int) string {
	var parts []string
	for i, o := range os {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(os)-max))
			break
		}
		parts = append(parts, o.key.String())
	}
	return strings.Join(parts, ", ")
}

// problemAnomalies turns every malformation into evidence: the offending
// event first, then the related one.
func problemAnomalies(in Input, probs []problem) []Anomaly {
	out := make([]Anomaly, 0, len(probs))
	for _, p := range probs {
		a := Anomaly{
			Kind:    string(p.Kind),
			Message: p.Message,
			Events:  []int{p.Event},
		}
		if p.Other >= 0 {
			a.Events = append(a.Events, p.Other)
		}
		if p.Event >= 0 && p.Event < len(in.Events) {
			ev := &in.Events[p.Event]
			a.Time, a.Key, a.KeyIsNumber, a.Node = ev.Time, ev.Key, ev.KeyIsNumber, ev.Node
		}
		a.Refs = refsOf(in, a.Events)
		out = append(out, a)
	}
	return out
}

// kindCounts summarises anomalies by kind, most frequent first: "2 lost
// writes, 1 stale read".
func kindCounts(as []Anomaly) string {
	n := map[string]int{}
	var kinds []string
	for _, a := range as {
		if n[a.Kind] == 0 {
			kinds = append(kinds, a.Kind)
		}
		n[a.Kind]++
	}
	sort.SliceStable(kinds, func(i, j int) bool { return n[kinds[i]] > n[kinds[j]] })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		name, ok := kindNames[k]
		if !ok {
			name = [2]string{strings.ReplaceAll(k, "-", " "), strings.ReplaceAll(k, "-", " ")}
		}
		if n[k] == 1 {
			parts[i] = "1 " + name[0]
		} else {
			parts[i] = fmt.Sprintf("%d %s", n[k], name[1])
		}
	}
	return strings.Join(parts, ", ")
}

// kindNames are the anomaly kinds in words: singular, plural.
var kindNames = map[string][2]string{
	"stale-read":            {"stale read", "stale reads"},
	"lost-write":            {"lost write", "lost writes"},
	"stale-cas":             {"stale cas", "stale cas operations"},
	"never-written":         {"read of a value never written", "reads of values never written"},
	"future-read":           {"read from the future", "reads from the future"},
	"mismatch-contradicted": {"contradicted mismatch", "contradicted mismatches"},
	"nonlinearizable":       {"key without a simpler diagnosis", "keys without a simpler diagnosis"},
}

// sortKeys orders keys by text, a number before the string of the same text.
func sortKeys(keys []history.Key) {
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Text != keys[j].Text {
			return keys[i].Text < keys[j].Text
		}
		return keys[i].Number && !keys[j].Number
	})
}
