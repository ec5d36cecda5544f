package lwwkv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func openT(t *testing.T, dir, self string) *store {
	t.Helper()
	s, err := openStore(dir, self, false, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close() })
	return s
}

// TestStoreRestart: what a node acknowledged, and its write counter,
// survive a restart: its next write follows its old ones.
func TestStoreRestart(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, "n1")
	if _, err := s.put("k", json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cas("k", json.RawMessage(`1`), json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.cas("k", json.RawMessage(`1`), json.RawMessage(`3`)); !errors.Is(err, errMismatch) {
		t.Fatalf("cas from a value the key does not hold: %v, want mismatch", err)
	}
	if _, err := s.cas("absent", json.RawMessage(`null`), json.RawMessage(`"x"`)); err != nil {
		t.Fatalf("cas from null on an absent key: %v", err)
	}
	remote := ver(`"r"`, 1, "n2", 7, vclock{"n2": 7})
	if changed, err := s.mergeRemote("other", remote); err != nil || !changed {
		t.Fatalf("merge a remote version: %v %v", changed, err)
	}
	old, _ := s.version("k")
	s.close()

	s = openT(t, dir, "n1")
	for k, want := range map[string]string{"k": "2", "absent": `"x"`, "other": `"r"`, "none": ""} {
		if got := string(s.get(k)); got != want {
			t.Errorf("after restart %s = %q, want %q", k, got, want)
		}
	}
	if s.counter != 3 {
		t.Errorf("counter after restart %d, want 3 (three local writes)", s.counter)
	}
	v, err := s.put("k", json.RawMessage(`4`))
	if err != nil {
		t.Fatal(err)
	}
	if v.Seq != 4 || compare(v.Clock, old.Clock) != after {
		t.Errorf("write after restart: seq %d clock %v, want seq 4 and a clock after %v", v.Seq, v.Clock, old.Clock)
	}
}

// TestStoreCutShort: a last record without its newline (a kill during the
// write) is dropped and cut off, so later records append cleanly; a
// damaged record before the end is an error naming the line.
func TestStoreCutShort(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, "n1")
	s.put("a", json.RawMessage(`1`))
	s.put("b", json.RawMessage(`2`))
	s.close()
	path := filepath.Join(dir, LogFile)
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	cut := append(append([]byte{}, lines[0]...), lines[1][:len(lines[1])/2]...)
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	s = openT(t, dir, "n1")
	if got := string(s.get("b")); got != "" {
		t.Fatalf("the cut-short write of b was read back: %s", got)
	}
	if s.counter != 1 {
		t.Fatalf("counter %d, want 1", s.counter)
	}
	s.put("c", json.RawMessage(`3`))
	s.close()
	s = openT(t, dir, "n1")
	if string(s.get("a")) != "1" || string(s.get("c")) != "3" {
		t.Fatalf("after the repair: a=%s c=%s, want 1 and 3", s.get("a"), s.get("c"))
	}
	s.close()

	b, _ = os.ReadFile(path)
	os.WriteFile(path, append([]byte("{not json\n"), b...), 0o644)
	if _, err := openStore(dir, "n1", false, time.Now); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("a damaged first line: %v, want an error naming line 1", err)
	}
}

// TestStoreCompact: past compactMin records the log is rewritten as one
// record per key, and reads back the same state and counter.
func TestStoreCompact(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, "n1")
	for i := 0; i < compactMin+10; i++ {
		if _, err := s.put(fmt.Sprintf("k%d", i%3), json.RawMessage(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if s.records > 20 {
		t.Fatalf("%d records after %d writes to 3 keys: the log was not compacted", s.records, compactMin+10)
	}
	want := map[string]string{}
	for _, k := range []string{"k0", "k1", "k2"} {
		want[k] = string(s.get(k))
	}
	s.put("k0", json.RawMessage(`"after"`))
	want["k0"] = `"after"`
	s.close()
	s = openT(t, dir, "n1")
	for k, w := range want {
		if got := string(s.get(k)); got != w {
			t.Errorf("after compaction and restart %s = %s, want %s", k, got, w)
		}
	}
	if s.counter != compactMin+11 {
		t.Errorf("counter %d, want %d", s.counter, compactMin+11)
	}
}
