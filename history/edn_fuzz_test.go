package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzReadEDN feeds the EDN reader arbitrary input. It must never panic,
// and:
//
//   - an error names the input, a line inside it and a column
//     (NAME:LINE:COL: ...);
//   - the events it returns (also before an error) are on lines of the
//     input, in order, with event types; a client's is a :read, :write or
//     :cas, and every value is JSON;
//   - what it accepts is EDN to DetectFormat, and survives being written
//     as JSON Lines and read back: the same events.
//
// Seeds: the EDN fixtures and the inputs below; the corpus in
// testdata/fuzz/FuzzReadEDN holds what fuzzing found.
func FuzzReadEDN(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "edn", "*.edn"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no EDN histories to seed from (%v)", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"[]",
		"[{:type :ok, :f :read, :value [1 nil], :process 0}]",
		`{:type :info, :f :start, :value #{:a (1 2) {:b nil, 3 true, nil "x"}}, :process :nemesis}`,
		`{:type :ok, :f :cas, :value ["k" ["a" -1.5e3]], :process 7, :time -9, :index 3, :error [:x "y"]}`,
		`{:type :ok, :f :read, :value "\ud83d\ude00\u00e9\n", :process 0}`,
		"{:type :ok, :f :read, :process 0} ; c\n{:type :ok, :f :read, :process 0}",
		"\xef\xbb\xbf{:type :ok :f :read :process 0}",
		`{:type :ok, :f :read, :value 42N, :process 0}`,
		`#jepsen.history.Op{:type :ok}`,
		`{"type":"ok","process":0}`,
		strings.Repeat("[", 80),
		strings.Repeat("{:a ", 40),
	} {
		f.Add([]byte(s))
	}
	const name = "fuzz.edn"
	f.Fuzz(func(t *testing.T, data []byte) {
		evs, err := ReadEDN(bytes.NewReader(data), name)
		lines := bytes.Count(data, []byte("\n")) + 1
		last := 1
		for i := range evs {
			e := &evs[i]
			if e.Line < last || e.Line > lines {
				t.Fatalf("event %d at line %d after line %d (%d lines)", i, e.Line, last, lines)
			}
			last = e.Line
			if !e.Type.Valid() || e.Type == Header {
				t.Fatalf("event %d has type %q", i, e.Type)
			}
			if e.Process.IsClient() && e.F != "read" && e.F != "write" && e.F != "cas" {
				t.Fatalf("event %d: a client's %q", i, e.F)
			}
			if e.Value != nil && !json.Valid(e.Value) {
				t.Fatalf("event %d: value %q is not JSON", i, e.Value)
			}
			if e.KeyIsNumber && !isJSONNumber(e.Key) {
				t.Fatalf("event %d: number key %q", i, e.Key)
			}
		}
		if err != nil {
			var l, c int
			if _, serr := fmt.Sscanf(strings.TrimPrefix(err.Error(), name+":"), "%d:%d:", &l, &c); !strings.HasPrefix(err.Error(), name+":") || serr != nil || l < 1 || l > lines || c < 1 {
				t.Fatalf("error %q does not name a line and column of %s (%d lines)", err, name, lines)
			}
			return
		}
		if len(evs) > 0 && DetectFormat("h", data) != FormatEDN {
			t.Fatalf("read as EDN, detected as %q:\n%q", DetectFormat("h", data), data)
		}
		var buf bytes.Buffer
		if err := WriteAll(&buf, nil, evs); err != nil {
			t.Fatalf("WriteAll: %v", err)
		}
		_, back, err := ReadAll(bytes.NewReader(buf.Bytes()), "back.jsonl")
		if err != nil {
			t.Fatalf("the events written as JSON Lines do not read back: %v\n--- input\n%q\n--- written\n%s", err, data, buf.Bytes())
		}
		if len(back) != len(evs) {
			t.Fatalf("%d events read back as %d", len(evs), len(back))
		}
		for i := range evs {
			if a, b := evs[i].AppendJSON(nil), back[i].AppendJSON(nil); !bytes.Equal(a, b) {
				t.Fatalf("event %d read back differently:\n%s\n%s", i, a, b)
			}
			if evs[i].KeyID() != back[i].KeyID() {
				t.Fatalf("event %d: key %s read back as %s", i, evs[i].KeyID(), back[i].KeyID())
			}
		}
	})
}
