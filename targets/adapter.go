package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/registry"
)

// ClientConfig is what an adapter's New gets to build one client.
type ClientConfig struct {
	// Nodes maps each node id to the address a client dials to reach it
	// (NodeInfo.ClientVia: a proxy when client links are proxied).
	Nodes map[string]string
	// Roles maps each node id to its role.
	Roles map[string]string
	// Home is the node this client sends its operations to first.
	Home string
	// Timeout bounds one operation.
	Timeout time.Duration
	// Options are the adapter's settings from the scenario (`client:`).
	Options map[string]string
	// Token, if set, is sent with every request by adapters that speak
	// faultline's node protocol (the http adapter: Authorization: Bearer);
	// the run's ClusterSpec.Token for faultline's own nodes, "" for
	// services that take none (nothing is sent then).
	Token Token
}

// Adapter is a client adapter: how faultline speaks to a kind of system.
type Adapter struct {
	Name string
	Doc  string
	// Ops are the operations its clients perform (get, put, cas, ...); a
	// workload that needs others is refused at validation.
	Ops []string
	// Errors says how the system's errors map to fail (certainly no
	// effect) and info (unknown effect), for `faultline` help texts.
	Errors string
	// Options lists the settings it accepts in a scenario's `client:`.
	Options []Option
	// New returns a client; it is called once per worker.
	New func(cfg ClientConfig) (Client, error)

	// Ping, if set, returns nil once the node at addr (host:port, its
	// own client address, never a proxy) serves requests, with the
	// adapter's options from the scenario: the readiness probe `ready:
	// adapter` of a process target. One call is one try, bounded by ctx.
	Ping func(ctx context.Context, addr string, opts map[string]string) error
	// Status, if set, reads node n's status (role, term, leader, indexes)
	// on its own client address (NodeInfo.Client, which no fault cuts),
	// with the adapter's options: the status reader of a process target,
	// which has no admin API of its own. Status.Leader and Status.ID are
	// node ids. Safe for concurrent use.
	Status func(ctx context.Context, n NodeInfo, opts map[string]string) (Status, error)
	// LocalRead, if set, reads key from node n's own state on its own
	// client address (NodeInfo.Client, which no fault cuts), without a
	// quorum or a leader (etcd: a serializable read of that member; Redis:
	// GET on that server, primary or replica), with the adapter's options:
	// the replica reads of the convergence checker on a target faultline
	// did not write. An absent key is JSON null. Safe for concurrent use.
	LocalRead func(ctx context.Context, n NodeInfo, key string, opts map[string]string) (json.RawMessage, error)
}

// Supports reports whether the adapter performs op.
func (a *Adapter) Supports(op string) bool {
	for _, o := range a.Ops {
		if o == op {
			return true
		}
	}
	return false
}

var adapters = registry.New[*Adapter]("client adapter")

// RegisterAdapter makes a client adapter available by name. It panics if
// the name is taken or New is nil. Call it from an init function.
func RegisterAdapter(a Adapter) {
	if a.New == nil {
		panic("targets: adapter " + a.Name + " has no New")
	}
	adapters.Add(a.Name, &a)
}

// LookupAdapter returns the named adapter.
func LookupAdapter(name string) (*Adapter, error) { return adapters.Get(name) }

// Adapters returns every registered adapter, sorted by name.
func Adapters() []*Adapter { return adapters.All() }

// PrefixKeys returns a Client that sends every operation of c with prefix
// put before its key: how a run on a shared cluster keeps to keys of its
// own (the history records the keys without it). Close closes c.
func PrefixKeys(c Client, prefix string) Client {
	if prefix == "" {
		return c
	}
	return prefixed{c, prefix}
}

type prefixed struct {
	Client
	prefix string
}

func (p prefixed) Do(ctx context.Context, op history.Op) history.Outcome {
	op.Key = p.prefix + op.Key
	return p.Client.Do(ctx, op)
}

// KVRequest is a get, put or cas of a key-value adapter, checked and with
// its values as canonical JSON text (history.CanonicalJSON), so that a
// stored value compares equal to any JSON spelling of it. A null Value
// (put) or To (cas) means the key is to be absent; a null From, that it
// must be.
type KVRequest struct {
	F, Key   string
	Value    string // put
	From, To string // cas
}

// DecodeKV checks op (get, put or cas; a non-empty key; JSON values; a cas
// value {"from": X, "to": Y}) and returns it as a KVRequest. Errors start
// with name (the adapter's, e.g. "etcd: ").
func DecodeKV(name string, op history.Op) (KVRequest, error) {
	r := KVRequest{F: op.F, Key: op.Key}
	if op.Key == "" {
		return r, fmt.Errorf("%s: empty key", name)
	}
	switch op.F {
	case "get":
	case "put":
		if len(op.Value) == 0 {
			return r, fmt.Errorf("%s: put needs a value", name)
		}
		v, err := history.CanonicalJSON(op.Value)
		if err != nil {
			return r, fmt.Errorf("%s: put value is not valid JSON: %v", name, err)
		}
		r.Value = string(v)
	case "cas":
		var c history.CAS
		if err := json.Unmarshal(op.Value, &c); err != nil || c.From == nil || c.To == nil {
			v := string(op.Value)
			if len(v) > 100 {
				v = v[:100] + "…"
			}
			return r, fmt.Errorf(`%s: cas value must be {"from": X, "to": Y}, got %s`, name, v)
		}
		from, err := history.CanonicalJSON(c.From)
		if err != nil {
			return r, fmt.Errorf("%s: cas from is not valid JSON: %v", name, err)
		}
		to, err := history.CanonicalJSON(c.To)
		if err != nil {
			return r, fmt.Errorf("%s: cas to is not valid JSON: %v", name, err)
		}
		r.From, r.To = string(from), string(to)
	default:
		return r, fmt.Errorf("%s: unsupported op %q (want get, put or cas)", name, op.F)
	}
	return r, nil
}

// CheckOptionName returns nil when options (an adapter's) accept name:
// one of them, or NAME_env for a secret one; else an error naming the
// adapter and the accepted names.
func CheckOptionName(adapter string, options []Option, name string) error {
	var names []string
	for _, o := range options {
		if o.Name == name || (o.Secret && o.Name+EnvSuffix == name) {
			return nil
		}
		names = append(names, o.Name)
		if o.Secret {
			names = append(names, o.Name+EnvSuffix)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("client adapter %s has no option %q (it takes none)", adapter, name)
	}
	return fmt.Errorf("client adapter %s has no option %q (known: %s)", adapter, name, strings.Join(names, ", "))
}
