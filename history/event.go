// Package history defines faultline's history: the events of a run, their
// JSON Lines encoding (history.jsonl), and the concurrent Recorder that stamps
// and streams them to disk.
//
// It is also the one home of the facts derived from a history, which the
// checkers, the reports and the conductor share rather than compute each
// their own way: fault windows (FaultWindows), phases (Phases,
// PhaseMarker), node roles over time (Roles), latency percentiles
// (Percentiles) and canonical JSON values (CanonicalJSON).
//
// Semantics follow Jepsen. A client operation is an "invoke" event followed
// by exactly one completion by the same process: "ok" (took effect, output
// known), "fail" (certainly did not take effect) or "info" (unknown). A
// process whose operation ended "info" never invokes again. Fault events carry
// process "nemesis" and observer events process "observer"; both use type
// "info".
//
// This package depends on nothing else in faultline.
package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Type is an event's "type" field.
type Type string

// Event types.
const (
	Invoke Type = "invoke" // a client began an operation
	OK     Type = "ok"     // the operation took effect and its output is known
	Fail   Type = "fail"   // the operation certainly did not take effect
	Info   Type = "info"   // unknown outcome; also every nemesis and observer event
	Header Type = "header" // the first line of a faultline history
)

// Valid reports whether t is one of the event types above.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info, Header:
		return true
	}
	return false
}

// Process identifies who recorded an event. Non-negative values are client
// processes; the two negative constants are the nemesis and the observer and
// are encoded as the JSON strings "nemesis" and "observer".
type Process int

// Special processes.
const (
	Nemesis  Process = -1
	Observer Process = -2
)

// IsClient reports whether p is a client process.
func (p Process) IsClient() bool { return p >= 0 }

// String returns "nemesis", "observer" or the decimal id.
func (p Process) String() string {
	switch p {
	case Nemesis:
		return "nemesis"
	case Observer:
		return "observer"
	}
	return strconv.Itoa(int(p))
}

// MarshalJSON encodes clients as numbers and the special processes as strings.
func (p Process) MarshalJSON() ([]byte, error) {
	return appendProcess(nil, p), nil
}

// UnmarshalJSON accepts a number, "nemesis", "observer", or a numeric string.
func (p *Process) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "nemesis":
			*p = Nemesis
			return nil
		case "observer":
			*p = Observer
			return nil
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("process %q: want a non-negative integer, \"nemesis\" or \"observer\"", s)
		}
		*p = Process(n)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("process %s: want a non-negative integer, \"nemesis\" or \"observer\"", b)
	}
	*p = Process(n)
	return nil
}

func appendProcess(dst []byte, p Process) []byte {
	switch p {
	case Nemesis:
		return append(dst, `"nemesis"`...)
	case Observer:
		return append(dst, `"observer"`...)
	}
	return strconv.AppendInt(dst, int64(p), 10)
}

// Null is the JSON value null, used as the Value of a read of an absent key.
var Null = json.RawMessage("null")

// Event is one line of history.jsonl (other than the header).
//
// Value holds raw JSON: nil means "no value" (the field is omitted), while
// Null means the JSON value null (a read of an absent key). Extra holds any
// further fields (for example "version", "attempt", "intended") and is
// encoded after the fixed ones; keys of Extra that collide with a fixed field
// are ignored on encoding.
type Event struct {
	Type    Type            `json:"type"`
	Process Process         `json:"process"`
	Time    int64           `json:"time"` // nanoseconds since the run's start (monotonic)
	F       string          `json:"f,omitempty"`
	Key     string          `json:"key,omitempty"` // a string key (valid UTF-8), or a number's text: see KeyIsNumber, KeyID
	Value   json.RawMessage `json:"value,omitempty"`
	Node    string          `json:"node,omitempty"`
	Error   string          `json:"error,omitempty"`
	Phase   string          `json:"phase,omitempty"` // nemesis events: "start" or "end"
	Extra   map[string]json.RawMessage
	// Line is the event's line in the file it was read from (1-based, a
	// header line counted), set by the Decoder; 0 for an event that was
	// not read from a file. It is not encoded.
	Line int `json:"-"`
	// KeyIsNumber records that the key was a JSON number (histories of
	// other tools use integer keys): Key holds its canonical text
	// (CanonicalJSON: 1, 1.0 and 1e0 are all "1") and the key is encoded
	// back as a number. The number 1 and the string "1" are different
	// keys (KeyID).
	KeyIsNumber bool `json:"-"`
}

// Key is the identity of a history key: its text and whether it was a JSON
// number. Two events are on the same key exactly when their KeyIDs are
// equal; Key is comparable, so it serves as a map key.
type Key struct {
	Text   string
	Number bool
}

// KeyID returns the identity of e's key. An event without a key has the
// zero Key.
func (e *Event) KeyID() Key { return Key{Text: e.Key, Number: e.KeyIsNumber} }

// String returns the key as JSON writes it, so that keys that differ print
// differently: a number bare (1), a string quoted in Go syntax ("1").
func (k Key) String() string {
	if k.Number {
		return k.Text
	}
	return strconv.Quote(k.Text)
}

// Duration returns Time as a time.Duration since the run's start.
func (e *Event) Duration() time.Duration { return time.Duration(e.Time) }

// Op is what a workload asks a client to do: a function, a key and an
// argument (the value to put, or {"from":X,"to":Y} for a cas).
type Op struct {
	F     string
	Key   string
	Value json.RawMessage
}

// Outcome is what a client reports for one Op. Type is OK, Fail or Info; a
// client never reports failure any other way. Value is what a read returned
// (Null for an absent key). Node names the node that answered, if known;
// Term is the term (or epoch) under which it answered, where the system
// reports one (0: unknown), recorded as the completion's "term".
type Outcome struct {
	Type  Type
	Value json.RawMessage
	Error string
	Node  string
	Term  uint64
}

// CAS is the argument of a "cas" operation.
type CAS struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
}

var fixedFields = map[string]bool{
	"type": true, "process": true, "time": true, "f": true, "key": true,
	"value": true, "node": true, "error": true, "phase": true,
}

// AppendJSON appends e's JSON encoding (one object, no newline) to dst.
// Values in Value and Extra must be valid JSON; they are compacted, not
// re-validated in depth.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = strconv.AppendQuote(dst, string(e.Type))
	dst = append(dst, `,"process":`...)
	dst = appendProcess(dst, e.Process)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, e.Time, 10)
	dst = appendStringField(dst, "f", e.F)
	if e.KeyIsNumber && isJSONNumber(e.Key) {
		dst = append(dst, `,"key":`...)
		dst = append(dst, e.Key...)
	} else {
		dst = appendStringField(dst, "key", e.Key)
	}
	if e.Value != nil {
		dst = append(dst, `,"value":`...)
		dst = appendRaw(dst, e.Value)
	}
	dst = appendStringField(dst, "node", e.Node)
	dst = appendStringField(dst, "error", e.Error)
	dst = appendStringField(dst, "phase", e.Phase)
	if len(e.Extra) > 0 {
		keys := slices.Sorted(maps.Keys(e.Extra))
		for _, k := range keys {
			if fixedFields[k] {
				continue
			}
			dst = append(dst, ',')
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			dst = appendRaw(dst, e.Extra[k])
		}
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with the same encoding as AppendJSON.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Value != nil && !json.Valid(e.Value) {
		return nil, fmt.Errorf("history: event value is not valid JSON: %q", e.Value)
	}
	return e.AppendJSON(nil), nil
}

// UnmarshalJSON decodes an event; fields other than the fixed ones go to Extra.
func (e *Event) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*e = Event{}
	for k, v := range m {
		var err error
		switch k {
		case "type":
			var s string
			err = json.Unmarshal(v, &s)
			e.Type = Type(s)
		case "process":
			err = e.Process.UnmarshalJSON(v)
		case "time":
			e.Time, err = decodeTime(v)
		case "f":
			err = json.Unmarshal(v, &e.F)
		case "key":
			e.Key, e.KeyIsNumber, err = unmarshalKey(v)
		case "value":
			e.Value = append(json.RawMessage(nil), v...)
		case "node":
			err = json.Unmarshal(v, &e.Node)
		case "error":
			// Other tools write structured errors; keep their text.
			if len(v) > 0 && v[0] == '"' {
				err = json.Unmarshal(v, &e.Error)
			} else if string(v) != "null" {
				e.Error = string(v)
			}
		case "phase":
			err = json.Unmarshal(v, &e.Phase)
		default:
			if e.Extra == nil {
				e.Extra = make(map[string]json.RawMessage)
			}
			e.Extra[k] = append(json.RawMessage(nil), v...)
		}
		if err != nil {
			return fmt.Errorf("field %q: %w", k, err)
		}
	}
	return nil
}

// unmarshalKey accepts a string key or a number (histories from other tools
// often use integer keys); a number is kept as its canonical JSON text and
// reported as a number, so that it stays distinct from the string of the
// same text. A string key must be valid UTF-8, without lone surrogate
// escapes: decoding would replace both with U+FFFD and merge distinct keys
// ("k\xff" and "k\xfe" would both read "k\ufffd").
func unmarshalKey(v json.RawMessage) (key string, number bool, err error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		if err := checkKeyString(v); err != nil {
			return "", false, err
		}
		err := json.Unmarshal(v, &key)
		return key, false, err
	}
	if string(v) == "null" {
		return "", false, nil
	}
	var n json.Number
	if err := json.Unmarshal(v, &n); err != nil {
		return "", false, fmt.Errorf("want a string or a number")
	}
	text, err := CanonicalJSON([]byte(n.String()))
	if err != nil {
		return "", false, err
	}
	return text, true, nil
}

// checkKeyString returns an error if the JSON string literal raw holds
// bytes that are not UTF-8, or a \u escape of a surrogate that is not half
// of a pair.
func checkKeyString(raw []byte) error {
	if !utf8.Valid(raw) {
		return fmt.Errorf("not valid UTF-8 (%q): distinct keys would merge; keys must be UTF-8 text", raw)
	}
	isHex := func(b []byte) (rune, bool) {
		if len(b) < 4 {
			return 0, false
		}
		r, err := strconv.ParseUint(string(b[:4]), 16, 16)
		return rune(r), err == nil
	}
	for i := 1; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' {
			i++ // a two-character escape
			continue
		}
		r, ok := isHex(raw[i+2:])
		if !ok {
			return nil // invalid JSON: json.Unmarshal says so
		}
		i += 5
		if !utf16.IsSurrogate(r) {
			continue
		}
		if r < 0xdc00 && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
			if r2, ok := isHex(raw[i+3:]); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
				i += 6
				continue
			}
		}
		return fmt.Errorf("a lone surrogate escape in %s is not UTF-8 text: distinct keys would merge", raw)
	}
	return nil
}

// isJSONNumber reports whether s is a JSON number literal.
func isJSONNumber(s string) bool {
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return false
	}
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil
}

func appendStringField(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, v)
}

// appendRaw appends raw JSON, compacting it if it contains a newline (a
// history line must be one line).
func appendRaw(dst []byte, raw json.RawMessage) []byte {
	if bytes.IndexByte(raw, '\n') < 0 && bytes.IndexByte(raw, '\r') < 0 {
		return append(dst, raw...)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return appendJSONString(dst, string(raw))
	}
	return append(dst, buf.Bytes()...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping like encoding/json
// (including <, > and & so that histories are safe to embed in HTML).
func appendJSONString(dst []byte, s string) []byte { return appendJSONStringHTML(dst, s, true) }

// appendJSONStringHTML appends s as a JSON string, escaping like
// encoding/json; <, > and & are escaped only when html is true.
func appendJSONStringHTML(dst []byte, s string, html bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x80 {
			if c >= 0x20 && c != '"' && c != '\\' && (!html || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		// Multi-byte: let encoding/json handle invalid UTF-8 and U+2028/9.
		r, size := decodeRune(s[i:])
		if r == 0xFFFD && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			if r == 0xFFFD {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
