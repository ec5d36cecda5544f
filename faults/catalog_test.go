package faults

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The catalog is derived from the kinds' types: every parameter is a
// field with its own doc, and the defaults are the constructor's values.
func TestCatalogDerivedFromTypes(t *testing.T) {
	kinds := Kinds()
	if len(kinds) != len(builtin) {
		t.Fatalf("%d kinds in the catalog, %d in the table", len(kinds), len(builtin))
	}
	for i, k := range kinds {
		if k.Name != builtin[i].name {
			t.Errorf("catalog order: %d is %s, want %s", i, k.Name, builtin[i].name)
		}
		if k.Doc == "" || k.Family == "" {
			t.Errorf("%s: family %q doc %q", k.Name, k.Family, k.Doc)
		}
		f, _ := New(k.Name)
		typ := reflect.TypeOf(f).Elem()
		if len(k.Params) != typ.NumField() {
			t.Errorf("%s: %d params, %d fields", k.Name, len(k.Params), typ.NumField())
		}
		for j, p := range k.Params {
			sf := typ.Field(j)
			if p.Name != strings.Split(sf.Tag.Get("yaml"), ",")[0] || p.Doc != sf.Tag.Get("doc") || p.Doc == "" {
				t.Errorf("%s.%s: param %+v does not match field %s", k.Name, p.Name, p, sf.Name)
			}
			if (p.Type == "nodes" || p.Type == "mode") != (p.Values != "") {
				t.Errorf("%s.%s: type %s with values %q", k.Name, p.Name, p.Type, p.Values)
			}
		}
	}
}

func TestCatalogDefaults(t *testing.T) {
	want := map[string]map[string]string{
		"partition-halves":          {"mode": "drop", "clients": "false"},
		"partition-one":             {"target": "one", "mode": "drop", "clients": "false"},
		"partition-leader":          {"mode": "drop", "clients": "false"},
		"partition-majorities-ring": {"mode": "drop"},
		"partition-bridge":          {"mode": "drop"},
		"partition-one-way":         {"target": "one", "mode": "drop"},
		"latency":                   {"target": "all", "latency": "100ms", "jitter": "0s", "peers": "true", "clients": "false"},
		"bandwidth":                 {"target": "all", "rate": "64", "peers": "true", "clients": "false"},
		"reset":                     {"target": "one", "peers": "true", "clients": "false"},
		"client-cut":                {"target": "one", "mode": "drop"},
		"kill":                      {"target": "one"},
		"pause":                     {"target": "one"},
		"clock-skew":                {"target": "one", "offset": "5s", "drift": "0"},
		"service-time":              {"target": "all", "service_time": "100ms"},
	}
	for _, k := range Kinds() {
		got := map[string]string{}
		for _, p := range k.Params {
			got[p.Name] = p.Default
		}
		if !reflect.DeepEqual(got, want[k.Name]) {
			t.Errorf("%s: defaults %v, want %v", k.Name, got, want[k.Name])
		}
	}
	// The spec of a kind has the same defaults, typed.
	l := NewSpec("latency", func(*Latency) {}).Kind.(*Latency)
	if l.Latency != 100*time.Millisecond || l.Target != TargetAll || !l.Peers {
		t.Errorf("latency defaults: %+v", l)
	}
	if p := (Spec{Fault: "clock-skew"}).Params(); p["offset"] != "5s" || p["target"] != "one" {
		t.Errorf("clock-skew params from a bare spec: %v", p)
	}
}

// Each parameter's doc fits the fault it is on: the same key on two kinds
// of different families never shares a text (a partition's `clients` is
// not latency's).
func TestCatalogDocsFitTheFault(t *testing.T) {
	docs := map[string]string{} // key+doc -> family
	for _, k := range Kinds() {
		for _, p := range k.Params {
			if fam, ok := docs[p.Name+"\x00"+p.Doc]; ok && fam != k.Family {
				t.Errorf("%s.%s has the same doc as on a %s fault: %q", k.Name, p.Name, fam, p.Doc)
			}
			docs[p.Name+"\x00"+p.Doc] = k.Family
		}
	}
	// The link faults' peers and clients say what the fault does to those
	// links, not what a partition does.
	for kind, verb := range map[string]string{"latency": "slow", "bandwidth": "limit", "reset": "reset"} {
		k, ok := Lookup(kind)
		if !ok {
			t.Fatalf("no fault %s", kind)
		}
		seen := 0
		for _, p := range k.Params {
			if p.Name != "clients" && p.Name != "peers" {
				continue
			}
			seen++
			if strings.Contains(p.Doc, "cut") || strings.Contains(p.Doc, "isolat") || !strings.Contains(p.Doc, verb) {
				t.Errorf("%s's %s doc %q: want it to say it does %q to those links", kind, p.Name, p.Doc, verb)
			}
		}
		if seen != 2 {
			t.Errorf("%s has %d of peers and clients", kind, seen)
		}
	}
}

func TestNewUnknownListsKinds(t *testing.T) {
	var s Spec
	_, err := s.SetKind("partition-everything")
	if err == nil || !strings.Contains(err.Error(), "partition-halves") || !strings.Contains(err.Error(), "clock-skew") {
		t.Fatalf("unknown kind: %v", err)
	}
	p, err := s.SetKind("bandwidth")
	if err != nil || s.Fault != "bandwidth" || p.(*Bandwidth).Rate != 64 || s.Kind != p {
		t.Fatalf("SetKind: %v %+v %+v", err, s, p)
	}
	if s.KindKey() != "fault" {
		t.Fatal(s.KindKey())
	}
}

// docless is a fault kind whose parameter has no doc.
type docless struct {
	X int `yaml:"x"`
}

func (*docless) Family() string                                   { return "test" }
func (*docless) Doc() string                                      { return "test" }
func (*docless) Available(Env) error                              { return nil }
func (*docless) Inject(context.Context, *Injection) (Undo, error) { return nil, nil }

func TestRegisterRefusesUndocumentedParams(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "doc tag") {
			t.Fatalf("Register accepted a parameter without a doc (%v)", r)
		}
		if _, ok := Lookup("test-docless"); ok {
			t.Fatal("a refused kind is in the catalog")
		}
	}()
	Register("test-docless", func() Fault { return &docless{} })
}
