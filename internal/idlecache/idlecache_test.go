package idlecache

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

type value struct {
	n      int
	closed chan struct{}
}

// recorder opens numbered values and records closes.
type recorder struct {
	mu     sync.Mutex
	opened int
}

func (r *recorder) open() (*value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened++
	return &value{n: r.opened, closed: make(chan struct{})}, nil
}

func closeValue(v *value) { close(v.closed) } // a second close panics

func closedWithin(v *value, d time.Duration) bool {
	select {
	case <-v.closed:
		return true
	case <-time.After(d):
		return false
	}
}

// TestShareAndExpire: callers of one key share one value; it is closed
// once idle (not while leased), and the next Acquire makes a new one.
func TestShareAndExpire(t *testing.T) {
	r := &recorder{}
	c := New(100*time.Millisecond, closeValue)
	a, err := c.Acquire("k", r.open)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Acquire("k", r.open)
	other, _ := c.Acquire("other", r.open)
	if a.Value() != b.Value() || a.Value() == other.Value() || r.opened != 2 {
		t.Fatalf("values %d %d %d after %d opens, want one per key", a.Value().n, b.Value().n, other.Value().n, r.opened)
	}
	other.Release()
	// Leased past the idle time: not closed.
	if closedWithin(a.Value(), 250*time.Millisecond) {
		t.Fatal("a leased value was closed")
	}
	if !closedWithin(other.Value(), time.Second) || c.Has("other") {
		t.Fatal("an idle value was not closed")
	}
	a.Release()
	a.Release() // a second end does nothing
	// Used again before it expires: the idle time counts from the last use.
	time.Sleep(60 * time.Millisecond)
	d, _ := c.Acquire("k", r.open)
	d.Release()
	if closedWithin(a.Value(), 60*time.Millisecond) {
		t.Fatal("closed before it was idle for 100ms since its last use")
	}
	b.Release()
	if !closedWithin(a.Value(), time.Second) || c.Len() != 0 {
		t.Fatal("not closed once idle")
	}
	e, _ := c.Acquire("k", r.open)
	defer e.Release()
	if e.Value() == a.Value() || r.opened != 3 {
		t.Fatal("an expired value was reused")
	}
}

// TestDiscard: a discarded value leaves the cache at once and is closed
// when its last lease ends; an open error caches nothing.
func TestDiscard(t *testing.T) {
	r := &recorder{}
	c := New(time.Hour, closeValue)
	a, _ := c.Acquire("k", r.open)
	b, _ := c.Acquire("k", r.open)
	a.Discard()
	if c.Has("k") {
		t.Fatal("a discarded value is still cached")
	}
	if closedWithin(a.Value(), 50*time.Millisecond) {
		t.Fatal("a discarded value was closed while leased")
	}
	n, _ := c.Acquire("k", r.open)
	if n.Value() == a.Value() {
		t.Fatal("Acquire after Discard returned the discarded value")
	}
	b.Release()
	if !closedWithin(a.Value(), time.Second) {
		t.Fatal("a discarded value was not closed when its last lease ended")
	}
	n.Discard()
	if !closedWithin(n.Value(), time.Second) {
		t.Fatal("discarding the only lease did not close the value")
	}
	boom := errors.New("boom")
	if _, err := c.Acquire("x", func() (*value, error) { return nil, boom }); err != boom || c.Has("x") {
		t.Fatalf("open error: %v, cached %v", err, c.Has("x"))
	}
}

func TestKey(t *testing.T) {
	a := Key("h:1", "user", "secret")
	if a != Key("h:1", "user", "secret") || a == Key("h:1", "user", "other") || a == Key("h:2", "user", "secret") ||
		a == Key("h:1", "users", "ecret") || a == Key("h:1", "user", "secret", "") {
		t.Error("keys of different configurations collide, or of one differ")
	}
	if strings.Contains(a, "secret") || !strings.HasPrefix(a, "h:1 ") {
		t.Errorf("key %q", a)
	}
}

// TestConcurrentUse: leases taken, released and discarded from several
// goroutines at once, with values expiring in between: no value is closed
// while leased, none twice (closeValue panics), and every one is closed
// in the end.
func TestConcurrentUse(t *testing.T) {
	r := &recorder{}
	var mu sync.Mutex
	var all []*value
	open := func() (*value, error) {
		v, err := r.open()
		mu.Lock()
		all = append(all, v)
		mu.Unlock()
		return v, err
	}
	c := New(time.Millisecond, closeValue)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				l, _ := c.Acquire("k", open)
				select {
				case <-l.Value().closed:
					t.Errorf("goroutine %d: a leased value is closed", g)
				default:
				}
				if i%7 == g%7 {
					l.Discard()
				} else {
					l.Release()
				}
				if i%50 == 0 {
					time.Sleep(2 * time.Millisecond) // let values expire
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	for _, v := range all {
		if !closedWithin(v, time.Second) {
			t.Fatalf("value %d of %d was never closed", v.n, len(all))
		}
	}
	if c.Len() != 0 {
		t.Errorf("%d values still cached", c.Len())
	}
}
