package history

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fastTaken are lines the fast decoder reads (as UnmarshalJSON does).
var fastTaken = []string{
	`{"type":"invoke","process":9,"time":1473,"f":"get","key":"k652"}`,
	`{"type":"ok","process":0,"time":25934,"f":"cas","key":"k316","value":{"from":null,"to":2},"node":"n1"}`,
	`{"type":"info","process":18,"time":74098496,"f":"put","key":"k277","value":304,"error":"timeout"}`,
	`{"type":"info","process":"nemesis","time":5,"f":"partition","value":{"groups":[["n1"],["n2","n3"]]},"phase":"start"}`,
	`{"type":"info","process":"observer","time":5,"f":"roles","value":{"n1":"leader"}}`,
	`{ "type" : "ok" , "process" : 1 , "time" : 2 , "value" : [ 1 , { "a" : "b" } ] , "extra" : true }`, // spaces
	"{\"type\":\"ok\",\"process\":1,\"time\":0,\"value\":{\r\"a\":1}}",
	`{}`,
	`{"type":null,"f":null,"key":null,"node":null,"error":null,"phase":null,"value":null}`,
	`{"type":"ok","process":1,"time":0,"error":{"code":5},"extra":[1,{"x":"y"}],"TYPE":"x"}`, // structured error, extras
	`{"type":"ok","process":1,"time":0,"error":17}`,
	`{"type":"ok","process":1,"time":0,"x":1,"x":2}`, // a repeated extra: the last
	`{"type":"ok","process":1,"time":"12","key":7}`,  // a time as a string, a number key
	`{"type":"ok","process":"7","time":1.5e3,"key":1e2}`,
	`{"type":"ok","process":1,"time":0,"key":-0.0}`,
	`{"type":"ok","process":1234567890123456789,"time":9223372036854775807}`,
}

// fastLeft are lines the fast decoder leaves to UnmarshalJSON: errors,
// escapes, bytes outside printable ASCII in strings it decodes, repeated
// fields, deep nesting.
var fastLeft = []string{
	`{"type":"ok","process":1,"time":123456789012345678901}`,           // past int64: an error
	`{"type":"ok","process":-1,"time":0}`,                              // an error
	`{"type":"ok","process":1,"time":1.5}`,                             // an error
	`{"type":"ok","type":"info","process":1,"time":0}`,                 // repeated fixed field: left to UnmarshalJSON
	`{"type":"ok","process":1,"time":0,"key":"k\ud800"}`,               // lone surrogate: an error
	"{\"type\":\"ok\",\"process\":1,\"time\":0,\"key\":\"k\xff\"}",     // not UTF-8: an error
	`{"type":"ok","process":1,"time":0,"key":"caf\u00e9","f":"g\"et"}`, // escapes
	"{\"type\":\"ok\",\"process\":1,\"time\":0,\"f\":\"caf\xc3\xa9\",\"value\":\"\xff\"}",
	`{"t\u0079pe":"ok"}`,
	`{"type":"ok","process":01,"time":0}`,  // invalid JSON
	`{"type":"ok","process":1,"time":0,}`,  // invalid JSON
	`{"type":"ok","process":1,"time":0} x`, // trailing data
	`{"type":"ok","process":1,"time":0,"value":[1,]}`,
	`{"type":"ok","process":1,"time":0,"value":{"a" 1}}`,
	`{"type":"ok","process":1,"time":0,"value":"\x"}`,
	`{"type":"ok","process":1,"time":0,"value":"\u12"}`,
	`{"type":"ok","process":1,"time":0,"value":-}`,
	`{"type":"ok","process":1,"time":0,"value":1.}`,
	`{"type":"ok","process":1,"time":0,"value":1e}`,
	`{"type":"ok","process":1,"time":0,"value":nul}`,
	`{"type":"ok","process":1,"time":0,"value":tru}`,
	`{"type":"ok","process":1,"time":0,"value":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
	"{\"type\":\"ok\",\"process\":1,\"time\":0,\"value\":\"a\tb\"}", // a control character in a string
	`{"type":"ok",`,
	`{"type"`,
	`{`,
}

// FuzzFastDecode holds the fast decoder to Event.UnmarshalJSON: whatever
// line it accepts, UnmarshalJSON accepts too and decodes to the same event;
// and it accepts the lines faultline writes.
func FuzzFastDecode(f *testing.F) {
	for _, c := range append(fastTaken, fastLeft...) {
		f.Add([]byte(c))
	}
	files, _ := filepath.Glob(filepath.Join("..", "checkers", "testdata", "*.jsonl"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				f.Add(l)
			}
		}
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = bytes.TrimSpace(line)
		var fast Event
		if !newFastDecoder().decode(line, &fast) {
			return
		}
		var slow Event
		if err := slow.UnmarshalJSON(line); err != nil {
			t.Fatalf("fast decoder accepted %q, UnmarshalJSON refuses it: %v", line, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", line, fast, slow)
		}
	})
}

// The fast decoder reads the lines faultline writes, and leaves the
// unusual ones (escapes, repeated fields, errors) to UnmarshalJSON.
func TestFastDecodeTakes(t *testing.T) {
	d := newFastDecoder()
	var e Event
	for _, c := range fastTaken {
		if !d.decode([]byte(c), &e) {
			t.Errorf("fast decoder left %s to UnmarshalJSON", c)
		}
	}
	for _, c := range fastLeft {
		if d.decode([]byte(c), &e) {
			t.Errorf("fast decoder took %s", c)
		}
	}
	// Interned strings and shared blocks are still separate values.
	var a, b Event
	d.decode([]byte(`{"type":"ok","process":1,"time":1,"key":"k","value":[1]}`), &a)
	d.decode([]byte(`{"type":"ok","process":1,"time":1,"key":"k","value":[2]}`), &b)
	a.Value = append(a.Value, 'x')
	if string(b.Value) != "[2]" || string(a.Value) != "[1]x" {
		t.Errorf("values share bytes: %s %s", a.Value, b.Value)
	}
}

// kvHistory is a history of n register operations over 1,000 keys, as
// faultline writes one (an invoke and an ok per operation).
func kvHistory(t testing.TB, n int) []byte {
	t.Helper()
	evs := make([]Event, 0, 2*n)
	for i := range n {
		key := "k" + strconv.Itoa(i*7919%1000)
		inv := Event{Type: Invoke, Process: Process(i % 32), Time: int64(10 * i), F: "get", Key: key}
		ok := inv
		ok.Type, ok.Time, ok.Node = OK, int64(10*i+5), "n"+strconv.Itoa(i%3)
		switch i % 10 {
		case 0, 1, 2:
			inv.F, ok.F = "put", "put"
			inv.Value = json.RawMessage(strconv.Itoa(i))
			ok.Value = inv.Value
		case 3, 4:
			inv.F, ok.F = "cas", "cas"
			inv.Value = json.RawMessage(`{"from":` + strconv.Itoa(i-1) + `,"to":` + strconv.Itoa(i) + `}`)
			ok.Value = inv.Value
		default:
			ok.Value = Null
		}
		evs = append(evs, inv, ok)
	}
	var buf bytes.Buffer
	if err := WriteAll(&buf, &HeaderLine{Faultline: "t", Scenario: "kv", Seed: 1, Start: "2026-01-01T00:00:00Z"}, evs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll gives the same events whatever it is told of the input's size:
// right, too small (its estimate falls short: chunks follow), too large,
// or nothing.
func TestReadAllSized(t *testing.T) {
	data := kvHistory(t, 3000)
	data = append(data, bytes.Repeat([]byte(`{"type":"info","process":"nemesis","time":99999,"f":"partition","value":{"note":"`+strings.Repeat("x", 300)+`"}}`+"\n"), 2000)...)
	_, want, err := readAll(bytes.NewReader(data), "h", 0)
	if err != nil || len(want) != 8000 {
		t.Fatalf("%d events, %v", len(want), err)
	}
	for _, size := range []int64{int64(len(data)), int64(len(data) / 10), int64(len(data) * 10), 1} {
		_, got, err := readAll(bytes.NewReader(data), "h", size)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("size %d: %d events (%v), want the %d read without a size", size, len(got), err, len(want))
		}
	}
	path := filepath.Join(t.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, got, err := ReadFile(path); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ReadFile: %d events (%v), want %d", len(got), err, len(want))
	}
}

// BenchmarkReadFileKV reads a 200,000-operation KV history from a file
// (the path of faultline check), and reports its cost against decoding
// the same lines with Event.UnmarshalJSON alone, measured in the same run
// (metric "x-unmarshal": below 1 is faster; ns/op and the allocations
// count both).
func BenchmarkReadFileKV(b *testing.B) {
	data := kvHistory(b, 200_000)
	path := filepath.Join(b.TempDir(), "history.jsonl")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))[1:]
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var read, slow time.Duration
	for b.Loop() {
		t0 := time.Now()
		_, evs, err := ReadFile(path)
		if err != nil || len(evs) != 400_000 {
			b.Fatal(len(evs), err)
		}
		t1 := time.Now()
		out := make([]Event, len(lines))
		for i, l := range lines {
			if err := out[i].UnmarshalJSON(l); err != nil {
				b.Fatal(err)
			}
		}
		read += t1.Sub(t0)
		slow += time.Since(t1)
	}
	b.ReportMetric(float64(read)/float64(slow), "x-unmarshal")
}
