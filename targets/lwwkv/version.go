package lwwkv

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
)

// vclock is a vector clock: node id -> the counter of that node's latest
// write the clock has seen. A missing entry is 0. The clock of a version
// of one key covers exactly the writes to that key it descends from.
type vclock map[string]uint64

// order is how two vector clocks (or two versions) relate.
type order int

const (
	equal      order = iota
	before           // the first happened before the second
	after            // the first happened after the second
	concurrent       // neither saw the other
)

func (o order) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[o]
}

// compare returns how a relates to b.
func compare(a, b vclock) order {
	less, more := false, false // some entry of a is below b's / above b's
	for id, x := range a {
		if y := b[id]; x < y {
			less = true
		} else if x > y {
			more = true
		}
	}
	for id, y := range b {
		if _, ok := a[id]; !ok && y > 0 {
			less = true
		}
	}
	switch {
	case less && more:
		return concurrent
	case less:
		return before
	case more:
		return after
	}
	return equal
}

// join returns the entrywise maximum of a and b, a new map.
func join(a, b vclock) vclock {
	out := make(vclock, len(a)+len(b))
	maps.Copy(out, a)
	for id, y := range b {
		if y > out[id] {
			out[id] = y
		}
	}
	return out
}

// version is a key's value as one write made it, or as a merge of
// concurrent writes resolved it: the value, its causal history (Clock),
// and the stamp of the write whose value it holds (TS, Origin, Seq).
type version struct {
	Value json.RawMessage `json:"value"` // canonical JSON
	Clock vclock          `json:"clock"`
	// TS is the write's timestamp: the origin node's clock (the node kit's
	// Now, clock faults included) in Unix nanoseconds.
	TS     int64  `json:"ts"`
	Origin string `json:"origin"` // the node that accepted the write
	Seq    uint64 `json:"seq"`    // the origin's write counter at the write; (Origin, Seq) names the write
}

// check says what is wrong with a version received from a peer.
func (v *version) check() error {
	switch {
	case v.Origin == "" || v.Seq == 0:
		return errors.New("want an origin and a seq > 0")
	case v.Clock[v.Origin] < v.Seq:
		return fmt.Errorf("clock %v does not cover the write's own entry %s:%d", v.Clock, v.Origin, v.Seq)
	case !json.Valid(v.Value):
		return errors.New("value is not JSON")
	}
	return nil
}

// stampLess reports whether a's stamp (TS, Origin, Seq) orders before b's:
// the total order of last-write-wins.
func stampLess(a, b *version) bool {
	if a.TS != b.TS {
		return a.TS < b.TS
	}
	if a.Origin != b.Origin {
		return a.Origin < b.Origin
	}
	return a.Seq < b.Seq
}

// sameWrite reports whether a and b hold the same write (perhaps with
// different histories: one of them a merge's result).
func sameWrite(a, b *version) bool {
	return a.TS == b.TS && a.Origin == b.Origin && a.Seq == b.Seq
}

// same reports whether a and b are the same version: the same write, with
// the same history.
func same(a, b *version) bool {
	return a.TS == b.TS && a.Origin == b.Origin && a.Seq == b.Seq && compare(a.Clock, b.Clock) == equal
}

// outcome says what a merge did.
type outcome struct {
	// changed: the result differs from the current version (the incoming
	// one won, or the histories were joined).
	changed bool
	// concurrent: neither version's history covers the other's (or both
	// cover the same writes but hold different ones), so one value was
	// discarded by its stamp.
	concurrent bool
	// overruled (wall-clock-only): the version whose history covers the
	// other's lost on its stamp: a causally later write was discarded.
	overruled bool
}

// merge returns the version a replica holding cur keeps when in arrives
// (hasCur false: it held none):
//
//   - when one clock is after the other, that version wins as it is;
//   - otherwise, when both hold the same write, it stays, with the join of
//     both clocks;
//   - otherwise (concurrent, or equal clocks holding different writes) the
//     larger stamp (TS, Origin, Seq) wins, with the join of both clocks, so
//     that the result's history covers both.
//
// With wallClockOnly the clocks are ignored: the larger stamp always wins
// (still with the join of both clocks).
//
// Every replica's version of a key only grows (its clock by inclusion, then
// its stamp among equal clocks), and merge is commutative, so replicas that
// keep exchanging their versions end up holding the same one.
func merge(cur version, hasCur bool, in version, wallClockOnly bool) (version, outcome) {
	if !hasCur {
		return in, outcome{changed: true}
	}
	ord := compare(in.Clock, cur.Clock)
	if !wallClockOnly {
		switch ord {
		case after:
			return in, outcome{changed: true}
		case before:
			return cur, outcome{}
		}
	}
	if sameWrite(&cur, &in) {
		// One write, known with two histories: keep both histories.
		joined := join(cur.Clock, in.Clock)
		changed := compare(joined, cur.Clock) != equal
		cur.Clock = joined
		return cur, outcome{changed: changed}
	}
	win, lose, incomingWins := cur, in, false
	if stampLess(&cur, &in) {
		win, lose, incomingWins = in, cur, true
	}
	out := outcome{
		concurrent: ord == concurrent || ord == equal, // equal: two resolutions of the same conflict
		// Reached with ordered clocks only under wallClockOnly.
		overruled: (incomingWins && ord == before) || (!incomingWins && ord == after),
	}
	win.Clock = join(win.Clock, lose.Clock)
	out.changed = incomingWins || compare(win.Clock, cur.Clock) != equal
	return win, out
}
