package checkers

import (
	"context"
	"time"

	"github.com/faultline/faultline/internal/fielderr"
	reg "github.com/faultline/faultline/internal/registry"
)

// Entry is a registered checker: how a scenario names it, configures it
// and makes one.
type Entry struct {
	Name string
	Doc  string
	// NewParams, if set, returns a pointer to the checker's parameter
	// struct (yaml tags) with its defaults set; a scenario's
	// `checkers.NAME:` mapping is decoded into it strictly. If the value
	// has a method Check() error, it is called after decoding. Nil means
	// the checker takes no parameter (only `enabled`).
	NewParams func() any
	// New makes the checker from its parameters (nil when NewParams is).
	New func(params any) (Checker, error)
}

var registry = reg.New[*Entry]("checker")

// Register makes a checker available by name. It panics if the name is
// taken or New is nil. Call it from an init function.
func Register(e Entry) {
	if e.New == nil {
		panic("checkers: " + e.Name + " has no New")
	}
	registry.Add(e.Name, &e)
}

// Lookup returns the named checker's entry.
func Lookup(name string) (*Entry, error) { return registry.Get(name) }

// Names returns the registered checkers, sorted.
func Names() []string { return registry.Names() }

// LinearizabilityParams configure the linearizability checker.
type LinearizabilityParams struct {
	// Budget is the time the search may take; running out gives unknown,
	// never valid. An Input.Budget (faultline check --budget) wins over it.
	Budget time.Duration `yaml:"budget"`
}

// Check checks the values.
func (p *LinearizabilityParams) Check() error {
	if p.Budget <= 0 {
		return fielderr.New("budget", "%s: the time budget must be positive, e.g. 60s", p.Budget)
	}
	return nil
}

// DefaultBudget is the linearizability checker's default time budget.
const DefaultBudget = 60 * time.Second

// withBudget runs a checker with a default budget when the input has none.
type withBudget struct {
	Checker
	budget time.Duration
}

func (w withBudget) Check(ctx context.Context, in Input) Result {
	if in.Budget == 0 {
		in.Budget = w.budget
	}
	return w.Checker.Check(ctx, in)
}

func init() {
	Register(Entry{
		Name:      "linearizability",
		Doc:       "Porcupine over a register model per key (get/put/cas); unknown when the budget runs out",
		NewParams: func() any { return &LinearizabilityParams{Budget: DefaultBudget} },
		New: func(p any) (Checker, error) {
			return withBudget{Checker: &Linearizability{}, budget: p.(*LinearizabilityParams).Budget}, nil
		},
	})
	Register(Entry{
		Name: "lost-writes",
		Doc:  "the final reads against the acknowledged writes: an acknowledged write replaced by an older value is lost",
		New:  func(any) (Checker, error) { return LostWrites{}, nil },
	})
	Register(Entry{
		Name: "split-brain",
		Doc:  "the terms (epochs) the history records: two leaders in one term, and deposed leaders acknowledging operations after a higher term was established",
		New:  func(any) (Checker, error) { return SplitBrain{}, nil },
	})
	Register(Entry{
		Name:      "convergence",
		Doc:       "after the heal every replica's own value of every key is read in rounds (the node kit's local read): all must agree within the bound; reports the time to converge",
		NewParams: func() any { return &ConvergenceParams{Within: DefaultConvergenceWithin} },
		New:       func(p any) (Checker, error) { return Convergence{Within: p.(*ConvergenceParams).Within}, nil },
	})
	Register(Entry{
		Name: "stats",
		Doc:  "that the history is well formed, and the load figures a history alone gives",
		New:  func(any) (Checker, error) { return &Stats{}, nil },
	})
	Register(Entry{
		Name: "session-guarantees",
		Doc:  "per process, read-your-writes, monotonic reads, monotonic writes and writes-follow-reads on each key: violations that every version order of the writes shows",
		New:  func(any) (Checker, error) { return SessionGuarantees{}, nil },
	})
	Register(Entry{
		Name: "causal",
		Doc:  "causal consistency (CC, Bouajjani et al. 2017) of a differentiated register history: the bad patterns CyclicCO, ThinAirRead, WriteCOInitRead, WriteCORead; unknown when values repeat or the budget runs out",
		New:  func(any) (Checker, error) { return Causal{}, nil },
	})
	Register(Entry{
		Name:      "retry-storm",
		Doc:       "per window: offered load and goodput (the client operations), amplification (callers' attempts per request) and breaker state (sampled metrics); time to recover after the trigger fault; invalid on a metastable failure or amplification above the limit",
		NewParams: func() any { return NewRetryStormParams() },
		New:       func(p any) (Checker, error) { return RetryStorm{Params: *p.(*RetryStormParams)}, nil },
	})
	Register(Entry{
		Name: "lost-updates",
		Doc:  "acknowledged writes that an older write beat, in a later read from a node that held them or in the final reads; races lost to concurrent writes are counted per node, not judged",
		New:  func(any) (Checker, error) { return LostUpdates{}, nil },
	})
}
