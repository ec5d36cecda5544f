package history

import (
	"encoding/json"

	"github.com/faultline/faultline/internal/jsonscan"
)

// A history of a million operations has two million lines; decoding each
// through a map (Event.UnmarshalJSON) costs most of `faultline check`'s time
// and gigabytes of garbage. fastDecoder reads the common line (a flat
// object whose field names and string fields are printable ASCII without
// escapes) with a validating scanner (internal/jsonscan, which the
// report's reader shares), and gives up on anything else, which
// Event.UnmarshalJSON then decodes: so the accepted format, the events and
// the error messages are UnmarshalJSON's (FuzzFastDecode holds it to that).
//
// Strings of the fields that repeat (type, f, key, node, error, phase) are
// interned, and Values and Extra values are carved out of shared blocks
// (each with its capacity cut to its length, so an append copies). A
// fastDecoder is not safe for concurrent use.
type fastDecoder struct {
	strs  map[string]string // interned field values
	block []byte            // the current block values are copied into
}

// maxInterned bounds the strings a fastDecoder interns: past it (a history
// whose keys are all distinct), new strings are allocated one by one.
const maxInterned = 1 << 16

// valueBlock is the size of the blocks values are copied into; a value
// longer than an eighth of it gets its own allocation.
const valueBlock = 32 << 10

func newFastDecoder() *fastDecoder {
	return &fastDecoder{strs: make(map[string]string)}
}

// Fixed fields, as bits of the set of fields seen on a line.
const (
	fType = 1 << iota
	fProcess
	fTime
	fF
	fKey
	fValue
	fNode
	fError
	fPhase
)

// decode reads the trimmed line b into e and reports whether it could; if
// not, e holds garbage and the caller decodes b with e.UnmarshalJSON. It
// sets what UnmarshalJSON sets (not Line).
func (d *fastDecoder) decode(b []byte, e *Event) bool {
	*e = Event{}
	i, end := jsonscan.ObjectStart(b)
	seen := 0
	for i >= 0 && !end {
		var name, v []byte
		if name, v, i, end = jsonscan.Member(b, i); i < 0 {
			return false
		}
		if !plainText(name) {
			return false
		}
		bit, ok := 0, true
		switch string(name) {
		case "type":
			bit = fType
			var t string
			ok = d.strInto(v, &t)
			e.Type = Type(t)
		case "process":
			bit = fProcess
			if n, plain := plainUint(v); plain {
				e.Process = Process(n)
			} else {
				ok = e.Process.UnmarshalJSON(v) == nil
			}
		case "time":
			bit = fTime
			var err error
			if n, plain := plainUint(v); plain {
				e.Time = n
			} else {
				e.Time, err = decodeTime(v)
				ok = err == nil
			}
		case "f":
			bit = fF
			ok = d.strInto(v, &e.F)
		case "key":
			bit = fKey
			if v[0] == '"' {
				ok = d.strInto(v, &e.Key)
			} else {
				var err error
				e.Key, e.KeyIsNumber, err = unmarshalKey(v)
				ok = err == nil
			}
		case "value":
			bit = fValue
			e.Value = d.copy(v)
		case "node":
			bit = fNode
			ok = d.strInto(v, &e.Node)
		case "error":
			bit = fError
			if v[0] == '"' {
				ok = d.strInto(v, &e.Error)
			} else if string(v) != "null" {
				e.Error = string(v) // a structured error: its text
			}
		case "phase":
			bit = fPhase
			ok = d.strInto(v, &e.Phase)
		default:
			if e.Extra == nil {
				e.Extra = make(map[string]json.RawMessage)
			}
			e.Extra[string(name)] = d.copy(v) // a repeated name: the last wins, as in a map
		}
		if !ok || seen&bit != 0 {
			// UnmarshalJSON says what is wrong; of a repeated fixed
			// field it keeps the last.
			return false
		}
		seen |= bit
	}
	return i >= 0 && jsonscan.AtEnd(b, i)
}

// strInto sets *dst to the contents of v, interned, when v is null (""
// then, as encoding/json leaves a string it decodes null into) or a
// string of printable ASCII without escapes; it reports false for anything
// else.
func (d *fastDecoder) strInto(v []byte, dst *string) bool {
	if string(v) == "null" {
		*dst = ""
		return true
	}
	// v is one whole JSON string (jsonscan.Member validated it).
	if v[0] != '"' || !plainText(v[1:len(v)-1]) {
		return false
	}
	c := v[1 : len(v)-1]
	switch string(c) { // the event types: no lookup
	case "invoke":
		*dst = string(Invoke)
	case "ok":
		*dst = string(OK)
	case "fail":
		*dst = string(Fail)
	case "info":
		*dst = string(Info)
	default:
		s, ok := d.strs[string(c)]
		if !ok {
			s = string(c)
			if len(d.strs) < maxInterned {
				d.strs[s] = s
			}
		}
		*dst = s
	}
	return true
}

// copy returns a copy of the raw value v, carved out of the current block.
func (d *fastDecoder) copy(v []byte) json.RawMessage {
	if len(v) > valueBlock/8 {
		return append(json.RawMessage(nil), v...)
	}
	if cap(d.block)-len(d.block) < len(v) {
		d.block = make([]byte, 0, valueBlock)
	}
	n := len(d.block)
	d.block = append(d.block, v...)
	return json.RawMessage(d.block[n:len(d.block):len(d.block)])
}

// plainUint returns the value of v when it is a plain non-negative integer
// literal of at most 18 digits (no sign, no leading zero).
func plainUint(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 || (v[0] == '0' && len(v) > 1) {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// plainText reports whether s (a string's text between its quotes) is only
// printable ASCII without escapes: what decodes to itself.
func plainText(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
