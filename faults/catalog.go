package faults

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Param documents one parameter of a fault.
type Param struct {
	Name    string
	Default string
	Doc     string
}

// Kind is one entry of the fault catalog.
type Kind struct {
	Name   string
	Family string // the history event's f: partition, latency, bandwidth, reset, kill, pause, clock
	Doc    string
	Params []Param
	// Links is true when the fault needs proxies on the links (every
	// runtime here has them; an external cluster has only client links).
	Links bool
}

var (
	pMode    = Param{"mode", "drop", "drop (packets vanish: timeouts), hold (delivered when healed), refuse (connections refused and closed)"}
	pClients = Param{"clients", "false", "also cut clients from the nodes outside the largest side"}
	pTarget  = func(def string) Param {
		return Param{"target", def, "one (a seeded random node), leader (resolved when the fault starts), majority, minority, all, or a node id"}
	}
)

// Catalog lists every fault faultline can inject, by name.
var Catalog = []Kind{
	{Name: "partition-halves", Family: "partition", Links: true, Doc: "split the nodes into two halves (the larger half a majority); every link across is cut both ways", Params: []Param{pMode, pClients}},
	{Name: "partition-one", Family: "partition", Links: true, Doc: "isolate one node from every other node", Params: []Param{pTarget("one"), pMode, pClients}},
	{Name: "partition-leader", Family: "partition", Links: true, Doc: "isolate the node that is leader when the fault starts", Params: []Param{pMode, pClients}},
	{Name: "partition-majorities-ring", Family: "partition", Links: true, Doc: "every node sees a majority, but no two nodes see the same one (nodes in a ring, each linked to its nearest neighbours)", Params: []Param{pMode}},
	{Name: "partition-bridge", Family: "partition", Links: true, Doc: "two halves joined by one bridge node that sees both", Params: []Param{pMode}},
	{Name: "partition-one-way", Family: "partition", Links: true, Doc: "the target can no longer open or use connections to the others; they still reach it (a one-way cut of the links it dials)", Params: []Param{pTarget("one"), pMode}},
	{Name: "latency", Family: "latency", Links: true, Doc: "add latency (plus jitter) to both directions of every link touching the target (all: every peer link)", Params: []Param{pTarget("all"), {"latency", "100ms", "added delay per direction"}, {"jitter", "0", "random extra delay, up to this much"}, pClients}},
	{Name: "bandwidth", Family: "bandwidth", Links: true, Doc: "limit the bandwidth of every link touching the target", Params: []Param{pTarget("all"), {"rate", "64", "KB/s per direction"}, pClients}},
	{Name: "reset", Family: "reset", Links: true, Doc: "reset (RST) new connections on every link touching the target", Params: []Param{pTarget("one"), pClients}},
	{Name: "kill", Family: "kill", Doc: "kill the target nodes (SIGKILL or docker kill) and start them again when the fault ends; data on disk survives", Params: []Param{pTarget("one")}},
	{Name: "pause", Family: "pause", Doc: "pause the target nodes (SIGSTOP or docker pause) and resume them when the fault ends", Params: []Param{pTarget("one")}},
	{Name: "clock-skew", Family: "clock", Doc: "shift the target nodes' clocks through their admin API (reference systems only) and reset them when the fault ends", Params: []Param{pTarget("one"), {"offset", "5s", "how far to shift; negative goes back"}}},
}

// Lookup returns the catalog entry for name.
func Lookup(name string) (Kind, bool) {
	for _, k := range Catalog {
		if k.Name == name {
			return k, true
		}
	}
	return Kind{}, false
}

// Names returns every fault name, sorted.
func Names() []string {
	var out []string
	for _, k := range Catalog {
		out = append(out, k.Name)
	}
	sort.Strings(out)
	return out
}

// Spec is one fault as written in a scenario: in the `mix` of an interval
// or random schedule, or on a timeline (with At). Plan resolves seeded
// choices (which node is "one", how the halves fall) into Nodes and Groups;
// "leader" is resolved when the fault starts.
type Spec struct {
	Fault   string        `yaml:"fault" json:"fault"`
	Mode    string        `yaml:"mode" json:"mode,omitempty"`
	Target  string        `yaml:"target" json:"target,omitempty"`
	Clients bool          `yaml:"clients" json:"clients,omitempty"`
	Latency time.Duration `yaml:"latency" json:"latency,omitempty"`
	Jitter  time.Duration `yaml:"jitter" json:"jitter,omitempty"`
	Rate    int64         `yaml:"rate" json:"rate,omitempty"`
	Offset  time.Duration `yaml:"offset" json:"offset,omitempty"`
	At      time.Duration `yaml:"at" json:"at,omitempty"`         // timeline: since the main phase began
	For     time.Duration `yaml:"for" json:"for,omitempty"`       // how long it lasts
	Weight  float64       `yaml:"weight" json:"weight,omitempty"` // random schedule: relative weight (default 1)

	// Resolved by Plan.
	Nodes  []string   `yaml:"-" json:"nodes,omitempty"`
	Groups [][]string `yaml:"-" json:"groups,omitempty"`
}

// SpecError is a problem with one field of a fault spec or schedule; Field
// is a path relative to the scenario's `faults` section.
type SpecError struct {
	Field string
	Msg   string
}

func (e *SpecError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Msg) }

func specErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// validate checks one spec; path names it (e.g. "mix[2]").
func (s *Spec) validate(path string, nodes []string) error {
	k, ok := Lookup(s.Fault)
	if !ok {
		if s.Fault == "" {
			return specErr(path+".fault", "missing: name a fault (%s)", strings.Join(Names(), ", "))
		}
		return specErr(path+".fault", "%q is not a fault; `faultline faults` lists them: %s", s.Fault, strings.Join(Names(), ", "))
	}
	has := map[string]bool{}
	for _, p := range k.Params {
		has[p.Name] = true
	}
	set := map[string]bool{"mode": s.Mode != "", "target": s.Target != "", "clients": s.Clients, "latency": s.Latency != 0,
		"jitter": s.Jitter != 0, "rate": s.Rate != 0, "offset": s.Offset != 0}
	for name, isSet := range set {
		if isSet && !has[name] {
			return specErr(path+"."+name, "fault %s takes no %s (it takes: %s)", k.Name, name, paramNames(k))
		}
	}
	if s.Mode != "" {
		if _, err := ParseMode(s.Mode); err != nil {
			return specErr(path+".mode", "%q: use drop, hold or refuse", s.Mode)
		}
	}
	if s.Target != "" {
		switch s.Target {
		case "one", "leader", "majority", "minority", "all":
		default:
			found := false
			for _, n := range nodes {
				found = found || n == s.Target
			}
			if !found {
				return specErr(path+".target", "%q: use one, leader, majority, minority, all or a node id (%s)", s.Target, strings.Join(nodes, ", "))
			}
		}
		if (k.Name == "partition-one" || k.Name == "partition-one-way") && s.Target != "one" && s.Target != "leader" && !isNode(s.Target, nodes) {
			return specErr(path+".target", "%s isolates a single node: use one, leader or a node id", k.Name)
		}
	}
	if s.Latency < 0 || s.Jitter < 0 {
		return specErr(path+".latency", "must not be negative")
	}
	if k.Name == "bandwidth" && s.Rate < 0 {
		return specErr(path+".rate", "must be a positive number of KB/s")
	}
	if s.For < 0 || s.At < 0 {
		return specErr(path+".for", "must not be negative")
	}
	if s.Weight < 0 {
		return specErr(path+".weight", "must not be negative")
	}
	if strings.HasPrefix(k.Name, "partition-") && k.Name != "partition-one" && k.Name != "partition-leader" && k.Name != "partition-one-way" && len(nodes) < 2 {
		return specErr(path+".fault", "%s needs at least 2 nodes", k.Name)
	}
	if k.Name == "partition-majorities-ring" && len(nodes) < 4 {
		return specErr(path+".fault", "partition-majorities-ring needs at least 4 nodes (with 3, every node already sees every majority)")
	}
	if k.Name == "partition-bridge" && len(nodes) < 3 {
		return specErr(path+".fault", "partition-bridge needs at least 3 nodes")
	}
	return nil
}

func isNode(id string, nodes []string) bool {
	for _, n := range nodes {
		if n == id {
			return true
		}
	}
	return false
}

func paramNames(k Kind) string {
	var out []string
	for _, p := range k.Params {
		out = append(out, p.Name)
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// withDefaults returns s with the catalog defaults filled in.
func (s Spec) withDefaults() Spec {
	k, _ := Lookup(s.Fault)
	for _, p := range k.Params {
		switch p.Name {
		case "mode":
			if s.Mode == "" {
				s.Mode = p.Default
			}
		case "target":
			if s.Target == "" {
				s.Target = p.Default
			}
		case "latency":
			if s.Latency == 0 {
				s.Latency = 100 * time.Millisecond
			}
		case "rate":
			if s.Rate == 0 {
				s.Rate = 64
			}
		case "offset":
			if s.Offset == 0 {
				s.Offset = 5 * time.Second
			}
		}
	}
	return s
}
