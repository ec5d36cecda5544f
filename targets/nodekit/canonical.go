package nodekit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// canonical returns a canonical encoding of the JSON value raw, so that
// values equal as JSON are equal as bytes (the encoding raftkv has always
// stored):
//
//   - insignificant whitespace is removed;
//   - object keys are sorted (duplicate keys: the last one wins);
//   - a number with an integral value in the int64 range is written as a
//     plain integer (1, 1.0 and 1e0 are all "1"); any other number is
//     written in Go's shortest float64 form ('g' format);
//   - strings are re-encoded without HTML escaping.
//
// TODO(issue 8): this is an interim copy of raftkv's canonicalJSON; both
// give way to the shared canonical-value function in package history once
// it lands (one home for canonical values).
func canonical(raw []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	v, err := canonicalNumbers(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

func canonicalNumbers(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		return canonicalNumber(x)
	case []any:
		for i := range x {
			c, err := canonicalNumbers(x[i])
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
	case map[string]any:
		for k := range x {
			c, err := canonicalNumbers(x[k])
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
	}
	return v, nil
}

func canonicalNumber(n json.Number) (json.Number, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return json.Number(strconv.FormatInt(i, 10)), nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "", fmt.Errorf("number %s: %w", n, err)
	}
	if math.IsInf(f, 0) {
		return "", fmt.Errorf("number %s is out of the float64 range", n)
	}
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return json.Number(strconv.FormatInt(int64(f), 10)), nil
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
}
