package history

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

// CanonicalJSON returns the canonical text of the JSON value raw, so that
// values equal as JSON are equal as strings. faultline compares values this
// way everywhere: the checkers (a read names the write it saw) and the
// reference systems (a CAS compares the stored value with its "from").
//
//   - insignificant whitespace is removed;
//   - object keys are sorted; of duplicate keys the last one wins;
//   - numbers are compared by value: an integral number, however it is
//     spelled, is a plain decimal integer, exact at any size (1, 1.0, 1e0
//     and 10e-1 are all "1"; -0 is "0"); any other number is the shortest
//     text of the nearest float64 (so decimals compare as float64 values);
//   - strings are re-escaped as encoding/json escapes them, but without its
//     HTML escapes (<, > and & stay as they are).
//
// The error is non-nil when raw is not exactly one JSON value: empty input
// (a missing value is not JSON; callers that read an absent value as null
// say so themselves), invalid JSON, trailing data, or a number beyond the
// float64 range (1e999). CanonicalJSON is safe for concurrent use.
func CanonicalJSON(raw []byte) (string, error) {
	raw = bytes.TrimSpace(raw)
	if isPlainString(raw) || isLiteral(raw) {
		return string(raw), nil
	}
	if isPlainInteger(raw) {
		return string(integerText(raw)), nil
	}
	b, err := appendCanonicalSlow(nil, raw)
	return string(b), err
}

// AppendCanonicalJSON appends the canonical text of raw (see CanonicalJSON)
// to dst. For the values faultline writes (plain strings and integers) it
// does not allocate beyond growing dst. On error dst is returned unchanged.
func AppendCanonicalJSON(dst, raw []byte) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if isPlainString(raw) || isLiteral(raw) {
		return append(dst, raw...), nil
	}
	if isPlainInteger(raw) {
		return append(dst, integerText(raw)...), nil
	}
	out, err := appendCanonicalSlow(dst, raw)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func appendCanonicalSlow(dst, raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return dst, errors.New("no value (an empty input is not JSON)")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return dst, fmt.Errorf("value %.80q is not valid JSON: %v", raw, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return dst, fmt.Errorf("value %.80q is not a single JSON value", raw)
	}
	return appendCanonical(dst, v)
}

// isPlainString reports whether raw is a JSON string that is its own
// canonical text: printable ASCII without escapes.
func isPlainString(raw []byte) bool {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return false
	}
	for _, c := range raw[1 : len(raw)-1] {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// IsPlainScalar reports whether raw is null, true, false, an integer
// literal without fraction or exponent, or a string of printable ASCII
// without escapes: a value encoding/json reads as the bytes it is written
// in, and that readers may take without decoding it.
func IsPlainScalar(raw []byte) bool {
	return isLiteral(raw) || isPlainString(raw) || isPlainInteger(raw)
}

// isLiteral reports whether raw is null, true or false (its own canonical
// text).
func isLiteral(raw []byte) bool {
	switch string(raw) {
	case "null", "true", "false":
		return true
	}
	return false
}

// isPlainInteger reports whether raw is a JSON integer literal (no
// fraction, no exponent).
func isPlainInteger(raw []byte) bool {
	b := raw
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

var zero = []byte("0")

// integerText is the canonical text of a plain integer literal: itself,
// except that -0 is 0.
func integerText(raw []byte) []byte {
	if len(raw) == 2 && raw[0] == '-' && raw[1] == '0' {
		return zero
	}
	return raw
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
			return dst, err
		}
		return append(dst, s...), nil
	case string:
		return appendJSONStringHTML(dst, x, false), nil
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendCanonical(dst, e); err != nil {
				return dst, err
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
			dst = appendJSONStringHTML(dst, k, false)
			dst = append(dst, ':')
			var err error
			if dst, err = appendCanonical(dst, x[k]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	return dst, fmt.Errorf("unexpected JSON value of type %T", v)
}

// canonicalNumber normalises a JSON number: integral values (whatever their
// spelling) become exact decimal integers, others the shortest float64 text.
func canonicalNumber(s string) (string, error) {
	if isPlainInteger([]byte(s)) {
		return string(integerText([]byte(s))), nil
	}
	f, ferr := strconv.ParseFloat(s, 64)
	if ferr != nil && !errors.Is(ferr, strconv.ErrRange) {
		return "", fmt.Errorf("number %q: %v", s, ferr)
	}
	if math.IsInf(f, 0) {
		return "", fmt.Errorf("number %.80s is beyond the float64 range", s)
	}
	// big.Rat is exact but can be made to allocate without bound by a huge
	// exponent; only use it where the value fits comfortably.
	if ferr == nil && math.Abs(f) < 1e300 {
		if r, ok := new(big.Rat).SetString(s); ok && r.IsInt() {
			return r.Num().String(), nil
		}
	}
	if f == 0 {
		return "0", nil // also -0, and what underflows to it
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64), nil
	}
	return strconv.FormatFloat(f, 'g', -1, 64), nil
}
