package faults

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/faultline/faultline/targets"
)

// Schedule is a scenario's `faults` section: when faults start and end.
//
//	schedule: interval   # every `every` (plus a random stagger) the next fault of `mix`, in order
//	schedule: random     # a seeded random mix: gaps of every/2..every*3/2, faults picked by weight
//	schedule: timeline   # exactly the faults listed in `timeline`, each with `at` and `for`
//
// The same seed gives the same plan.
type Schedule struct {
	Kind     string        `yaml:"schedule" json:"schedule"`
	Start    time.Duration `yaml:"start" json:"start,omitempty"`     // first fault, since the main phase began (default: every/2)
	Every    time.Duration `yaml:"every" json:"every,omitempty"`     // from one fault's start to the next (default 10s)
	For      time.Duration `yaml:"for" json:"for,omitempty"`         // default length of each fault (default every/2)
	Stagger  time.Duration `yaml:"stagger" json:"stagger,omitempty"` // interval: random extra delay in [0, stagger)
	Mix      []Spec        `yaml:"mix" json:"mix,omitempty"`
	Timeline []Spec        `yaml:"timeline" json:"timeline,omitempty"`
}

// Planned is one fault of a plan, at a time since the main phase began.
type Planned struct {
	Seq  int           `json:"seq"`
	At   time.Duration `json:"at_ns"`
	For  time.Duration `json:"for_ns"`
	Spec Spec          `json:"spec"`
}

// Empty reports whether the schedule injects nothing.
func (s *Schedule) Empty() bool {
	return s == nil || (len(s.Mix) == 0 && len(s.Timeline) == 0)
}

func (s *Schedule) kind() string {
	if s.Kind != "" {
		return s.Kind
	}
	if len(s.Timeline) > 0 {
		return "timeline"
	}
	return "interval"
}

// Validate checks the schedule for env, before anything starts: its
// shape, and each spec's kind, parameter values, node-count needs, targets
// (node ids and roles of env.Nodes) and availability (what the system and
// the runtime can do). Errors are *SpecError with a field path relative to
// the `faults` section (mix[2].fault, timeline[0].target) and a message
// naming the fault, the reason and what to do.
func (s *Schedule) Validate(env Env) error {
	if s == nil {
		return nil
	}
	switch s.kind() {
	case "interval", "random":
		if len(s.Timeline) > 0 {
			return specErr("timeline", "a %s schedule takes its faults from mix; use schedule: timeline for a timeline", s.kind())
		}
		if len(s.Mix) == 0 {
			return specErr("mix", "a %s schedule needs at least one fault in mix", s.kind())
		}
	case "timeline":
		if len(s.Mix) > 0 {
			return specErr("mix", "a timeline schedule takes its faults from timeline, not mix")
		}
		for i, f := range s.Timeline {
			if f.For <= 0 && s.For <= 0 {
				return specErr(fmt.Sprintf("timeline[%d].for", i), "each timeline fault needs a positive `for` (or set faults.for)")
			}
		}
	default:
		return specErr("schedule", "%q: use interval, random or timeline", s.Kind)
	}
	if s.Every < 0 || s.For < 0 || s.Stagger < 0 || s.Start < 0 {
		return specErr("every", "durations must not be negative")
	}
	if s.Every > 0 && s.Every < 100*time.Millisecond {
		return specErr("every", "%s is too short: faults need time to take effect (use 100ms or more)", s.Every)
	}
	for i := range s.Mix {
		if s.Mix[i].At != 0 {
			return specErr(fmt.Sprintf("mix[%d].at", i), "`at` belongs to timeline faults; a mix is scheduled by `every`")
		}
		if err := s.Mix[i].validate(fmt.Sprintf("mix[%d]", i), env); err != nil {
			return err
		}
	}
	for i := range s.Timeline {
		if err := s.Timeline[i].validate(fmt.Sprintf("timeline[%d]", i), env); err != nil {
			return err
		}
	}
	return nil
}

func (s *Schedule) every() time.Duration {
	if s.Every > 0 {
		return s.Every
	}
	return 10 * time.Second
}

// MaxPlanned bounds the number of faults Plan makes for a main phase of
// the given length, without making them: the timeline's length, or for a
// mix one fault per every/2 (the shortest gap of a random schedule).
func (s *Schedule) MaxPlanned(main time.Duration) int64 {
	if s.Empty() {
		return 0
	}
	if s.kind() == "timeline" {
		return int64(len(s.Timeline))
	}
	return int64(main/(s.every()/2)) + 1
}

func (s *Schedule) length(sp Spec) time.Duration {
	if sp.For > 0 {
		return sp.For
	}
	if s.For > 0 {
		return s.For
	}
	return s.every() / 2
}

// Plan turns the schedule into a list of faults for a main phase of the
// given length on a cluster of the given nodes, resolving every seeded
// choice (Spec.Nodes, Spec.Groups; "leader" is left for the nemesis). It
// is a pure function of its arguments. Faults are clipped to end by the
// end of the main phase. Each planned spec has its own copy of the fault
// (Spec.Kind set, defaults filled in). Specs of unknown kinds are skipped:
// Validate refuses them.
func (s *Schedule) Plan(nodes []targets.NodeSpec, seed int64, main time.Duration) []Planned {
	if s.Empty() {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0xfa17))
	ids := nodeIDs(nodes)
	var out []Planned
	add := func(at time.Duration, sp Spec) {
		if at >= main {
			return
		}
		d := s.length(sp)
		if at+d > main {
			d = main - at
		}
		// One permutation per planned fault, whatever its kind.
		shuffled := append([]string(nil), ids...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		f, err := sp.kind()
		if err != nil {
			return
		}
		sp.Kind = cloneFault(f)
		sp.Nodes, sp.Groups = resolveFault(sp.Kind, Draw{Nodes: nodes, Shuffled: shuffled})
		out = append(out, Planned{At: at, For: d, Spec: sp})
	}
	switch s.kind() {
	case "timeline":
		tl := append([]Spec(nil), s.Timeline...)
		sort.SliceStable(tl, func(i, j int) bool { return tl[i].At < tl[j].At })
		for _, sp := range tl {
			add(sp.At, sp)
		}
	case "interval":
		start := s.Start
		if start == 0 {
			start = s.every() / 2
		}
		for i, t := 0, start; t < main; i, t = i+1, t+s.every() {
			at := t
			if s.Stagger > 0 {
				at += time.Duration(rng.Int64N(int64(s.Stagger)))
			}
			add(at, s.Mix[i%len(s.Mix)])
		}
	case "random":
		start := s.Start
		if start == 0 {
			start = s.every() / 2
		}
		var total float64
		for _, sp := range s.Mix {
			total += weight(sp)
		}
		for t := start; t < main; {
			x := rng.Float64() * total
			pick := s.Mix[len(s.Mix)-1]
			for _, sp := range s.Mix {
				if x < weight(sp) {
					pick = sp
					break
				}
				x -= weight(sp)
			}
			add(t, pick)
			gap := s.every()/2 + time.Duration(rng.Int64N(int64(s.every())))
			t += gap
		}
	}
	for i := range out {
		out[i].Seq = i + 1
	}
	return out
}

func weight(sp Spec) float64 {
	if sp.Weight > 0 {
		return sp.Weight
	}
	return 1
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// RingLinks returns the directed links a majorities ring cuts. With the
// nodes in ring order, each keeps its links to the k nearest nodes on either
// side, k = ceil((m-1)/2) for a majority m = n/2+1, so each sees 2k+1 >= m
// nodes counting itself, a majority, and no two see the same set. Every
// other link is cut, both directions.
func RingLinks(ring []string) []Link {
	n := len(ring)
	m := n/2 + 1
	k := m / 2 // ceil((m-1)/2)
	var out []Link
	for i, a := range ring {
		for j, b := range ring {
			if i == j {
				continue
			}
			d := (j - i + n) % n
			if n-d < d {
				d = n - d
			}
			if d > k {
				out = append(out, Link{a, b})
			}
		}
	}
	return out
}
