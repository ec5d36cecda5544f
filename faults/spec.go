package faults

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Spec is one fault as written in a scenario: in the `mix` of an interval
// or random schedule, or on a timeline (with At). In YAML it is one flat
// mapping: the common keys fault, at, for and weight, and the kind's own
// parameters beside them:
//
//	{fault: latency, target: n1, latency: 50ms, for: 5s}
//
// The scenario decoder decodes it through KindKey and SetKind. In Go, build
// one with NewSpec, or as a literal with Fault set (Kind nil means the
// kind's defaults). Plan resolves seeded choices (which node is "one", how
// the halves fall) into Nodes and Groups; "leader" is resolved when the
// fault starts.
type Spec struct {
	Fault  string        `yaml:"fault"`  // the kind's name, as registered
	At     time.Duration `yaml:"at"`     // timeline: since the main phase began
	For    time.Duration `yaml:"for"`    // how long it lasts (default: the schedule's)
	Weight float64       `yaml:"weight"` // random schedule: relative weight (default 1)

	// Kind is the fault itself: its type is the kind (*Latency, *Kill,
	// ...), its fields the parameters. Nil means the defaults of the kind
	// Fault names.
	Kind Fault `yaml:"-"`

	// Resolved by Plan.
	Nodes  []string   `yaml:"-"`
	Groups [][]string `yaml:"-"`
}

// KindKey names the key of a spec's mapping whose value picks the kind.
func (s *Spec) KindKey() string { return "fault" }

// SetKind sets the kind by name and returns a pointer to the struct that
// the mapping's other keys (those that are not Spec's own yaml fields) are
// decoded into, with the kind's defaults already set. An unknown name is an
// error listing the known kinds.
func (s *Spec) SetKind(name string) (params any, err error) {
	f, err := New(name)
	if err != nil {
		return nil, err
	}
	s.Fault, s.Kind = name, f
	return f, nil
}

// NewSpec returns a spec of the named kind with its defaults, changed by
// set (which may be nil): NewSpec("kill", func(k *Kill) { k.Target = "n1" }).
// It panics if the name is unknown or is not a kind of type F (programming
// errors); it is meant for tests and code, not for user input.
func NewSpec[F Fault](name string, set func(F)) Spec {
	f, err := New(name)
	if err != nil {
		panic("faults.NewSpec: " + err.Error())
	}
	k, ok := f.(F)
	if !ok {
		panic(fmt.Sprintf("faults.NewSpec: fault %s is a %T, not a %T", name, f, k))
	}
	if set != nil {
		set(k)
	}
	return Spec{Fault: name, Kind: f}
}

// kind returns the spec's fault: Kind, or the defaults of the kind Fault
// names. An unknown name is an error.
func (s *Spec) kind() (Fault, error) {
	if s.Kind != nil {
		return s.Kind, nil
	}
	return New(s.Fault)
}

// Params returns the effective parameters (defaults included) by key, as a
// scenario writes them (durations as strings such as "100ms"). It is nil
// for an unknown kind.
func (s Spec) Params() map[string]any {
	f, err := s.kind()
	if err != nil {
		return nil
	}
	_, values := paramsOf(f)
	return values
}

// Family returns the kind's family (the history event's f), "" for an
// unknown kind.
func (s Spec) Family() string {
	f, err := s.kind()
	if err != nil {
		return ""
	}
	return f.Family()
}

// SpecError is a problem with one field of a fault spec or schedule; Field
// is a path relative to the scenario's `faults` section (mix[2].fault,
// timeline[0].target).
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Msg) }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// validate checks one spec against env; path names it (e.g. "mix[2]").
func (s *Spec) validate(path string, env Env) error {
	f, err := s.kind()
	if err != nil {
		if s.Fault == "" {
			return specErr(path+".fault", "missing: name a fault (%s)", strings.Join(Names(), ", "))
		}
		return specErr(path+".fault", "%q is not a fault; `faultline faults` lists them: %s", s.Fault, strings.Join(Names(), ", "))
	}
	if s.Kind != nil && s.Fault != NameOf(s.Kind) {
		return specErr(path+".fault", "%q does not match its parameters, which are a %s's (internal)", s.Fault, NameOf(s.Kind))
	}
	if s.For < 0 {
		return specErr(path+".for", "must not be negative")
	}
	if s.At < 0 {
		return specErr(path+".at", "must not be negative")
	}
	if s.Weight < 0 {
		return specErr(path+".weight", "must not be negative")
	}
	if err := checkParams(f, env); err != nil {
		var se *SpecError
		if errors.As(err, &se) {
			return specErr(path+"."+se.Field, "%s: %s", s.Fault, se.Msg)
		}
		return specErr(path+".fault", "%s: %v", s.Fault, err)
	}
	if err := availableIn(f, env); err != nil {
		field := "fault"
		var se *SpecError
		if errors.As(err, &se) {
			field = se.Field
		}
		return specErr(path+"."+field, "%s", unavailableText(s.Fault, f, env, err))
	}
	return nil
}

// fields returns the spec as one flat, ordered list of keys and values:
// fault, the parameters in the kind's order (every one, defaults
// included, so that a saved spec replays even if defaults change), then
// at, for and weight where set.
func (s Spec) fields() (keys []string, values map[string]any) {
	keys = []string{"fault"}
	values = map[string]any{"fault": s.Fault}
	if f, err := s.kind(); err == nil {
		pk, pv := paramsOf(f)
		keys = append(keys, pk...)
		for k, v := range pv {
			values[k] = v
		}
	}
	add := func(k string, v any, set bool) {
		if set {
			keys = append(keys, k)
			values[k] = v
		}
	}
	add("at", s.At.String(), s.At != 0)
	add("for", s.For.String(), s.For != 0)
	add("weight", s.Weight, s.Weight != 0)
	return keys, values
}

// MarshalYAML writes the spec as the flat mapping a scenario has, with
// durations as strings ("5s") so that a saved scenario reads back (the
// scenario decoder rejects bare numbers for durations): fault first, then
// every parameter, then at, for and weight where set.
func (s Spec) MarshalYAML() (any, error) {
	keys, values := s.fields()
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		var v yaml.Node
		if err := v.Encode(values[k]); err != nil {
			return nil, fmt.Errorf("faults: encode %s of %s: %w", k, s.Fault, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &v)
	}
	return n, nil
}

// MarshalJSON writes the spec as MarshalYAML does (one flat object,
// durations as strings), plus the nodes and groups Plan resolved.
func (s Spec) MarshalJSON() ([]byte, error) {
	_, values := s.fields()
	if len(s.Nodes) > 0 {
		values["nodes"] = s.Nodes
	}
	if len(s.Groups) > 0 {
		values["groups"] = s.Groups
	}
	return json.Marshal(values)
}
