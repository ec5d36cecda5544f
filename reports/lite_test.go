package reports

import (
	"bytes"
	"io"
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
		got := history.Event{Type: ev.Type, Process: ev.Process, Time: ev.Time, F: string(ev.F), Key: string(ev.Key), Node: string(ev.Node), Error: string(ev.Error), Phase: string(ev.Phase)}
		w.Value, w.Extra = nil, nil
		if got.Type != w.Type || got.Process != w.Process || got.Time != w.Time || got.F != w.F || got.Key != w.Key || got.Node != w.Node || got.Error != w.Error || got.Phase != w.Phase {
			t.Fatalf("event %d:\nlite    %+v\nhistory %+v", i, got, w)
		}
		if !bytes.Equal(bytes.TrimSpace(ev.Value), bytes.TrimSpace(want[i].Value)) {
			t.Fatalf("event %d value: lite %s, history %s", i, ev.Value, want[i].Value)
		}
	}
	if h := lr.header(); h == nil || h.Scenario != "synthetic" {
		t.Errorf("header = %+v", h)
	}
	// Errors name the line, as history's do.
	for _, bad := range []string{"[1]\n", `{"type":"bogus","process":1,"time":1}` + "\n", `{"type":"ok","process":-1,"time":1}` + "\n", `{"type":"ok",` + "\n"} {
		err := newLiteReader(strings.NewReader(bad), "h").next(&ev)
		if err == nil || err == io.EOF || !strings.HasPrefix(err.Error(), "h:1:") {
			t.Errorf("%q: err = %v, want an error naming h:1", bad, err)
		}
	}
}
