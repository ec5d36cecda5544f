package checkers

import (
	"fmt"
	"slices"
	"strings"
)

// A Model is one rung of the consistency ladder: a consistency model, the
// checker that judges it, and, for a checker that judges several models
// at once (session-guarantees), the key of its Details["guarantees"] that
// holds this model's verdict.
type Model struct {
	Name      string
	Checker   string
	Guarantee string
	// Implies are the weaker models this one implies (transitively
	// closed): where this model holds, they hold.
	Implies []string
	Doc     string
}

// Models are the rungs of the ladder, strongest first. Linearizability
// implies causal consistency and the four session guarantees (Terry et
// al.); causal consistency (CC, Bouajjani et al.) implies read-your-writes,
// monotonic writes and writes-follow-reads, but not monotonic reads: CC
// lets a session read two concurrent writes as a, b, a, which no single
// version order of the key allows (causal convergence, CCv, would forbid
// it); convergence (every replica agrees once the faults are
// healed) is a property of the replicas' state, which no client-side model
// implies, and is the weakest rung an eventually consistent store promises.
var Models = []Model{
	{Name: "linearizable", Checker: "linearizability", Implies: []string{"causal", "read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads"},
		Doc: "every operation appears to take effect at one instant between its invocation and its completion"},
	{Name: "causal", Checker: "causal", Implies: []string{"read-your-writes", "monotonic-writes", "writes-follow-reads"},
		Doc: "every process sees causally related writes in their causal order (CC, Bouajjani et al. 2017)"},
	{Name: "read-your-writes", Checker: "session-guarantees", Guarantee: "read-your-writes", Doc: "a session's reads reflect its own earlier writes"},
	{Name: "monotonic-reads", Checker: "session-guarantees", Guarantee: "monotonic-reads", Doc: "a session never reads an older state after a newer one"},
	{Name: "monotonic-writes", Checker: "session-guarantees", Guarantee: "monotonic-writes", Doc: "a session's writes take effect in the order it made them"},
	{Name: "writes-follow-reads", Checker: "session-guarantees", Guarantee: "writes-follow-reads", Doc: "a write follows the writes its session had read"},
	{Name: "convergent", Checker: "convergence", Doc: "once the faults are healed and writes stop, every replica holds the same state"},
}

// ModelNames returns the models' names, strongest first.
func ModelNames() []string {
	out := make([]string, len(Models))
	for i, m := range Models {
		out[i] = m.Name
	}
	return out
}

// LookupModel returns the model of that name.
func LookupModel(name string) (Model, bool) {
	for _, m := range Models {
		if m.Name == name {
			return m, true
		}
	}
	return Model{}, false
}

// Rung is one model's place in a run's ladder.
type Rung struct {
	Model   string  `json:"model"`
	Checker string  `json:"checker"`
	Verdict Verdict `json:"verdict"`
	// Implied is true when a stronger model that implies this one held
	// (valid): then this one holds whatever its own checker said or
	// whether it ran.
	Implied bool `json:"implied,omitempty"`
	// Ran is false when the model's checker did not run; Verdict is then
	// valid if Implied, else not_applicable.
	Ran bool `json:"ran"`
	// Gating is false when the scenario's expected model does not require
	// this one: its verdict is reported, and does not set the exit code.
	Gating bool `json:"gating"`
	// Anomalies counts the checker's anomalies about this model.
	Anomalies int `json:"anomalies,omitempty"`
	// Note says why the rung has its verdict when that is not the
	// checker's own (implied, not run, not applicable).
	Note string `json:"note,omitempty"`
}

// Ladder is a run's place on the consistency ladder: a verdict per model
// and the strongest model that held.
type Ladder struct {
	Rungs []Rung `json:"models"`
	// Strongest is the strongest model that held ("" if none did); where
	// several session guarantees hold and causal does not, it names them
	// joined with "+", "session" when all four hold.
	Strongest string `json:"strongest"`
	// Expect is the model the scenario requires ("" if none).
	Expect string `json:"expect,omitempty"`
}

// BuildLadder places results on the ladder. expect is the model the
// scenario requires ("" for none): its rung and the rungs it implies are
// gating, the others are reported only (Rung.Gating); with no expectation
// every rung that ran is gating.
func BuildLadder(results []Result, expect string) *Ladder {
	byName := map[string]*Result{}
	for i := range results {
		byName[results[i].Name] = &results[i]
	}
	l := &Ladder{Expect: expect}
	gating := map[string]bool{}
	if m, ok := LookupModel(expect); ok {
		gating[m.Name] = true
		for _, w := range m.Implies {
			gating[w] = true
		}
	}
	for _, m := range Models {
		rg := Rung{Model: m.Name, Checker: m.Checker, Gating: expect == "" || gating[m.Name]}
		if r, ok := byName[m.Checker]; ok {
			rg.Ran = true
			rg.Verdict, rg.Anomalies = modelVerdict(r, m)
		}
		l.Rungs = append(l.Rungs, rg)
	}
	// Implication, strongest first: a model that held makes the ones it
	// implies hold.
	for _, m := range Models {
		i := slices.IndexFunc(l.Rungs, func(r Rung) bool { return r.Model == m.Name })
		if l.Rungs[i].Verdict != Valid {
			continue
		}
		for _, w := range m.Implies {
			j := slices.IndexFunc(l.Rungs, func(r Rung) bool { return r.Model == w })
			rg := &l.Rungs[j]
			if rg.Implied {
				continue
			}
			rg.Implied = true
			switch {
			case !rg.Ran:
				rg.Verdict, rg.Note = Valid, fmt.Sprintf("implied by %s (its checker %s did not run)", m.Name, rg.Checker)
			case rg.Verdict != Valid:
				// A checker of a weaker model disagreeing with a stronger
				// one: keep both verdicts in view, never hide one.
				rg.Note = fmt.Sprintf("%s held, which implies this model, yet %s says %s: one of the two checkers is wrong; report it", m.Name, rg.Checker, rg.Verdict)
			default:
				rg.Note = "implied by " + m.Name
			}
		}
	}
	for i := range l.Rungs {
		rg := &l.Rungs[i]
		if !rg.Ran && !rg.Implied {
			rg.Verdict, rg.Note = NotApplicable, fmt.Sprintf("not checked: enable the %s checker", rg.Checker)
		}
	}
	l.Strongest = strongest(l.Rungs)
	return l
}

// modelVerdict is m's verdict in r, and the number of r's anomalies about
// it.
func modelVerdict(r *Result, m Model) (Verdict, int) {
	if m.Guarantee == "" {
		return r.Verdict, r.AnomalyCount
	}
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == m.Guarantee {
			n++
		}
	}
	if g, ok := r.Details["guarantees"]; ok {
		switch x := g.(type) {
		case map[string]string:
			if v, ok := x[m.Guarantee]; ok {
				return Verdict(v), n
			}
		case map[string]Verdict:
			if v, ok := x[m.Guarantee]; ok {
				return v, n
			}
		case map[string]any:
			if v, ok := x[m.Guarantee].(string); ok {
				return Verdict(v), n
			}
		}
	}
	// Without a verdict per guarantee, only an overall valid (or not
	// applicable, or unknown) speaks for every guarantee.
	if r.Verdict == Invalid {
		return Unknown, n
	}
	return r.Verdict, n
}

// strongest names the strongest model that held among rungs.
func strongest(rungs []Rung) string {
	held := map[string]bool{}
	for _, r := range rungs {
		held[r.Model] = r.Verdict == Valid
	}
	switch {
	case held["linearizable"]:
		return "linearizable"
	case held["causal"]:
		return "causal"
	}
	var sessions []string
	for _, g := range []string{"read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads"} {
		if held[g] {
			sessions = append(sessions, g)
		}
	}
	switch {
	case len(sessions) == 4:
		return "session"
	case len(sessions) > 0:
		return strings.Join(sessions, "+")
	case held["convergent"]:
		return "convergent"
	}
	return ""
}

// Advise marks, for a scenario that expects model expect, the results
// that must not set the exit code: Result.Advisory. A model checker is
// advisory when none of the rungs it judges is gating; when some are and
// their worst verdict differs from the checker's own (the session checker
// invalid on monotonic reads, valid or unknown on the expected
// read-your-writes), it is advisory with Result.Gates set to that worst
// verdict, which Combine judges by; any other checker (lost-writes, split-brain,
// lost-updates, ...) is advisory unless gating lists it. Thresholds, the
// figures and a checker's own failure keep their meaning. With expect ""
// nothing changes.
func Advise(results []Result, l *Ladder, gating []string) {
	if l == nil || l.Expect == "" {
		return
	}
	rungs := map[string][]Rung{} // checker -> its rungs
	for _, rg := range l.Rungs {
		rungs[rg.Checker] = append(rungs[rg.Checker], rg)
	}
	for i := range results {
		r := &results[i]
		if r.Threshold || r.Figures || r.Internal || slices.Contains(gating, r.Name) {
			continue
		}
		rs, isModel := rungs[r.Name]
		if !isModel {
			r.Advisory = true
			continue
		}
		// A checker of required models gates by their verdict: the worst
		// of its gating rungs. Where that differs from its own verdict
		// (which is about its other models too), it is reported only and
		// Gates carries the verdict that counts.
		gates := Verdict("")
		for _, rg := range rs {
			if rg.Gating {
				gates = worse(gates, rg.Verdict)
			}
		}
		switch {
		case gates == "":
			r.Advisory = true
		case gates != r.Verdict:
			r.Advisory, r.Gates = true, gates
		}
	}
}

// worse is the worse of two verdicts for gating: invalid, then unknown,
// then valid, then not applicable ("" is none).
func worse(a, b Verdict) Verdict {
	rank := map[Verdict]int{"": 0, NotApplicable: 1, Valid: 2, Unknown: 3, Invalid: 4}
	if rank[b] > rank[a] {
		return b
	}
	return a
}
