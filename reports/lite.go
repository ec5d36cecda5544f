package reports

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/internal/jsonscan"
)

// The report reads a history once, and a 1,000,000-operation history has
// 2,000,000 lines: decoding each into a history.Event (a map per line) costs
// seconds and gigabytes of garbage. liteEvent is the subset of an event the
// report needs, read field by field with the validating scanner history's
// own fast decoder uses (internal/jsonscan), allocating nothing for the
// common line. A line it cannot read is decoded by history.Event's own
// decoder instead, so the accepted format and the error messages stay
// history's.

type liteEvent struct {
	Type    history.Type
	Process history.Process
	Time    int64
	F       []byte // aliases the line: valid until the next line
	// Key is the key's text as history.Event.Key has it: a string's
	// contents, or a number's canonical text with KeyIsNumber set (the
	// key's identity is history.Key{Text: Key, Number: KeyIsNumber}).
	Key         []byte
	KeyIsNumber bool
	Node        []byte
	Error       []byte
	Phase       []byte
	Value       []byte
}

var errLite = errors.New("not a simple event line")

// liteReader yields the events of a history one line at a time; the
// framing (blank lines, the header, errors naming the line) is history's
// LineReader.
type liteReader struct {
	lr *history.LineReader
}

func newLiteReader(r io.Reader, name string) *liteReader {
	return &liteReader{lr: history.NewLineReader(r, name)}
}

// header returns the header line, or nil if none has been read.
func (lr *liteReader) header() *history.HeaderLine { return lr.lr.Header() }

// next reads the next event into ev; io.EOF at the end.
func (lr *liteReader) next(ev *liteEvent) error {
	b, err := lr.lr.Next()
	if err != nil {
		return err
	}
	*ev = liteEvent{}
	if parseLite(b, ev) != nil {
		// The slow path: history's decoder, for its acceptance and errors.
		var full history.Event
		if err := full.UnmarshalJSON(b); err != nil {
			return lr.lr.Errorf("%v", err)
		}
		*ev = liteEvent{Type: full.Type, Process: full.Process, Time: full.Time, F: []byte(full.F), Key: []byte(full.Key), KeyIsNumber: full.KeyIsNumber,
			Node: []byte(full.Node), Error: []byte(full.Error), Phase: []byte(full.Phase), Value: full.Value}
	}
	return lr.lr.CheckType(ev.Type)
}

// parseLite reads the top-level fields of one JSON object. It returns
// errLite for anything unusual (escapes in keys, odd types), leaving the
// line to the slow path: in particular whatever history's decoder
// refuses or rewrites (a time that is not a plain integer, a number key
// that is not its own canonical text, a string that is not valid UTF-8),
// so that the report accepts, and keys, exactly what history does.
func parseLite(b []byte, ev *liteEvent) error {
	i, end := jsonscan.ObjectStart(b)
	for i >= 0 && !end {
		var key, v []byte
		if key, v, i, end = jsonscan.Member(b, i); i < 0 {
			return errLite
		}
		if bytes.IndexByte(key, '\\') >= 0 {
			return errLite // an escaped name: history's decoder reads it
		}
		var err error
		switch string(key) {
		case "type":
			var s []byte
			s, err = liteString(v)
			ev.Type = history.Type(internType(s))
		case "process":
			err = liteProcess(v, &ev.Process)
		case "time":
			// A plain integer in the int64 range; anything else (1.5e9,
			// 1e30, 1.5, "7") is history's to accept or refuse with its
			// line (never a float that rounds or wraps).
			ev.Time, err = strconv.ParseInt(string(v), 10, 64)
		case "f":
			ev.F, err = liteString(v)
		case "key":
			if len(v) > 0 && v[0] != '"' {
				if string(v) == "null" {
					break
				}
				if !canonicalInteger(v) {
					return errLite // history canonicalizes it (1.0 is 1) or refuses it
				}
				ev.Key, ev.KeyIsNumber = v, true // its own canonical text
				break
			}
			ev.Key, err = liteString(v)
		case "node":
			ev.Node, err = liteString(v)
		case "error":
			if len(v) > 0 && v[0] == '"' {
				ev.Error, err = liteString(v)
			} else if string(v) != "null" {
				ev.Error = v
			}
		case "phase":
			ev.Phase, err = liteString(v)
		case "value":
			ev.Value = v
		}
		if err != nil {
			return errLite
		}
	}
	if i < 0 || !jsonscan.AtEnd(b, i) {
		return errLite
	}
	return nil
}

func internType(s []byte) string {
	switch string(s) {
	case "invoke":
		return "invoke"
	case "ok":
		return "ok"
	case "fail":
		return "fail"
	case "info":
		return "info"
	case "header":
		return "header"
	}
	return string(s)
}

// liteString returns the contents of a JSON string without escapes and
// of valid UTF-8, or errLite: the slow path decodes escapes, and refuses
// a key that is not UTF-8 text (or, for other fields, reads its bad bytes
// as U+FFFD) as history does.
func liteString(v []byte) ([]byte, error) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil, errLite
	}
	s := v[1 : len(v)-1]
	if bytes.IndexByte(s, '\\') >= 0 || !utf8.Valid(s) {
		return nil, errLite
	}
	return s, nil
}

// canonicalInteger reports whether v is a JSON integer literal that is its
// own canonical text (history.CanonicalJSON): an optional minus, then 0 or
// digits without a leading zero; not -0. Such a number key keeps its text.
func canonicalInteger(v []byte) bool {
	d := v
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || (d[0] == '0' && (len(d) > 1 || len(v) > 1)) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func liteProcess(v []byte, p *history.Process) error {
	switch string(v) {
	case `"nemesis"`:
		*p = history.Nemesis
		return nil
	case `"observer"`:
		*p = history.Observer
		return nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n < 0 {
		return errLite
	}
	*p = history.Process(n)
	return nil
}
