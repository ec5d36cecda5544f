package checkers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
)

// canonicalJSON returns the canonical text of a JSON value, so that values
// that are equal as JSON compare equal as strings: numbers are normalised
// (1, 1.0 and 1e0 are "1"; integers are kept exact at any size; other numbers
// use the shortest float64 form), object keys are sorted, insignificant
// whitespace is removed and strings are re-escaped the way encoding/json
// escapes them. An empty input (no value) is "null".
func canonicalJSON(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null", nil
	}
	// Fast paths for the values faultline writes: plain strings and integers.
	if isPlainString(raw) {
		return string(raw), nil
	}
	if s, ok := plainInteger(raw); ok {
		return s, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("value %.80q is not valid JSON: %v", raw, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("value %.80q is not a single JSON value", raw)
	}
	buf, err := appendCanonical(nil, v)
	if err != nil {
		return "", err
	}
	return string(buf), nil
}

// isPlainString reports whether raw is a JSON string that encoding/json would
// encode byte for byte the same way: printable ASCII, no escapes, no <, >, &.
func isPlainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// plainInteger returns the canonical text of a JSON integer literal (no
// fraction, no exponent), or false if raw is not one.
func plainInteger(raw []byte) (string, bool) {
	b := raw
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return "", false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if neg && len(b) == 1 && b[0] == '0' {
		return "0", true
	}
	return string(raw), true
}

// isCanonicalInt reports whether raw is a positive integer literal without
// leading zeros (its own canonical form).
func isCanonicalInt(raw []byte) bool {
	if len(raw) == 0 || raw[0] == '0' {
		return false
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func appendCanonical(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case json.Number:
		s, err := canonicalNumber(string(x))
		if err != nil {
			return nil, err
		}
		return append(dst, s...), nil
	case string:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return append(dst, b...), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendCanonical(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			kb, err := json.Marshal(k)
			if err != nil {
				return nil, err
			}
			dst = append(dst, kb...)
			dst = append(dst, ':')
			if dst, err = appendCanonical(dst, x[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("unexpected JSON value of type %T", v)
}

// canonicalNumber normalises a JSON number: integral values (whatever their
// spelling) become exact decimal integers, others the shortest float64 text.
func canonicalNumber(s string) (string, error) {
	if c, ok := plainInteger([]byte(s)); ok {
		return c, nil
	}
	f, ferr := strconv.ParseFloat(s, 64)
	// big.Rat is exact but can be made to allocate without bound by a huge
	// exponent; only use it where the value fits comfortably.
	if ferr == nil && math.Abs(f) < 1e300 {
		if r, ok := new(big.Rat).SetString(s); ok && r.IsInt() {
			return r.Num().String(), nil
		}
	}
	if ferr != nil && !errors.Is(ferr, strconv.ErrRange) {
		return "", fmt.Errorf("number %q: %v", s, ferr)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}

// valueTable interns canonical JSON values as small integers, so that the
// model's states compare and hash as integers. Id 0 is null (an absent key).
type valueTable struct {
	ids  map[string]int32
	text []string
	// boxed[i] is int32(i) stored in an interface, so that model steps do
	// not allocate.
	boxed []any
}

func newValueTable() *valueTable {
	t := &valueTable{ids: make(map[string]int32)}
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

// internRaw canonicalises raw and interns it.
func (t *valueTable) internRaw(raw json.RawMessage) (int32, error) {
	// Fast path: canonical text already interned (no allocation).
	if len(raw) > 0 && (raw[0] == '"' || raw[0] >= '1' && raw[0] <= '9') {
		if id, ok := t.ids[string(raw)]; ok && (isPlainString(raw) || isCanonicalInt(raw)) {
			return id, nil
		}
	}
	s, err := canonicalJSON(raw)
	if err != nil {
		return 0, err
	}
	return t.intern(s), nil
}

// String returns the canonical JSON of id, shortened for messages.
func (t *valueTable) String(id int32) string {
	s := t.text[id]
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
