package reports

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

// The fast reader must see exactly what history's decoder sees.
func TestLiteReaderMatchesHistoryDecoder(t *testing.T) {
	dir := t.TempDir()
	genRun(t, dir, genOpts{ops: 3000, hostile: true, verdict: checkers.Invalid})
	b, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Lines other tools write: numeric keys, float times, structured
	// errors, escapes, spaces, fields in another order, blank lines.
	b = append(b, strings.Join([]string{
		`{"process": 3, "type": "invoke", "time": 1.5e9, "f": "read", "key": 17}`,
		`{"type":"ok","process":"3","time":1600000000,"f":"read","key":17,"value":[1,{"a":"}"}]}`,
		``,
		`{"type":"fail","process":4,"time":7,"f":"w\u0072ite","key":"a\"b","error":{"code":5,"msg":"x"}}`,
		`{"type":"info","process":5,"time":8,"error":null,"key":null,"extra":{"nested":[1,2,"]"]}}`,
		`{"type":"info","process":"nemesis","time":9,"f":"part\\ition","phase":"start","value":{"x":"\u003cscript\u003e"}}`,
	}, "\n")...)
	_, want, err := history.ReadAll(bytes.NewReader(b), "h")
	if err != nil {
		t.Fatal(err)
	}
	lr := newLiteReader(bytes.NewReader(b), "h")
	var ev liteEvent
	for i := 0; ; i++ {
		err := lr.next(&ev)
		if err == io.EOF {
			if i != len(want) {
				t.Fatalf("lite reader read %d events, history %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		w := want[i]
		got := history.Event{Type: ev.Type, Process: ev.Process, Time: ev.Time, F: string(ev.F), Key: string(ev.Key), KeyIsNumber: ev.KeyIsNumber, Node: string(ev.Node), Error: string(ev.Error), Phase: string(ev.Phase)}
		w.Value, w.Extra, w.Line = nil, nil, 0
		if got.Type != w.Type || got.Process != w.Process || got.Time != w.Time || got.F != w.F || got.KeyID() != w.KeyID() || got.Node != w.Node || got.Error != w.Error || got.Phase != w.Phase {
			t.Fatalf("event %d:\nlite    %+v\nhistory %+v", i, got, w)
		}
		if !bytes.Equal(bytes.TrimSpace(ev.Value), bytes.TrimSpace(want[i].Value)) {
			t.Fatalf("event %d value: lite %s, history %s", i, ev.Value, want[i].Value)
		}
	}
	if h := lr.header(); h == nil || h.Scenario != "synthetic" {
		t.Errorf("header = %+v", h)
	}
	// Errors name the line, as history's do. Among them, lines that are
	// not JSON only inside a value or after the object, which a scanner
	// that only counts brackets would take.
	for _, bad := range []string{"[1]\n", `{"type":"bogus","process":1,"time":1}` + "\n", `{"type":"ok","process":-1,"time":1}` + "\n", `{"type":"ok",` + "\n",
		`{"type":"ok","process":1,"time":1,"value":{"a":}}` + "\n",
		`{"type":"ok","process":1,"time":1,"value":tru}` + "\n",
		`{"type":"ok","process":1,"time":1,"value":[1,,2]}` + "\n",
		`{"type":"ok","process":1,"time":1,"value":"a` + "\x01" + `b"}` + "\n",
		`{"type":"ok","process":1,"time":1} trailing` + "\n",
	} {
		if _, _, err := history.ReadAll(strings.NewReader(bad), "h"); err == nil {
			t.Fatalf("%q: history's decoder takes it; the case is no test of the lite reader", bad)
		}
		err := newLiteReader(strings.NewReader(bad), "h").next(&ev)
		if err == nil || err == io.EOF || !strings.HasPrefix(err.Error(), "h:1:") {
			t.Errorf("%q: err = %v, want an error naming h:1", bad, err)
		}
	}
}

// liteEvents reads every event of src with the report's reader, and the
// first error.
func liteEvents(src string) ([]liteEvent, error) {
	lr := newLiteReader(strings.NewReader(src), "h.jsonl")
	var out []liteEvent
	for {
		var ev liteEvent
		err := lr.next(&ev)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		ev.Key = append([]byte(nil), ev.Key...) // the line is reused
		out = append(out, ev)
	}
}

// A time that is not a whole number of nanoseconds in the int64 range is
// refused with its line, as history's decoder refuses it: never read as a
// float that wraps (1e30) or rounds (1.5). Other spellings of an integer
// (1.5e3, 2e9) read as history reads them.
func TestLiteTimeAsHistory(t *testing.T) {
	inv := `{"type":"invoke","process":0,"time":0,"f":"get","key":"a"}` + "\n"
	for _, tm := range []string{"1e30", "-1e30", "9223372036854775808", "1.5", `"1e30"`, "null", "true"} {
		src := inv + `{"type":"ok","process":0,"time":` + tm + `,"f":"get","key":"a","value":null}` + "\n"
		_, _, herr := history.ReadAll(strings.NewReader(src), "h.jsonl")
		evs, err := liteEvents(src)
		if err == nil || !strings.HasPrefix(err.Error(), `h.jsonl:2: field "time": `) {
			t.Errorf("time %s: events %+v, err %v; want h.jsonl:2: field \"time\": ...", tm, evs, err)
			continue
		}
		if herr == nil || herr.Error() != err.Error() {
			t.Errorf("time %s: report says %v, history says %v", tm, err, herr)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := scanHistory(filepath.Join(dir, "history.jsonl")); err == nil || !strings.Contains(err.Error(), "history.jsonl:2:") {
			t.Errorf("time %s: scanHistory err %v, want one naming line 2", tm, err)
		}
	}
	for tm, want := range map[string]int64{"1.5e3": 1500, "2e9": 2e9, "9223372036854775807": math.MaxInt64, "-0": 0, `"7"`: 7} {
		evs, err := liteEvents(inv + `{"type":"ok","process":0,"time":` + tm + `,"f":"get","key":"a","value":null}` + "\n")
		if err != nil || len(evs) != 2 || evs[1].Time != want {
			t.Errorf("time %s: events %+v, err %v; want time %d", tm, evs, err, want)
		}
	}
}

// The key table is keyed by history's key identity: the number 1 and the
// string "1" are two keys (two rows), while 1, 1.0 and 1e0 are one key, as
// history.Event.KeyID has them.
func TestLiteKeyIdentity(t *testing.T) {
	var b strings.Builder
	p := 0
	op := func(key string) {
		fmt.Fprintf(&b, `{"type":"invoke","process":%d,"time":%d,"f":"get","key":%s}`+"\n", p, 2*p, key)
		fmt.Fprintf(&b, `{"type":"ok","process":%d,"time":%d,"f":"get","key":%s,"value":null}`+"\n", p, 2*p+1, key)
		p++
	}
	for _, k := range []string{`1`, `"1"`, `1.0`, `1e0`, `"1"`, `-0`, `0`, `"k"`, `12345678901234567890123`} {
		op(k)
	}
	src := b.String()
	_, want, err := history.ReadAll(strings.NewReader(src), "h.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := liteEvents(src)
	if err != nil || len(evs) != len(want) {
		t.Fatalf("%d events, err %v; history has %d", len(evs), err, len(want))
	}
	for i := range evs {
		got := history.Key{Text: string(evs[i].Key), Number: evs[i].KeyIsNumber}
		if got != want[i].KeyID() {
			t.Errorf("event %d: key %v, history %v", i, got, want[i].KeyID())
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scanHistory(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[history.Key]int64{}
	for _, k := range sc.topKeys(100) {
		rows[history.Key{Text: k.Key, Number: k.Number}] = k.Ops
	}
	wantRows := map[history.Key]int64{
		{Text: "1", Number: true}: 3, // 1, 1.0, 1e0
		{Text: "1"}:               2,
		{Text: "0", Number: true}: 2, // -0 and 0
		{Text: "k"}:               1,
		{Text: "12345678901234567890123", Number: true}: 1,
	}
	if sc.keyCount() != len(wantRows) || fmt.Sprint(rows) != fmt.Sprint(wantRows) {
		t.Errorf("key table %v (%d keys), want %v", rows, sc.keyCount(), wantRows)
	}
	// The report shows the number apart from the string.
	html, err := renderHTML(dir, &Results{Scenario: "keys", Verdict: "valid"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<th><code>1</code> <span class="muted">(number)</span></th><td>3</td>`, `<th><code>1</code></th><td>2</td>`} {
		if !bytes.Contains(html, []byte(want)) {
			i := bytes.Index(html, []byte("Busiest keys"))
			t.Errorf("report.html lacks %s:\n%.600s", want, html[max(i, 0):])
		}
	}
}

// A key that is not UTF-8 text (bytes like \xff, or a lone surrogate
// escape) is refused with its line, as history's decoder refuses it,
// rather than merged with other keys; other strings' bad bytes read as
// history reads them (U+FFFD).
func TestLiteKeyNotUTF8(t *testing.T) {
	for _, key := range []string{"\"k\xff\"", "\"k\xfe\"", `"k\ud800"`, "\"\xc3\""} {
		src := `{"type":"invoke","process":0,"time":0,"f":"get","key":` + key + "}\n"
		_, _, herr := history.ReadAll(strings.NewReader(src), "h.jsonl")
		evs, err := liteEvents(src)
		if err == nil || !strings.HasPrefix(err.Error(), `h.jsonl:1: field "key": `) {
			t.Errorf("key %q: events %+v, err %v; want h.jsonl:1: field \"key\": ...", key, evs, err)
			continue
		}
		if herr == nil || herr.Error() != err.Error() {
			t.Errorf("key %q: report says %v, history says %v", key, err, herr)
		}
	}
	src := "{\"type\":\"invoke\",\"process\":0,\"time\":0,\"f\":\"g\xffet\",\"key\":\"k\",\"node\":\"n\xfe\"}\n"
	_, want, err := history.ReadAll(strings.NewReader(src), "h.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	evs, err := liteEvents(src)
	if err != nil || len(evs) != 1 || string(evs[0].F) != want[0].F || string(evs[0].Node) != want[0].Node {
		t.Errorf("events %+v, err %v; history reads f %q node %q", evs, err, want[0].F, want[0].Node)
	}
}
