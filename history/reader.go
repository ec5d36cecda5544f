package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// LineReader reads the lines of a history in JSON Lines form, applying the
// rules every reader of a history shares: blank lines are skipped, a line
// that is not a JSON object is an error, and a header line (type "header")
// is taken aside, and allowed only as the first line. It does not decode
// events: the Decoder does, and so can a faster reader of its own (the
// report's). Errors name the file and the line.
//
// A last line that is cut short, as a crash of the writer mid-line leaves
// it (no newline after it, and not valid JSON), is reported as a
// *CutError: every line before it is complete, and a reader may judge those
// (faultline check does). The same line in the middle of the input, or
// ended by a newline, is an ordinary error.
type LineReader struct {
	sc           *bufio.Scanner
	name         string
	line         int
	events       int
	header       *HeaderLine
	unterminated bool  // the line just scanned had no newline after it
	consumed     int64 // bytes of the input scanned
}

// NewLineReader returns a line reader of r; name is used in error messages
// (a file path, or "-"). Lines may be up to 64 MiB long.
func NewLineReader(r io.Reader, name string) *LineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	l := &LineReader{sc: sc, name: name}
	sc.Split(l.split)
	return l
}

// split is bufio.ScanLines that also notes whether the line had a newline
// after it (only the last line of the input can lack one).
func (l *LineReader) split(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		l.unterminated = false
		l.consumed += int64(i + 1)
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		l.unterminated = true
		l.consumed += int64(len(data))
		return len(data), data, nil
	}
	return 0, nil, nil
}

// CutError reports that the last line of a history is cut short: it has no
// newline after it and is not valid JSON, which is what a writer killed
// mid-line (a crash, SIGKILL) leaves behind. Every line before it is
// complete: ReadAll and ReadFile return their events along with this error,
// and a caller that wants to judge what was recorded (faultline check) may
// use them, saying that the history was cut short at Line.
type CutError struct {
	File  string // as named to the reader
	Line  int    // the cut line (1-based, a header line counted); the lines before it are complete
	Bytes int    // how many bytes of the cut line there are
}

func (e *CutError) Error() string {
	return fmt.Sprintf("%s:%d: the history is cut short: its last line (%d bytes, no newline) is not a complete JSON object, as when the writer stopped mid-line (a crash); the %d lines before it are complete",
		e.File, e.Line, e.Bytes, e.Line-1)
}

var headerType = []byte(`"header"`)

// Next returns the next line that is not blank and not the header,
// trimmed; the bytes are valid until the next call. It returns io.EOF at
// the end.
func (l *LineReader) Next() ([]byte, error) {
	for l.sc.Scan() {
		l.line++
		b := bytes.TrimSpace(l.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if l.unterminated && b[0] == '{' && !json.Valid(b) {
			return nil, &CutError{File: l.name, Line: l.line, Bytes: len(l.sc.Bytes())}
		}
		if b[0] != '{' {
			return nil, l.Errorf("not a JSON object (a history has one JSON object per line)")
		}
		// A cheap test first, as most lines are not the header: its type
		// is spelled "header" (or, on the first line, with escapes; a
		// later one is refused by CheckType).
		first := l.events == 0 && l.header == nil
		if bytes.Contains(b, headerType) || first && bytes.IndexByte(b, '\\') >= 0 {
			var probe struct {
				Type Type `json:"type"`
			}
			if json.Unmarshal(b, &probe) == nil && probe.Type == Header {
				if l.events > 0 || l.header != nil {
					return nil, l.Errorf("a header line may only be the first line")
				}
				var h HeaderLine
				if err := json.Unmarshal(b, &h); err != nil {
					return nil, l.Errorf("header: %v", err)
				}
				l.header = &h
				continue
			}
		}
		l.events++
		return b, nil
	}
	if err := l.sc.Err(); err != nil {
		l.line++
		return nil, l.Errorf("%v", err)
	}
	return nil, io.EOF
}

// Header returns the header line, or nil if none has been read.
func (l *LineReader) Header() *HeaderLine { return l.header }

// Line returns the number (1-based) of the most recently read line.
func (l *LineReader) Line() int { return l.line }

// Errorf returns an error naming the file and the current line.
func (l *LineReader) Errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", l.name, l.line, fmt.Sprintf(format, args...))
}

// CheckType returns an error naming the line unless t is an event type
// (invoke, ok, fail or info).
func (l *LineReader) CheckType(t Type) error {
	if t == Header {
		return l.Errorf("a header line may only be the first line")
	}
	if !t.Valid() {
		return l.Errorf("field \"type\": %q is not one of invoke, ok, fail, info", t)
	}
	return nil
}

// Decoder reads a history in JSON Lines form, one event per line (the rules
// of LineReader). The optional header line is returned by Header.
//
// Events' strings may be shared with other events it decoded, and their
// Values (and Extra values) may be carved out of one shared block: a caller
// that keeps one event keeps up to 32 KiB of values alive with it. Both are
// safe to append to (an append copies); a caller must not write into a
// Value's bytes.
type Decoder struct {
	lr     *LineReader
	fast   *fastDecoder
	peeked *Event
	err    error
}

// NewDecoder returns a decoder reading from r; name is used in error messages
// (a file path, or "-").
func NewDecoder(r io.Reader, name string) *Decoder {
	d := &Decoder{lr: NewLineReader(r, name), fast: newFastDecoder()}
	// Read ahead to find the header, if any.
	ev, err := d.next()
	if err != nil {
		d.err = err
	} else {
		d.peeked = ev
	}
	return d
}

// Header returns the header line, or nil if the history has none.
func (d *Decoder) Header() *HeaderLine { return d.lr.Header() }

// Next returns the next event, or io.EOF at the end. Errors name the file
// and line.
func (d *Decoder) Next() (*Event, error) {
	if d.peeked != nil {
		ev := d.peeked
		d.peeked = nil
		return ev, nil
	}
	if d.err != nil {
		return nil, d.err
	}
	return d.next()
}

func (d *Decoder) next() (*Event, error) {
	ev := new(Event)
	if err := d.decodeLine(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// nextInto is Next decoding into ev (which on an error holds garbage).
func (d *Decoder) nextInto(ev *Event) error {
	if d.peeked != nil {
		*ev = *d.peeked
		d.peeked = nil
		return nil
	}
	if d.err != nil {
		return d.err
	}
	return d.decodeLine(ev)
}

// decodeLine decodes the next line into ev: by the fast decoder when it
// can, else by Event.UnmarshalJSON (whose errors are the ones reported).
func (d *Decoder) decodeLine(ev *Event) error {
	b, err := d.lr.Next()
	if err != nil {
		return err
	}
	if !d.fast.decode(b, ev) {
		if err := ev.UnmarshalJSON(b); err != nil {
			return d.lr.Errorf("%v", err)
		}
	}
	if err := d.lr.CheckType(ev.Type); err != nil {
		return err
	}
	ev.Line = d.lr.Line()
	return nil
}

// Line returns the line number of the most recently read line.
func (d *Decoder) Line() int { return d.lr.Line() }

// ReadAll reads every event from r. On an error it returns the events read
// before it; when the error is a *CutError (the last line is cut short)
// those are all the complete events of the history.
//
// The events share strings and value blocks as the Decoder's do.
func ReadAll(r io.Reader, name string) (*HeaderLine, []Event, error) {
	return readAll(r, name, sizeHint(r))
}

// readAll is ReadAll of an input of about size bytes (0: unknown). The
// events are decoded in place: into one slice sized from size and the
// length of the first lines, or, when that is unknown or too short, into
// chunks copied once into the slice returned. (Growing one slice by append
// copies a large history's events about five times over, and holds 2.25
// times their size at the last growth.)
func readAll(r io.Reader, name string, size int64) (*HeaderLine, []Event, error) {
	d := NewDecoder(r, name)
	var chunks [][]Event // full ones
	cur := make([]Event, 0, estimateAfter)
	estimated := size <= 0
	n := 0
	var err error
	for {
		if len(cur) == cap(cur) && !estimated {
			// The events to come, from the length of the lines so far
			// (at least 32 bytes a line), and 5% more.
			estimated = true
			if c := d.lr.consumed; c > 0 {
				est := float64(size) / float64(c) * float64(len(cur)) * 1.05
				est = min(est, float64(size/32))
				if int(est) > cap(cur) {
					cur = append(make([]Event, 0, int(est)), cur...)
				}
			}
		}
		if len(cur) == cap(cur) {
			chunks = append(chunks, cur)
			cur = make([]Event, 0, min(2*cap(cur), readChunk))
		}
		cur = cur[:len(cur)+1]
		if err = d.nextInto(&cur[len(cur)-1]); err != nil {
			cur = cur[:len(cur)-1]
			break
		}
		n++
	}
	if err == io.EOF {
		err = nil
	}
	if n == 0 {
		return d.Header(), nil, err
	}
	if len(chunks) == 0 {
		return d.Header(), cur, err
	}
	evs := make([]Event, 0, n)
	for i, c := range chunks {
		evs = append(evs, c...)
		chunks[i] = nil
	}
	evs = append(evs, cur...)
	return d.Header(), evs, err
}

// readChunk is the most events readAll decodes into one chunk (5 MiB);
// estimateAfter is how many events it reads before it estimates how many
// there are.
const (
	readChunk     = 1 << 15
	estimateAfter = 1 << 10
)

// sizeHint returns the size of r if it is a regular file, else 0.
func sizeHint(r io.Reader) int64 {
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return 0
}

// ReadFile reads every event of the history file at path, as ReadAll does
// (a *CutError comes with every complete event).
func ReadFile(path string) (*HeaderLine, []Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return ReadAll(f, path)
}

// maxTimeText bounds how much of a bad time's text an error quotes.
const maxTimeText = 40

// decodeTime decodes an event's "time": nanoseconds, an integer in the int64
// range (about ±292 years), written as a JSON number in any notation (1500,
// 1.5e3, 1500.0) or as a string holding one. A fraction of a nanosecond, or a
// value past the int64 range (1e30), is an error, never a rounded or wrapped
// time. v must be a valid JSON value.
func decodeTime(v json.RawMessage) (int64, error) {
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return n, nil // the common case: a plain integer
	}
	var num json.Number
	if err := json.Unmarshal(v, &num); err != nil {
		return 0, errors.New("want an integer, nanoseconds since the run's start")
	}
	s := string(num)
	if s == "" { // null
		return 0, errors.New("want an integer, nanoseconds since the run's start, not null")
	}
	quoted := s
	if len(quoted) > maxTimeText {
		quoted = quoted[:maxTimeText] + "..."
	}
	n, frac, ok := parseIntegral(s)
	switch {
	case frac:
		return 0, fmt.Errorf("%s is not a whole number of nanoseconds", quoted)
	case !ok:
		return 0, fmt.Errorf("%s nanoseconds is outside the range of a time (an int64: about ±292 years)", quoted)
	}
	return n, nil
}

// parseIntegral returns the exact value of s, a valid JSON number, when it
// is an integer in the int64 range; frac reports a number with a fraction.
// It does not go through float64, so it neither rounds nor wraps.
func parseIntegral(s string) (n int64, frac, ok bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, exp := s, ""
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		mant, exp = s[:i], s[i+1:]
	}
	intPart, fracPart := mant, ""
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		intPart, fracPart = mant[:i], mant[i+1:]
	}
	// The value is digits × 10^scale.
	digits := strings.TrimLeft(intPart+fracPart, "0")
	if digits == "" {
		return 0, false, true // zero, in any notation
	}
	trimmed := strings.TrimRight(digits, "0")
	scale := len(digits) - len(trimmed) - len(fracPart)
	digits = trimmed
	e, expNeg := strings.TrimLeft(strings.TrimLeft(exp, "+-"), "0"), strings.HasPrefix(exp, "-")
	const maxExp = 1 << 30 // beyond any length of digits
	x := maxExp
	if len(e) < 10 {
		x, _ = strconv.Atoi("0" + e)
	}
	if expNeg {
		x = -x
	}
	scale += x
	if scale < 0 {
		return 0, true, false // the last digit, not zero, is below the units
	}
	if len(digits)+scale > 19 {
		return 0, false, false
	}
	text := digits + strings.Repeat("0", scale)
	if neg {
		text = "-" + text
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, false, err == nil
}

// WriteAll writes the header (if not nil) and the events to w as JSON Lines,
// without re-stamping times. It is meant for tools and tests.
func WriteAll(w io.Writer, h *HeaderLine, evs []Event) error {
	bw := bufio.NewWriter(w)
	if h != nil {
		hh := *h
		hh.Type = Header
		b, err := json.Marshal(hh)
		if err != nil {
			return err
		}
		bw.Write(append(b, '\n'))
	}
	var buf []byte
	for i := range evs {
		buf = evs[i].AppendJSON(buf[:0])
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}
