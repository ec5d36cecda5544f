package lwwkv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// LogFile is the name of the data log in a node's data directory.
const LogFile = "lwwkv.log"

// compactMin is how many records the data log takes before it may be
// rewritten; it is rewritten when it also holds four times as many records
// as there are keys.
const compactMin = 4096

// maxRecord bounds one line of the data log when it is read back, in bytes
// (a value is at most nodekit.MaxBody; clocks and stamps are small).
const maxRecord = 4 << 20

// record is one line of the data log: the version key holds from now on
// (Key and Version), and/or the node's write counter (Seq, after a local
// write).
type record struct {
	Key     string   `json:"key,omitempty"`
	Version *version `json:"version,omitempty"`
	Seq     uint64   `json:"seq,omitempty"`
}

// errMismatch is what cas returns when the key does not hold from.
var errMismatch = errors.New("mismatch")

// storeError is a failure of the data log; Definite says whether the write
// certainly had no effect.
type storeError struct {
	Definite bool
	Err      error
}

func (e *storeError) Error() string { return e.Err.Error() }
func (e *storeError) Unwrap() error { return e.Err }

// store is a replica's state: the version of every key it holds, its write
// counter, and the data log that makes both survive a restart. Its methods
// are safe for concurrent use.
type store struct {
	self          string
	wallClockOnly bool
	now           func() time.Time // the node's clock (the kit's Now)
	// onChange, if set, is called, with the store's lock held, for every
	// version a local write (put, cas) leaves at a key: the replication
	// queues take it there, so they see a key's versions in order.
	onChange func(key string, v version)

	mu      sync.Mutex
	data    map[string]version
	counter uint64 // the last Seq this node gave a write
	file    *os.File
	path    string
	size    int64 // bytes of the data log that are whole records
	records int   // records in the data log
	broken  error // the data log could not be repaired after a failed write

	merges, concurrent, overruled atomic.Int64
}

// openStore reads the data log in dir (created if missing) and opens it
// for appending. A last record cut short (a kill in the middle of its
// write: no newline) is dropped; any other unreadable line is an error.
func openStore(dir, self string, wallClockOnly bool, now func() time.Time) (*store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lwwkv: data directory: %w", err)
	}
	s := &store{self: self, wallClockOnly: wallClockOnly, now: now, data: map[string]version{}, path: filepath.Join(dir, LogFile)}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lwwkv: open data log: %w", err)
	}
	err = s.replay(f)
	if err == nil {
		if terr := f.Truncate(s.size); terr != nil {
			err = fmt.Errorf("lwwkv: data log %s: drop the cut-short last record: %w", s.path, terr)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("lwwkv: data log %s: %w", s.path, cerr)
	}
	if err != nil {
		return nil, err
	}
	if s.file, err = os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("lwwkv: open data log: %w", err)
	}
	return s, nil
}

// errCutShort is readRecord's answer for bytes at the end of the log with
// no newline: a record whose write a kill cut short.
var errCutShort = errors.New("cut short")

// readRecord returns the next line of r, newline included, or io.EOF at
// the end, errCutShort for a last line without its newline.
func readRecord(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		b, err := r.ReadSlice('\n')
		line = append(line, b...)
		switch {
		case err == nil:
			return line, nil
		case err == io.EOF && len(line) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, errCutShort
		case !errors.Is(err, bufio.ErrBufferFull):
			return nil, err
		case len(line) > maxRecord:
			return nil, fmt.Errorf("a line longer than %d bytes", maxRecord)
		}
	}
}

// replay reads every record of f into s; s.size ends at the last whole one.
func (s *store) replay(f *os.File) error {
	const damaged = "the file is damaged; remove it to start this node empty (anti-entropy refills it)"
	r := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := readRecord(r)
		switch {
		case err == io.EOF || err == errCutShort:
			return nil
		case err != nil:
			return fmt.Errorf("lwwkv: data log %s line %d: %v: %s", s.path, line, err, damaged)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return fmt.Errorf("lwwkv: data log %s line %d is not a record (%v): %s", s.path, line, err, damaged)
		}
		if rec.Version != nil {
			if err := rec.Version.check(); err != nil {
				return fmt.Errorf("lwwkv: data log %s line %d: key %q: %v: %s", s.path, line, rec.Key, err, damaged)
			}
			s.data[rec.Key] = *rec.Version
			s.counter = max(s.counter, rec.Version.Clock[s.self])
		}
		s.counter = max(s.counter, rec.Seq)
		s.size += int64(len(b))
		s.records++
	}
}

// close closes the data log. The store must not be used afterwards.
func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	s.file = nil
	return err
}

// appendLocked writes rec to the data log (one write call: it reaches the
// operating system before the caller answers, so it survives a kill of the
// process, not a crash of the machine). On failure it cuts the log back to
// its last whole record; the error says whether that worked (Definite: the
// record is not there). Call with s.mu held.
func (s *store) appendLocked(rec record) error {
	if s.broken != nil {
		return &storeError{Definite: true, Err: s.broken}
	}
	if s.file == nil {
		return &storeError{Definite: true, Err: errors.New("lwwkv: the node is stopping")}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return &storeError{Definite: true, Err: fmt.Errorf("lwwkv: encode record: %w", err)}
	}
	b = append(b, '\n')
	if _, err := s.file.Write(b); err != nil {
		if terr := s.file.Truncate(s.size); terr != nil {
			s.broken = fmt.Errorf("lwwkv: data log %s is damaged (a write failed: %v; cutting it back failed: %v): restart the node", s.path, err, terr)
			return &storeError{Err: s.broken}
		}
		return &storeError{Definite: true, Err: fmt.Errorf("lwwkv: write data log %s: %w", s.path, err)}
	}
	s.size += int64(len(b))
	s.records++
	if s.records >= compactMin && s.records >= 4*len(s.data) {
		s.compactLocked()
	}
	return nil
}

// compactLocked rewrites the data log as one record per key (plus the
// counter), synced, then renamed over the old one. A failure leaves the
// old log in place. Call with s.mu held.
func (s *store) compactLocked() {
	tmp := s.path + ".tmp"
	err := func() error {
		var buf bytes.Buffer
		n := 0
		for _, k := range slices.Sorted(maps.Keys(s.data)) {
			v := s.data[k]
			b, err := json.Marshal(record{Key: k, Version: &v})
			if err != nil {
				return err
			}
			buf.Write(b)
			buf.WriteByte('\n')
			n++
		}
		b, _ := json.Marshal(record{Seq: s.counter})
		buf.Write(b)
		buf.WriteByte('\n')
		if err := writeSynced(tmp, buf.Bytes()); err != nil {
			return err
		}
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		if err := os.Rename(tmp, s.path); err != nil {
			f.Close()
			return err
		}
		syncDir(filepath.Dir(s.path))
		s.file.Close()
		s.file, s.size, s.records = f, int64(buf.Len()), n+1
		return nil
	}()
	if err != nil {
		os.Remove(tmp)
		// Try again after as many records again.
		s.records = 0
	}
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// get returns the value at key (nil when absent).
func (s *store) get(key string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.data[key]; ok {
		return v.Value
	}
	return nil
}

// version returns the version at key.
func (s *store) version(key string) (version, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	return v, ok
}

// put writes value (canonical JSON) at key as a new write of this node and
// returns the version the key holds afterwards: the write's own, except
// under wall-clock-only when the held version has a larger stamp.
func (s *store) put(key string, value json.RawMessage) (version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeLocked(key, value)
}

// cas writes to at key, as put does, if the key holds from (null matches
// an absent key), else returns errMismatch. The comparison is this
// replica's alone.
func (s *store) cas(key string, from, to json.RawMessage) (version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := json.RawMessage("null")
	if v, ok := s.data[key]; ok {
		cur = v.Value
	}
	if !bytes.Equal(cur, from) {
		return version{}, errMismatch
	}
	return s.writeLocked(key, to)
}

// writeLocked makes the write: the next counter, a clock that covers the
// key's current history plus this write, the node's clock as the stamp.
// The write is logged (with the counter) before it is visible. Call with
// s.mu held.
func (s *store) writeLocked(key string, value json.RawMessage) (version, error) {
	cur, ok := s.data[key]
	seq := s.counter + 1
	clock := join(cur.Clock, vclock{s.self: seq})
	w := version{Value: value, Clock: clock, TS: s.now().UnixNano(), Origin: s.self, Seq: seq}
	res, out := merge(cur, ok, w, s.wallClockOnly)
	if err := s.appendLocked(record{Key: key, Version: &res, Seq: seq}); err != nil {
		return version{}, err
	}
	s.counter = seq
	s.count(out)
	s.data[key] = res
	if s.onChange != nil {
		s.onChange(key, res)
	}
	return res, nil
}

// count adds a merge's outcome to the counters (concurrent and overruled;
// merges counts received versions only, in mergeRemote).
func (s *store) count(out outcome) {
	if out.concurrent {
		s.concurrent.Add(1)
	}
	if out.overruled {
		s.overruled.Add(1)
	}
}

// mergeRemote merges a version received from a peer into key and reports
// whether the key's version changed (then it is logged first).
func (s *store) mergeRemote(key string, in version) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.data[key]
	res, out := merge(cur, ok, in, s.wallClockOnly)
	if !out.changed {
		s.count(out)
		return false, nil
	}
	if err := s.appendLocked(record{Key: key, Version: &res}); err != nil {
		return false, err
	}
	s.count(out)
	s.merges.Add(1)
	s.data[key] = res
	return true, nil
}

// snapshot returns every key's version, sorted by key.
func (s *store) snapshot() []keyed {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]keyed, 0, len(s.data))
	for _, k := range slices.Sorted(maps.Keys(s.data)) {
		out = append(out, keyed{Key: k, version: s.data[k]})
	}
	return out
}

// len returns the number of keys held.
func (s *store) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.data)
}
