package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Decoder reads a history in JSON Lines form, one event per line. Blank
// lines are skipped. The optional header line is returned by Header.
type Decoder struct {
	sc     *bufio.Scanner
	name   string
	line   int
	events int
	header *HeaderLine
	peeked *Event
	err    error
}

// NewDecoder returns a decoder reading from r; name is used in error messages
// (a file path, or "-").
func NewDecoder(r io.Reader, name string) *Decoder {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	d := &Decoder{sc: sc, name: name}
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
func (d *Decoder) Header() *HeaderLine { return d.header }

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
	for d.sc.Scan() {
		d.line++
		b := bytes.TrimSpace(d.sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if b[0] != '{' {
			return nil, fmt.Errorf("%s:%d: not a JSON object (a history has one JSON object per line)", d.name, d.line)
		}
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", d.name, d.line, err)
		}
		if probe.Type == string(Header) {
			if d.events > 0 || d.header != nil {
				return nil, fmt.Errorf("%s:%d: a header line may only be the first line", d.name, d.line)
			}
			var h HeaderLine
			if err := json.Unmarshal(b, &h); err != nil {
				return nil, fmt.Errorf("%s:%d: header: %v", d.name, d.line, err)
			}
			d.header = &h
			continue
		}
		ev := new(Event)
		if err := ev.UnmarshalJSON(b); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", d.name, d.line, err)
		}
		if !ev.Type.Valid() {
			return nil, fmt.Errorf("%s:%d: field \"type\": %q is not one of invoke, ok, fail, info", d.name, d.line, ev.Type)
		}
		d.events++
		return ev, nil
	}
	if err := d.sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %v", d.name, d.line+1, err)
	}
	return nil, io.EOF
}

// Line returns the line number of the most recently read line.
func (d *Decoder) Line() int { return d.line }

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
