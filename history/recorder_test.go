package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestRecorderFlushInterval is the durability contract: an event recorded is
// in the file (write(2) done, readable by another process) within the flush
// interval, without Close, whether the recorder writes to the *os.File
// itself or through a bufio.Writer (as the conductor did when a SIGKILL cut
// history.jsonl at exactly 256 KiB, seconds behind the run).
//
// No assertion is on speed: only that the data arrives before Close (within
// ten intervals, a margin for a loaded machine) and, over several rounds,
// typically within the interval (the median), as documented.
func TestRecorderFlushInterval(t *testing.T) {
	for _, c := range []struct {
		name string
		wrap func(*os.File) io.Writer
	}{
		{"file", func(f *os.File) io.Writer { return f }},
		{"bufio-256KiB", func(f *os.File) io.Writer { return bufio.NewWriterSize(f, 256<<10) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := NewRecorder(c.wrap(f), &HeaderLine{Scenario: "durable", Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.FlushInterval(); got != DefaultFlushInterval || DefaultFlushInterval != 100*time.Millisecond {
				t.Fatalf("flush interval %v (default %v), want 100ms", got, DefaultFlushInterval)
			}
			if b := waitForFile(t, path, []byte(`"scenario":"durable"`), time.Second); b == nil {
				t.Error("the header is not in the file 1s after NewRecorder")
			}
			const rounds = 5
			var lat []time.Duration
			for i := range rounds {
				marker := fmt.Sprintf(`"key":"round-%d"`, i)
				r.Record(Event{Type: Invoke, Process: 1, F: "put", Key: fmt.Sprintf("round-%d", i), Value: json.RawMessage(`1`)})
				start := time.Now()
				if waitForFile(t, path, []byte(marker), 10*DefaultFlushInterval) == nil {
					t.Fatalf("round %d: the event recorded is not in the file after %v (10 flush intervals) without Close", i, 10*DefaultFlushInterval)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			t.Logf("record -> in the file: %v", lat)
			if med := lat[rounds/2]; med > DefaultFlushInterval {
				t.Errorf("median latency %v exceeds the flush interval %v (all: %v)", med, DefaultFlushInterval, lat)
			}
		})
	}
}

// waitForFile polls the file until it contains want, for at most d; it
// returns the file's contents, or nil on a timeout.
func waitForFile(t *testing.T, path string, want []byte, d time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, want) {
			return b
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRecorderBatchesUnderLoad: a burst larger than a batch reaches the
// file before Close too, in order, complete lines only, with the
// back-pressure bound below the batch size (SetMaxBuffer).
func TestRecorderBatchesUnderLoad(t *testing.T) {
	for _, maxBuf := range []int{DefaultMaxBuffer, 4096} {
		t.Run(fmt.Sprint(maxBuf), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.jsonl")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r, err := NewRecorder(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.SetMaxBuffer(maxBuf)
			var wg sync.WaitGroup
			const workers, per = 4, 5000
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						r.Record(Event{Type: Invoke, Process: Process(w), F: "put", Key: fmt.Sprint(i), Value: json.RawMessage(`"some value to make lines longer"`)})
					}
				})
			}
			wg.Wait()
			last := fmt.Sprintf(`"key":"%d"`, per-1)
			b := waitForFile(t, path, []byte(last), 10*DefaultFlushInterval)
			if b == nil {
				t.Fatal("the burst is not in the file before Close")
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			_, evs, err := ReadFile(path)
			if err != nil || len(evs) != workers*per {
				t.Fatalf("read %d events, err %v; want %d", len(evs), err, workers*per)
			}
		})
	}
}

// flushFailWriter accepts writes but fails to flush, as a bufio.Writer over
// a full disk does.
type flushFailWriter struct{ bytes.Buffer }

func (*flushFailWriter) Flush() error { return io.ErrShortWrite }

func TestRecorderFlushError(t *testing.T) {
	r, err := NewRecorder(&flushFailWriter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Record(Event{Type: Invoke})
	if err := r.Close(); err != io.ErrShortWrite {
		t.Fatalf("Close = %v, want the flush error", err)
	}
	if _, err := NewRecorder(&flushFailWriter{}, &HeaderLine{}); err != io.ErrShortWrite {
		t.Fatalf("NewRecorder with a header = %v, want the flush error", err)
	}
}

// BenchmarkRecordFile records to a real file, as a run does (the file passed
// to the recorder as is).
func BenchmarkRecordFile(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "history.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, _ := NewRecorder(f, nil)
	ev := Event{Type: OK, Process: 12, F: "put", Key: "key-17", Value: json.RawMessage(`"w-123456"`), Node: "n2"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Record(ev)
		}
	})
	if err := r.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
