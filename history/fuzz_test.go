package history

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadAll feeds the history decoder arbitrary input. It must never
// panic, and:
//
//   - an error names the input and a line inside it (NAME:LINE: ...); a
//     *CutError is only for an unterminated last line, and comes with every
//     complete event;
//   - the events it returns have increasing line numbers and event types;
//   - what it accepts survives a round trip: written back with WriteAll
//     and read again, the header and the events are the same, and
//   - cutting that written history inside its last line is a *CutError
//     naming that line, with every other event.
//
// Seeds: the checkers' test histories, and the broken lines below; the
// corpus in testdata/fuzz/FuzzReadAll holds what fuzzing found.
func FuzzReadAll(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("..", "checkers", "testdata", "*.jsonl"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no histories to seed from (%v)", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ev := `{"type":"invoke","process":0,"time":1,"f":"put","key":"a","value":1}`
	for _, s := range []string{
		"",
		"\n\n",
		`{"type":"header","faultline":"x","scenario":"s","seed":3,"start":"2026-01-01T00:00:00Z"}` + "\n" + ev + "\n",
		ev + "\n" + `{"type":"ok","proc`,                    // cut last line
		ev + "\n" + `{"type":"ok","proc` + "\n" + ev + "\n", // a bad line in the middle
		ev, // no final newline
		`{"type":"ok","process":0,"time":1e30}`,
		`{"type":"ok","process":0,"time":1.5}`,
		`{"type":"ok","process":0,"time":"12"}`,
		`{"type":"ok","process":"nemesis","time":-1,"f":"partition","value":{"a":[1,2]},"phase":"start"}`,
		`{"type":"ok","process":"observer","time":0,"key":7,"value":null}`,
		`{"type":"ok","process":"7","time":0,"key":"k\ud800"}`,
		"{\"type\":\"ok\",\"process\":1,\"time\":0,\"key\":\"k\xff\"}",
		`{"type":"ok","process":1,"time":0,"key":1e2}`,
		`{"type":"ok","process":1,"time":0,"key":-0.0}`,
		`{"type":"ok","process":1,"time":0,"error":{"code":5},"extra":[1,{"x":"y"}],"TYPE":"x"}`,
		`{"type":"ok","type":"info","process":1,"time":0}`,
		`{"t\u0079pe":"header"}` + "\n" + ev,
		ev + "\n" + `{"type":"header"}`,
		"{\"type\":\"ok\",\"process\":1,\"time\":0,\"value\":{\r\"a\":1}}",
		"[1]\n",
		"{",
		"\xef\xbb\xbf" + ev,
	} {
		f.Add([]byte(s))
	}
	const name = "fuzz.jsonl"
	f.Fuzz(func(t *testing.T, data []byte) {
		h, evs, err := ReadAll(bytes.NewReader(data), name)
		lines := bytes.Count(data, []byte("\n")) + 1
		last := 0
		for i := range evs {
			e := &evs[i]
			if e.Line <= last || e.Line > lines {
				t.Fatalf("event %d at line %d after line %d (%d lines)", i, e.Line, last, lines)
			}
			last = e.Line
			if !e.Type.Valid() || e.Type == Header {
				t.Fatalf("event %d has type %q", i, e.Type)
			}
		}
		if err != nil {
			var n int
			if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), name+":"), "%d:", &n); !strings.HasPrefix(err.Error(), name+":") || serr != nil || n < 1 || n > lines {
				t.Fatalf("error %q does not name a line of %s (%d lines)", err, name, lines)
			}
			var ce *CutError
			if errors.As(err, &ce) {
				if ce.Line != lines || bytes.HasSuffix(data, []byte("\n")) || ce.Line <= last {
					t.Fatalf("cut %+v: not the unterminated last line (%d lines, last event on %d)", ce, lines, last)
				}
			}
			return
		}

		// The round trip.
		var buf bytes.Buffer
		if err := WriteAll(&buf, h, evs); err != nil {
			t.Fatalf("WriteAll: %v", err)
		}
		written := buf.Bytes()
		h2, evs2, err := ReadAll(bytes.NewReader(written), name)
		if err != nil {
			t.Fatalf("the history written back does not read: %v\n--- input\n%q\n--- written\n%s", err, data, written)
		}
		if a, b := headerJSON(h), headerJSON(h2); a != b {
			t.Fatalf("header %s read back as %s", a, b)
		}
		if len(evs2) != len(evs) {
			t.Fatalf("%d events read back as %d", len(evs), len(evs2))
		}
		for i := range evs {
			a, b := evs[i].AppendJSON(nil), evs2[i].AppendJSON(nil)
			if !bytes.Equal(a, b) {
				t.Fatalf("event %d read back differently:\n%s\n%s", i, a, b)
			}
		}

		// A cut inside the last line of what was written.
		if len(evs) == 0 {
			return
		}
		body := written[:len(written)-1]
		start := bytes.LastIndexByte(body, '\n') + 1
		cut := written[:start+(len(body)-start)/2+1] // at least '{', not the whole line
		_, evs3, err := ReadAll(bytes.NewReader(cut), name)
		var ce *CutError
		wantLine := bytes.Count(written, []byte("\n"))
		if !errors.As(err, &ce) || ce.Line != wantLine || ce.Bytes != len(cut)-start || len(evs3) != len(evs)-1 {
			t.Fatalf("cut inside the last line: %d events, err %v; want a cut at line %d and %d events\n%q", len(evs3), err, wantLine, len(evs)-1, cut)
		}
	})
}

func headerJSON(h *HeaderLine) string {
	if h == nil {
		return "null"
	}
	hh := *h
	hh.Type = Header // WriteAll sets it
	b, _ := json.Marshal(hh)
	return string(b)
}
