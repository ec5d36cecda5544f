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

// cutHistory is a history as the recorder writes it: a header and events.
func cutHistory(t testing.TB, n int) []byte {
	t.Helper()
	var evs []Event
	for i := range n {
		evs = append(evs, Event{Type: Invoke, Process: Process(i % 3), Time: int64(1000 * i), F: "put", Key: fmt.Sprint("k", i%2), Value: json.RawMessage(fmt.Sprintf(`{"w":%d,"s":"x\"}y"}`, i))})
	}
	var buf bytes.Buffer
	if err := WriteAll(&buf, &HeaderLine{Faultline: "t", Scenario: "cut", Seed: 7, Start: "2026-01-01T00:00:00Z"}, evs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadCutLastLine: a history whose last line is cut short (a crash
// mid-write) reads as its complete lines plus a *CutError naming the cut
// line and its bytes.
func TestReadCutLastLine(t *testing.T) {
	full := cutHistory(t, 4)
	lines := bytes.SplitAfter(full, []byte("\n")) // header + 4 events, each with its newline
	cut := bytes.Join(lines[:4], nil)
	cut = append(cut, lines[4][:25]...) // line 5 cut after 25 bytes
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	h, evs, err := ReadFile(path)
	var ce *CutError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v (%T), want a *CutError", err, err)
	}
	if ce.File != path || ce.Line != 5 || ce.Bytes != 25 {
		t.Errorf("cut = %+v, want line 5, 25 bytes", ce)
	}
	if !strings.HasPrefix(err.Error(), path+":5: ") || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("message %q should name %s:5 and say it is cut short", err, path)
	}
	if h == nil || h.Seed != 7 || len(evs) != 3 || evs[2].Line != 4 || evs[2].Time != 2000 {
		t.Fatalf("header %+v, events %+v: want the 3 complete events (lines 2-4)", h, evs)
	}
}

// TestReadCutAnywhere cuts a recorded history at every byte: the read
// returns every complete event, and either no error (the cut fell on a line
// boundary, or only a newline is missing) or a *CutError naming the line.
func TestReadCutAnywhere(t *testing.T) {
	full := cutHistory(t, 5)
	_, all, err := ReadAll(bytes.NewReader(full), "h")
	if err != nil {
		t.Fatal(err)
	}
	for k := range len(full) + 1 {
		in := full[:k]
		_, evs, err := ReadAll(bytes.NewReader(in), "h")
		nl := bytes.Count(in, []byte("\n"))
		complete := max(nl-1, 0) // events on complete lines (the header is line 1)
		tail := in[bytes.LastIndexByte(in, '\n')+1:]
		var ce *CutError
		switch {
		case len(tail) == 0 || json.Valid(tail):
			if err != nil && !(nl == 0 && errors.Is(err, ErrNoEvents)) {
				t.Fatalf("cut at %d: err %v", k, err)
			}
			if len(tail) > 0 && nl > 0 {
				complete++ // the last line lacks only its newline
			}
		case !errors.As(err, &ce):
			t.Fatalf("cut at %d (%q): err %v, want a *CutError", k, tail, err)
		case ce.Line != nl+1 || ce.Bytes != len(tail):
			t.Fatalf("cut at %d: %+v, want line %d, %d bytes", k, ce, nl+1, len(tail))
		}
		if len(evs) != complete {
			t.Fatalf("cut at %d: %d events, want %d", k, len(evs), complete)
		}
		for i := range evs {
			if !bytes.Equal(evs[i].AppendJSON(nil), all[i].AppendJSON(nil)) {
				t.Fatalf("cut at %d: event %d differs", k, i)
			}
		}
	}
}

// TestReadBadLinesStayErrors: only an unterminated last line that is not
// JSON is a cut; a bad line in the middle, or a bad last line ended by a
// newline, is an ordinary error naming FILE:LINE.
func TestReadBadLinesStayErrors(t *testing.T) {
	ev := `{"type":"invoke","process":0,"time":1,"f":"get","key":"a"}`
	for _, c := range []struct{ in, want string }{
		{ev + "\n" + `{"type":"ok","proc` + "\n" + ev + "\n", "h:2: unexpected end of JSON input"},
		{ev + "\n" + `{"type":"ok","proc` + "\n", "h:2: unexpected end of JSON input"},
		{ev + "\n" + `{"type":"bogus","process":0,"time":1}`, `h:2: field "type"`},
		{ev + "\n" + `nonsense`, "h:2: not a JSON object"},
	} {
		_, _, err := ReadAll(strings.NewReader(c.in), "h")
		var ce *CutError
		if err == nil || errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: err %v, want an ordinary error %q...", c.in, err, c.want)
		}
	}
	// A complete last line without its newline is a line like any other.
	_, evs, err := ReadAll(strings.NewReader(ev+"\n"+ev), "h")
	if err != nil || len(evs) != 2 {
		t.Errorf("no final newline: %d events, err %v", len(evs), err)
	}
}

// TestReadTimeBounds: a time is an integer number of nanoseconds in the
// int64 range, in any JSON notation; anything else is an error naming its
// line, never a rounded or wrapped time.
func TestReadTimeBounds(t *testing.T) {
	for _, c := range []struct {
		time string
		want int64
		err  string // "" when valid
	}{
		{"1500", 1500, ""},
		{"1.5e3", 1500, ""},
		{"1500.000", 1500, ""},
		{"15E2", 1500, ""},
		{"150000e-2", 1500, ""},
		{`"1500"`, 1500, ""},
		{"0", 0, ""},
		{"-0.0e5", 0, ""},
		{"0e999999999999999999999", 0, ""},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9.223372036854775807e18", 1<<63 - 1, ""},
		{"92233720368547758070e-1", 1<<63 - 1, ""},
		{"-9223372036854775808", -1 << 63, ""},
		{"-5", -5, ""},
		{"1e30", 0, "1e30 nanoseconds is outside the range"},
		{"-1e30", 0, "outside the range"},
		{"9223372036854775808", 0, "outside the range"},
		{"-9223372036854775809", 0, "outside the range"},
		{"1e19", 0, "outside the range"},
		{"1e999999999999999999999", 0, "outside the range"},
		{"1.5", 0, "1.5 is not a whole number of nanoseconds"},
		{"123456789012345678.9", 0, "not a whole number"},
		{"1e-1", 0, "not a whole number"},
		{"1e-99999999999999999999", 0, "not a whole number"},
		{`"1e30"`, 0, "outside the range"},
		{"null", 0, "not null"},
		{`"soon"`, 0, "want an integer"},
		{"true", 0, "want an integer"},
		{"[1]", 0, "want an integer"},
	} {
		in := `{"type":"invoke","process":0,"time":0,"f":"get","key":"a"}` + "\n" +
			`{"type":"ok","process":0,"time":` + c.time + `,"f":"get","key":"a","value":null}` + "\n"
		_, evs, err := ReadAll(strings.NewReader(in), "h.jsonl")
		if c.err == "" {
			if err != nil || len(evs) != 2 || evs[1].Time != c.want {
				t.Errorf("time %s: events %+v, err %v; want time %d", c.time, evs, err, c.want)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), `h.jsonl:2: field "time": `) || !strings.Contains(err.Error(), c.err) {
			t.Errorf("time %s: err %v (events %+v), want h.jsonl:2: field \"time\": ...%s...", c.time, err, evs, c.err)
		}
	}
}

// BenchmarkReadAll decodes a recorded history (the decoder every reader of
// history.jsonl goes through).
func BenchmarkReadAll(b *testing.B) {
	data := cutHistory(b, 10000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ReadAll(bytes.NewReader(data), "h"); err != nil {
			b.Fatal(err)
		}
	}
}
