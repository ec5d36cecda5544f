package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// LineReader reads the lines of a history in JSON Lines form, applying the
// rules every reader of a history shares: blank lines are skipped, a line
// that is not a JSON object is an error, and a header line (type "header")
// is taken aside, and allowed only as the first line. It does not decode
// events: the Decoder does, and so can a faster reader of its own (the
// report's). Errors name the file and the line.
type LineReader struct {
	sc     *bufio.Scanner
	name   string
	line   int
	events int
	header *HeaderLine
}

// NewLineReader returns a line reader of r; name is used in error messages
// (a file path, or "-"). Lines may be up to 64 MiB long.
func NewLineReader(r io.Reader, name string) *LineReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	return &LineReader{sc: sc, name: name}
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
type Decoder struct {
	lr     *LineReader
	peeked *Event
	err    error
}

// NewDecoder returns a decoder reading from r; name is used in error messages
// (a file path, or "-").
func NewDecoder(r io.Reader, name string) *Decoder {
	d := &Decoder{lr: NewLineReader(r, name)}
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
	b, err := d.lr.Next()
	if err != nil {
		return nil, err
	}
	ev := new(Event)
	if err := ev.UnmarshalJSON(b); err != nil {
		return nil, d.lr.Errorf("%v", err)
	}
	if err := d.lr.CheckType(ev.Type); err != nil {
		return nil, err
	}
	ev.Line = d.lr.Line()
	return ev, nil
}

// Line returns the line number of the most recently read line.
func (d *Decoder) Line() int { return d.lr.Line() }

// ReadAll reads every event from r.
func ReadAll(r io.Reader, name string) (*HeaderLine, []Event, error) {
	d := NewDecoder(r, name)
	var evs []Event
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return d.Header(), evs, err
		}
		evs = append(evs, *ev)
	}
	return d.Header(), evs, nil
}

// ReadFile reads every event of the history file at path.
func ReadFile(path string) (*HeaderLine, []Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return ReadAll(f, path)
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
