package history

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	evs := []Event{
		{Type: Invoke, Process: 3, Time: 10, F: "get", Key: "k1"},
		{Type: OK, Process: 3, Time: 20, F: "get", Key: "k1", Value: Null, Node: "n1"},
		{Type: Invoke, Process: 4, Time: 30, F: "cas", Key: "k<2>", Value: json.RawMessage(`{"from":1,"to":"x\"y"}`)},
		{Type: Fail, Process: 4, Time: 40, F: "cas", Key: "k<2>", Value: json.RawMessage(`{"from":1,"to":"x\"y"}`), Error: "mismatch"},
		{Type: Info, Process: Nemesis, Time: 50, F: "partition", Value: json.RawMessage(`{"nodes":["n1"]}`), Phase: "start"},
		{Type: Info, Process: Observer, Time: 60, F: "status", Node: "n2", Value: json.RawMessage(`{"role":"leader","term":7}`),
			Extra: map[string]json.RawMessage{"attempt": json.RawMessage(`2`), "type": json.RawMessage(`"ignored"`)}},
	}
	var buf bytes.Buffer
	h := &HeaderLine{Faultline: "test", Scenario: "s", Seed: 42, Start: "2026-01-01T00:00:00Z"}
	if err := WriteAll(&buf, h, evs); err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("line %d is not valid JSON: %s", i+1, line)
		}
	}
	if strings.Contains(buf.String(), "<") {
		t.Errorf("< should be escaped in the encoding: %s", buf.String())
	}
	gh, got, err := ReadAll(&buf, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if gh == nil || gh.Seed != 42 || gh.Scenario != "s" {
		t.Fatalf("header = %+v", gh)
	}
	if len(got) != len(evs) {
		t.Fatalf("got %d events, want %d", len(got), len(evs))
	}
	for i := range evs {
		want := evs[i]
		delete(want.Extra, "type")
		if len(want.Extra) == 0 {
			want.Extra = nil
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got[i])
		if !bytes.Equal(a, b) {
			t.Errorf("event %d:\n got %s\nwant %s", i, b, a)
		}
	}
	if got[1].Value == nil || string(got[1].Value) != "null" {
		t.Errorf("null value lost: %q", got[1].Value)
	}
	if got[0].Value != nil {
		t.Errorf("absent value became %q", got[0].Value)
	}
}

func TestDecoderErrorsNameLine(t *testing.T) {
	in := "{\"type\":\"invoke\",\"process\":0,\"time\":1,\"f\":\"get\",\"key\":\"a\"}\n\n{\"type\":\"bogus\",\"process\":0,\"time\":2}\n"
	_, _, err := ReadAll(strings.NewReader(in), "h.jsonl")
	if err == nil || !strings.Contains(err.Error(), "h.jsonl:3") || !strings.Contains(err.Error(), "type") {
		t.Fatalf("err = %v, want one naming h.jsonl:3 and the type field", err)
	}
	_, _, err = ReadAll(strings.NewReader(`{"type":"ok","process":"x","time":1}`), "h")
	if err == nil || !strings.Contains(err.Error(), "process") {
		t.Fatalf("err = %v, want one naming process", err)
	}
}

func TestForeignHistory(t *testing.T) {
	// Integer keys and no header, as other tools write them.
	in := `{"type":"invoke","process":0,"time":1.5e3,"f":"write","key":7,"value":3}`
	h, evs, err := ReadAll(strings.NewReader(in), "x")
	if err != nil || h != nil || len(evs) != 1 {
		t.Fatalf("h=%v evs=%v err=%v", h, evs, err)
	}
	if evs[0].Key != "7" || evs[0].Time != 1500 {
		t.Fatalf("got %+v", evs[0])
	}
}

func TestRecorderConcurrentOrder(t *testing.T) {
	var buf bytes.Buffer
	r, err := NewRecorder(&buf, &HeaderLine{Scenario: "x", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.SetMaxBuffer(4096) // exercise back-pressure
	var seen int64
	r.OnRecord(func(Event) { seen++ })
	var wg sync.WaitGroup
	const workers, per = 8, 2000
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				r.Record(Event{Type: Invoke, Process: Process(w), F: "put", Key: fmt.Sprint(i), Value: json.RawMessage(fmt.Sprint(i))})
			}
		}(w)
	}
	wg.Wait()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if seen != workers*per || r.Count() != workers*per {
		t.Fatalf("listener saw %d, count %d", seen, r.Count())
	}
	d := NewDecoder(&buf, "mem")
	var last int64 = -1
	n := 0
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Time < last {
			t.Fatalf("time went backwards at event %d: %d < %d", n, ev.Time, last)
		}
		last = ev.Time
		n++
	}
	if n != workers*per {
		t.Fatalf("read %d events, want %d", n, workers*per)
	}
	if d.Header() == nil {
		t.Fatal("header missing")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestRecorderWriteError(t *testing.T) {
	r, err := NewRecorder(failWriter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Record(Event{Type: Invoke})
	if err := r.Close(); err == nil {
		t.Fatal("Close should report the write error")
	}
}

func BenchmarkRecord(b *testing.B) {
	r, _ := NewRecorder(io.Discard, nil)
	ev := Event{Type: OK, Process: 12, F: "put", Key: "key-17", Value: json.RawMessage(`"w-123456"`), Node: "n2"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(ev)
		}
	})
	r.Close()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncodeBaseline is the baseline for BenchmarkRecord: the same
// event encoded with encoding/json and discarded, on the same number of
// goroutines (RunParallel), with no ordering, stamping or writer.
func BenchmarkEncodeBaseline(b *testing.B) {
	ev := Event{Type: OK, Process: 12, F: "put", Key: "key-17", Value: json.RawMessage(`"w-123456"`), Node: "n2"}
	type plain struct {
		Type    string          `json:"type"`
		Process int             `json:"process"`
		Time    int64           `json:"time"`
		F       string          `json:"f"`
		Key     string          `json:"key"`
		Value   json.RawMessage `json:"value"`
		Node    string          `json:"node"`
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i int64
		for pb.Next() {
			i++
			json.Marshal(plain{string(ev.Type), int(ev.Process), i, ev.F, ev.Key, ev.Value, ev.Node})
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func TestLineReader(t *testing.T) {
	in := "\n" + `{"t\u0079pe":"head\u0065r","faultline":"x","seed":3}` + "\n\n" +
		`{"type":"invoke","process":0,"time":1,"f":"get","key":"header"}` + "\n" +
		`  {"type":"ok","process":0,"time":2,"error":"Get \"header\""}  ` + "\n"
	lr := NewLineReader(strings.NewReader(in), "h")
	var lines []string
	for {
		b, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%d:%s", lr.Line(), b[:13]))
	}
	if h := lr.Header(); h == nil || h.Seed != 3 || len(lines) != 2 || lines[0] != `4:{"type":"invo` || lines[1] != `5:{"type":"ok",` {
		t.Fatalf("header %+v, lines %q", lr.Header(), lines)
	}
	for _, c := range []struct{ in, want string }{
		{"[1]\n", "h:1: not a JSON object"},
		{"{}\n\n" + `{"type":"header"}` + "\n", "h:3: a header line may only be the first line"},
		{`{"type":"header"}` + "\n" + `{"type":"header"}` + "\n", "h:2: a header line may only be the first line"},
	} {
		lr := NewLineReader(strings.NewReader(c.in), "h")
		var err error
		for err == nil {
			_, err = lr.Next()
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: err %v, want %q", c.in, err, c.want)
		}
	}
	lr = NewLineReader(strings.NewReader("{}\n"), "h")
	lr.Next()
	if err := lr.CheckType(Header); err == nil || !strings.Contains(err.Error(), "h:1: a header line") {
		t.Errorf("CheckType(header) = %v", err)
	}
	if err := lr.CheckType("bogus"); err == nil || !strings.Contains(err.Error(), `"type"`) {
		t.Errorf("CheckType(bogus) = %v", err)
	}
	if err := lr.CheckType(Info); err != nil {
		t.Errorf("CheckType(info) = %v", err)
	}
}
