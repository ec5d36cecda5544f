package checkers

import (
	"bytes"
	"encoding/json"

	"github.com/faultline/faultline/history"
)

// canonicalJSON returns the canonical text of a JSON value
// (history.CanonicalJSON), reading an absent value (empty input) as null, as
// the checkers read an event without a value.
func canonicalJSON(raw json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "null", nil
	}
	return history.CanonicalJSON(raw)
}

// valueTable interns canonical JSON values as small integers, so that the
// model's states compare and hash as integers. Id 0 is null (an absent key).
type valueTable struct {
	ids  map[string]int32
	text []string
	// boxed[i] is int32(i) stored in an interface, so that model steps do
	// not allocate.
	boxed []any
	// scratch holds the canonical text being looked up.
	scratch []byte
}

func newValueTable() *valueTable { return newValueTableSize(0) }

// newValueTableSize returns a table with room for about n values (growing
// a map of a million values costs more than filling it).
func newValueTableSize(n int) *valueTable {
	t := &valueTable{ids: make(map[string]int32, n), text: make([]string, 0, n), boxed: make([]any, 0, n)}
	t.intern("null")
	return t
}

func (t *valueTable) intern(s string) int32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	id := int32(len(t.text))
	t.ids[s] = id
	t.text = append(t.text, s)
	t.boxed = append(t.boxed, id)
	return id
}

// internRaw canonicalises raw (an absent value is null) and interns it.
// A value already interned costs no allocation.
func (t *valueTable) internRaw(raw json.RawMessage) (int32, error) {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	b, err := history.AppendCanonicalJSON(t.scratch[:0], raw)
	if err != nil {
		return 0, err
	}
	t.scratch = b
	if id, ok := t.ids[string(b)]; ok {
		return id, nil
	}
	return t.intern(string(b)), nil
}

// String returns the canonical JSON of id, shortened for messages.
func (t *valueTable) String(id int32) string {
	s := t.text[id]
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
