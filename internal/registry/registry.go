// Package registry is the one shape of every registry of parts by name
// (systems, client adapters, runtimes, workloads, checkers): parts add
// themselves from init functions and the conductor looks them up.
package registry

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Registry maps names to parts of one kind. It is safe for concurrent use.
type Registry[T any] struct {
	what string
	mu   sync.RWMutex
	m    map[string]T
}

// New returns an empty registry of parts that error messages call what
// ("system", "client adapter", ...).
func New[T any](what string) *Registry[T] {
	return &Registry[T]{what: what, m: map[string]T{}}
}

// Add registers v under name. It panics if the name is empty or taken: a
// programming error, found when the program starts.
func (r *Registry[T]) Add(name string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == "" {
		panic(fmt.Sprintf("registry: a %s without a name", r.what))
	}
	if _, dup := r.m[name]; dup {
		panic(fmt.Sprintf("registry: %s %q registered twice", r.what, name))
	}
	r.m[name] = v
}

// Get returns the part registered under name, or an error naming the ones
// there are.
func (r *Registry[T]) Get(name string) (T, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	v, ok := r.m[name]
	if !ok {
		known := "none"
		if len(r.m) > 0 {
			known = strings.Join(slices.Sorted(maps.Keys(r.m)), ", ")
		}
		return v, fmt.Errorf("%q is not a %s in this build (known: %s)", name, r.what, known)
	}
	return v, nil
}

// Names returns the registered names, sorted.
func (r *Registry[T]) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m))
}

// All returns the registered parts, sorted by name.
func (r *Registry[T]) All() []T {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]T, 0, len(r.m))
	for _, n := range slices.Sorted(maps.Keys(r.m)) {
		out = append(out, r.m[n])
	}
	return out
}
