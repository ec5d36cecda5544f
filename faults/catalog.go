package faults

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"
)

// builtin is the table of every fault kind faultline has: its name and a
// constructor that returns a fault with its defaults set. Each default is
// written here, once; the catalog (Kinds), the scenario decoder (SetKind)
// and the plan all start from these values. The order is the catalog's.
var builtin = []struct {
	name string
	new  func() Fault
}{
	{"partition-halves", func() Fault { return &PartitionHalves{Mode: Drop} }},
	{"partition-one", func() Fault { return &PartitionOne{Target: TargetOne, Mode: Drop} }},
	{"partition-leader", func() Fault { return &PartitionLeader{Mode: Drop} }},
	{"partition-majorities-ring", func() Fault { return &PartitionRing{Mode: Drop} }},
	{"partition-bridge", func() Fault { return &PartitionBridge{Mode: Drop} }},
	{"partition-one-way", func() Fault { return &PartitionOneWay{Target: TargetOne, Mode: Drop} }},
	{"latency", func() Fault { return &Latency{Target: TargetAll, Latency: 100 * time.Millisecond, Peers: true} }},
	{"bandwidth", func() Fault { return &Bandwidth{Target: TargetAll, Rate: 64, Peers: true} }},
	{"reset", func() Fault { return &Reset{Target: TargetOne, Peers: true} }},
	{"client-cut", func() Fault { return &ClientCut{Target: TargetOne, Mode: Drop} }},
	{"kill", func() Fault { return &Kill{Target: TargetOne} }},
	{"pause", func() Fault { return &Pause{Target: TargetOne} }},
	{"clock-skew", func() Fault { return &ClockSkew{Target: TargetOne, Offset: 5 * time.Second} }},
	{"service-time", func() Fault { return &ServiceTime{Target: TargetAll, ServiceTime: 100 * time.Millisecond} }},
}

func init() {
	for _, b := range builtin {
		Register(b.name, b.new)
	}
}

// Kind is one entry of the fault catalog, as `faultline faults` shows it.
// It is derived from the kind's registered type and constructor.
type Kind struct {
	Name   string
	Family string // the history event's f: partition, latency, bandwidth, reset, kill, pause, clock, service-time
	Doc    string
	Params []Param
}

// Param documents one parameter of a fault kind: a field of its type.
type Param struct {
	Name    string // the key in a scenario (the field's yaml tag)
	Type    string // duration, nodes, mode, true|false, whole number, number, string
	Default string // the constructor's value, as a scenario would write it
	Doc     string // the field's doc tag
	Values  string // the accepted values, for nodes and mode; "" otherwise
}

// kindEntry is one registered kind.
type kindEntry struct {
	name   string
	new    func() Fault
	typ    reflect.Type // the struct type (new returns a pointer to it)
	fields []paramField
}

// paramField is one parameter of a kind's struct.
type paramField struct {
	index int
	name  string
	doc   string
}

var (
	regMu    sync.RWMutex
	registry []*kindEntry
	byName   = map[string]*kindEntry{}
	byType   = map[reflect.Type]*kindEntry{}
)

// specKeys are the keys of a fault spec that are not parameters.
var specKeys = map[string]bool{"fault": true, "at": true, "for": true, "weight": true}

var durationType = reflect.TypeOf(time.Duration(0))

// Register adds a fault kind to the catalog. newFault returns a new value
// of the kind, a pointer to a struct, with every default set; it is called
// for every spec of the kind and must return a fresh value each time. Every
// exported field of the struct is a parameter and needs a yaml tag (its
// key) and a doc tag (one line saying what it does on this fault); its type
// is a string type (such as Selector or Mode), bool, an integer, a float or
// time.Duration. Register panics on a name taken, a struct without those
// tags, or a type registered twice (programming errors). Call it from an
// init function.
func Register(name string, newFault func() Fault) {
	regMu.Lock()
	defer regMu.Unlock()
	if name == "" || byName[name] != nil {
		panic(fmt.Sprintf("faults: fault kind %q registered twice or without a name", name))
	}
	f := newFault()
	t := reflect.TypeOf(f)
	if f == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("faults: fault kind %s: the constructor must return a pointer to a struct, not %T", name, f))
	}
	t = t.Elem()
	if byType[t] != nil {
		panic(fmt.Sprintf("faults: type %s registered as both %s and %s", t, byType[t].name, name))
	}
	e := &kindEntry{name: name, new: newFault, typ: t}
	seen := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		key := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		doc := sf.Tag.Get("doc")
		if sf.Anonymous || key == "" || key == "-" || doc == "" {
			panic(fmt.Sprintf("faults: fault kind %s: field %s needs a yaml tag with a key and a doc tag (and no embedding)", name, sf.Name))
		}
		if specKeys[key] || seen[key] {
			panic(fmt.Sprintf("faults: fault kind %s: parameter %q is taken", name, key))
		}
		switch sf.Type.Kind() {
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		default:
			panic(fmt.Sprintf("faults: fault kind %s: parameter %s has type %s; use a string, bool, number or time.Duration", name, key, sf.Type))
		}
		seen[key] = true
		e.fields = append(e.fields, paramField{index: i, name: key, doc: doc})
	}
	registry = append(registry, e)
	byName[name] = e
	byType[t] = e
}

func lookupEntry(name string) *kindEntry {
	regMu.RLock()
	defer regMu.RUnlock()
	return byName[name]
}

func entryOf(f Fault) *kindEntry {
	t := reflect.TypeOf(f)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	regMu.RLock()
	defer regMu.RUnlock()
	return byType[t.Elem()]
}

// New returns a new fault of the named kind with its defaults set. An
// unknown name is an error listing the known ones.
func New(name string) (Fault, error) {
	e := lookupEntry(name)
	if e == nil {
		if name == "" {
			return nil, fmt.Errorf("no fault named: name one of %s", strings.Join(Names(), ", "))
		}
		return nil, fmt.Errorf("%q is not a fault (known: %s)", name, strings.Join(Names(), ", "))
	}
	return e.new(), nil
}

// NameOf returns the name f's kind is registered under ("" if none).
func NameOf(f Fault) string {
	if e := entryOf(f); e != nil {
		return e.name
	}
	return ""
}

// Kinds returns the catalog: every registered kind, built-in ones in the
// catalog's order first, with its parameters and their defaults.
func Kinds() []Kind {
	regMu.RLock()
	entries := append([]*kindEntry(nil), registry...)
	regMu.RUnlock()
	out := make([]Kind, len(entries))
	for i, e := range entries {
		out[i] = e.kind()
	}
	return out
}

func (e *kindEntry) kind() Kind {
	f := e.new()
	k := Kind{Name: e.name, Family: f.Family(), Doc: f.Doc()}
	v := reflect.ValueOf(f).Elem()
	for _, pf := range e.fields {
		fv := v.Field(pf.index)
		p := Param{Name: pf.name, Type: typeName(fv.Type()), Default: fmt.Sprint(paramValue(fv)), Doc: pf.doc}
		if vd, ok := fv.Interface().(valuesDoc); ok {
			p.Values = vd.ValuesDoc()
		}
		k.Params = append(k.Params, p)
	}
	return k
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t == reflect.TypeOf(Selector("")):
		return "nodes"
	case t == reflect.TypeOf(Mode("")):
		return "mode"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true|false"
	case reflect.String:
		return "string"
	case reflect.Float32, reflect.Float64:
		return "number"
	}
	return "whole number"
}

// paramValue is a parameter's value as a scenario writes it: durations as
// strings ("100ms"), string types as plain strings, others as they are.
func paramValue(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return v.Interface()
}

// Lookup returns the catalog entry for name.
func Lookup(name string) (Kind, bool) {
	e := lookupEntry(name)
	if e == nil {
		return Kind{}, false
	}
	return e.kind(), true
}

// Names returns every fault name, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for _, e := range registry {
		out = append(out, e.name)
	}
	sort.Strings(out)
	return out
}

// paramsOf returns f's parameters by key, as a scenario writes them, in the
// kind's field order (keys) and as a map (values).
func paramsOf(f Fault) (keys []string, values map[string]any) {
	e := entryOf(f)
	if e == nil {
		return nil, nil
	}
	v := reflect.ValueOf(f).Elem()
	values = make(map[string]any, len(e.fields))
	for _, pf := range e.fields {
		keys = append(keys, pf.name)
		values[pf.name] = paramValue(v.Field(pf.index))
	}
	return keys, values
}

// selectorOf returns f's first Selector parameter, if it has one.
func selectorOf(f Fault) (Selector, bool) {
	e := entryOf(f)
	if e == nil {
		return "", false
	}
	v := reflect.ValueOf(f).Elem()
	for _, pf := range e.fields {
		if s, ok := v.Field(pf.index).Interface().(Selector); ok {
			return s, true
		}
	}
	return "", false
}

// cloneFault returns a copy of f (parameters are plain values).
func cloneFault(f Fault) Fault {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return f
	}
	c := reflect.New(v.Elem().Type())
	c.Elem().Set(v.Elem())
	return c.Interface().(Fault)
}

// checkParams checks f against env: each parameter of a self-checking
// type (Selector, Mode), then the kind's own Validate.
func checkParams(f Fault, env Env) error {
	if e := entryOf(f); e != nil {
		v := reflect.ValueOf(f).Elem()
		for _, pf := range e.fields {
			if pt, ok := v.Field(pf.index).Interface().(paramType); ok {
				if err := pt.checkParam(env); err != nil {
					return &SpecError{Field: pf.name, Msg: err.Error()}
				}
			}
		}
	}
	if vd, ok := f.(Validator); ok {
		return vd.Validate(env)
	}
	return nil
}

// unavailableText says that fault name (value f) is not available in env,
// given the error of availableIn.
func unavailableText(name string, f Fault, env Env, err error) string {
	what := name
	var se *SpecError
	if errors.As(err, &se) {
		_, values := paramsOf(f)
		what = fmt.Sprintf("%s with %s %v", name, se.Field, values[se.Field])
	}
	return fmt.Sprintf("%s is not available on %s: %v", what, env.where(), msgOf(err))
}

// msgOf is an error's text without a SpecError's field.
func msgOf(err error) string {
	var se *SpecError
	if errors.As(err, &se) {
		return se.Msg
	}
	return err.Error()
}

// availableIn checks that env can do what f asks: each parameter of a
// self-checking type (a leader target needs a status reader), then the
// kind's own Available.
func availableIn(f Fault, env Env) error {
	if e := entryOf(f); e != nil {
		v := reflect.ValueOf(f).Elem()
		for _, pf := range e.fields {
			if pt, ok := v.Field(pf.index).Interface().(paramType); ok {
				if err := pt.availableParam(env); err != nil {
					return &SpecError{Field: pf.name, Msg: err.Error()}
				}
			}
		}
	}
	return f.Available(env)
}

// Available reports whether the named kind, with its default parameters,
// can be injected where env says: nil if it can, else the reason and what
// to do (env's system and runtime are not repeated in it). It checks what
// Schedule.Validate checks of a spec: the node count the kind needs (when
// env.Nodes is known) and what the system and runtime must be able to do.
// Parameters can change the answer (latency on client links only needs
// less than on peer links): Validate judges each spec as written.
func Available(name string, env Env) error {
	f, err := New(name)
	if err != nil {
		return err
	}
	if len(env.Nodes) > 0 {
		if err := checkParams(f, env); err != nil {
			return errors.New(paramText(f, err))
		}
	}
	if err := availableIn(f, env); err != nil {
		return errors.New(paramText(f, err))
	}
	return nil
}

// paramText is err's text, prefixed with the parameter and its value when
// it is a *SpecError on one.
func paramText(f Fault, err error) string {
	var se *SpecError
	if errors.As(err, &se) {
		_, values := paramsOf(f)
		return fmt.Sprintf("%s %v: %s", se.Field, values[se.Field], se.Msg)
	}
	return err.Error()
}
