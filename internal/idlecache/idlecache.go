// Package idlecache keeps one value per key (a client of one server, say),
// made on first use, shared by every caller that asks for the same key,
// and closed once it has gone unused for a while. The client adapters'
// readiness probes and status readers use it: the observer asks every
// node for its status several times a second, and one client per node
// serves all those calls without a connection per call, nor a connection
// left open for the life of the process.
package idlecache

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"sync"
	"time"
)

// Key returns a cache key for a client of addr configured by parts (a
// user name, a password, TLS settings: everything that makes two clients
// of one address differ): addr and a SHA-256 digest of the parts, so that
// no two configurations share a value and no secret is kept in clear.
func Key(addr string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Quote(p)))
		h.Write([]byte{0})
	}
	return addr + " " + hex.EncodeToString(h.Sum(nil))
}

// Cache holds at most one value per key. A value is made by the open
// function given to Acquire, used through Leases, and closed (with the
// close function given to New) once no Lease holds it and it has been
// idle for the cache's idle time, or once it is discarded and no Lease
// holds it any more. Safe for concurrent use.
type Cache[V any] struct {
	close func(V)

	mu      sync.Mutex
	entries map[string]*entry[V]
	idle    time.Duration // how long a value may stay unused
}

// entry is one cached value. Its fields but key and val are guarded by
// the cache's mu.
//
// A dropped entry is out of entries, so it gets no new Lease: its users
// only go down, and it is closed exactly once, when they reach 0 (by the
// last release, or at once by expire, which drops only an unused entry).
type entry[V any] struct {
	key     string
	val     V
	timer   *time.Timer
	users   int
	last    time.Time // when the last Lease ended
	dropped bool      // no longer in entries: closed once users is 0
}

// New returns an empty cache whose values are closed with close once
// they have been unused for idle.
func New[V any](idle time.Duration, close func(V)) *Cache[V] {
	return &Cache[V]{close: close, entries: map[string]*entry[V]{}, idle: idle}
}

// Lease is one use of a cached value; end it with Release or Discard,
// exactly once (later calls do nothing).
type Lease[V any] struct {
	c    *Cache[V]
	e    *entry[V]
	once sync.Once
}

// Acquire returns a Lease on the value for key, calling open to make it
// if the cache holds none (open is called with the cache locked: it must
// not block, as building a client that connects lazily does not). An
// error of open is returned as is, and nothing is cached.
func (c *Cache[V]) Acquire(key string, open func() (V, error)) (*Lease[V], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[key]; e != nil {
		e.users++
		return &Lease[V]{c: c, e: e}, nil
	}
	v, err := open()
	if err != nil {
		return nil, err
	}
	e := &entry[V]{key: key, val: v, users: 1}
	e.timer = time.AfterFunc(c.idle, func() { c.expire(e) })
	c.entries[key] = e
	return &Lease[V]{c: c, e: e}, nil
}

// Value returns the leased value.
func (l *Lease[V]) Value() V { return l.e.val }

// Release ends the use: the value stays cached, and is closed once it
// has been idle for the cache's idle time.
func (l *Lease[V]) Release() { l.once.Do(func() { l.c.release(l.e, false) }) }

// Discard ends the use and drops the value from the cache: the next
// Acquire of its key makes a new one, and this one is closed as soon as
// no Lease holds it (at once if this was the last). For a value that is
// known to be broken, or that would hold on to a failure.
func (l *Lease[V]) Discard() { l.once.Do(func() { l.c.release(l.e, true) }) }

func (c *Cache[V]) release(e *entry[V], discard bool) {
	c.mu.Lock()
	e.users--
	e.last = time.Now()
	if discard && !e.dropped {
		e.dropped = true
		delete(c.entries, e.key)
	}
	if !e.dropped {
		e.timer.Reset(c.idle)
		c.mu.Unlock()
		return
	}
	closeNow := e.users == 0
	if closeNow {
		e.timer.Stop()
	}
	c.mu.Unlock()
	if closeNow {
		c.close(e.val)
	}
}

// expire closes e if it is unused and has been idle for c.idle.
func (c *Cache[V]) expire(e *entry[V]) {
	c.mu.Lock()
	if e.users > 0 || e.dropped || c.entries[e.key] != e {
		c.mu.Unlock()
		return // in use (its release arms the timer again), or gone
	}
	if left := c.idle - time.Since(e.last); left > 0 {
		e.timer.Reset(left) // used since the timer was armed
		c.mu.Unlock()
		return
	}
	delete(c.entries, e.key)
	e.dropped = true
	c.mu.Unlock()
	c.close(e.val)
}

// SetIdle changes how long values may stay unused, from their next use
// on, and returns the previous setting (for tests).
func (c *Cache[V]) SetIdle(d time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.idle
	c.idle = d
	return old
}

// Has reports whether a value for key is cached.
func (c *Cache[V]) Has(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key] != nil
}

// Len returns how many values are cached.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
