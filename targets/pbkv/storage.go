package pbkv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// entry is one log entry: an operation the primary of epoch Epoch put at
// position Index (1-based, contiguous). Op is "noop" (the first entry of
// every epoch), "put" (Value at Key) or "cas" (Key from From to Value).
// Values are canonical JSON.
type entry struct {
	Epoch uint64          `json:"e"`
	Index uint64          `json:"i"`
	Op    string          `json:"op"`
	Key   string          `json:"k,omitempty"`
	Value json.RawMessage `json:"v,omitempty"`
	From  json.RawMessage `json:"from,omitempty"`
}

// meta is the durable election state: the highest epoch the node has seen
// and whom it voted for in it ("" for nobody).
type meta struct {
	Epoch    uint64 `json:"epoch"`
	VotedFor string `json:"voted_for"`
}

const (
	metaFile = "meta.json"
	logFile  = "log.jsonl"
	lockName = "LOCK"
)

// disk is a node's data directory: meta.json (written whole, atomically:
// temporary file, fsync, rename, fsync of the directory) and log.jsonl
// (one entry per line, appended and fsync'd; rewritten whole, atomically,
// when the log is truncated). A LOCK file, flock'ed while the node runs,
// keeps a second process off the directory.
//
// disk is not safe for concurrent use: the node calls saveMeta under its
// state mutex and append/rewrite under its file mutex, which are
// different files.
type disk struct {
	dir    string
	lock   *os.File
	log    *os.File // opened for appending
	closed bool
}

var errClosed = errors.New("pbkv: the data directory is closed (the node stopped)")

// openDisk locks dir (creating it if missing), waiting up to lockTimeout
// for another process to release it, and returns the stored meta and log.
// A torn last line of the log (a write cut by a crash before its fsync,
// so never acknowledged) is dropped and the file rewritten without it; an
// unreadable line followed by readable ones is corruption and an error.
func openDisk(dir string, lockTimeout time.Duration) (*disk, meta, []entry, error) {
	var m meta
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, m, nil, fmt.Errorf("pbkv: data directory: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, m, nil, fmt.Errorf("pbkv: data directory lock: %w", err)
	}
	deadline := time.Now().Add(lockTimeout)
	for {
		err = lockFile(lf)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			lf.Close()
			return nil, m, nil, fmt.Errorf("pbkv: data directory %s is locked by another process (%v): is another node using it?", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := &disk{dir: dir, lock: lf}
	fail := func(err error) (*disk, meta, []entry, error) {
		d.close()
		return nil, m, nil, err
	}
	switch b, err := os.ReadFile(filepath.Join(dir, metaFile)); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fail(fmt.Errorf("pbkv: read %s: %w", metaFile, err))
	default:
		if err := json.Unmarshal(b, &m); err != nil {
			return fail(fmt.Errorf("pbkv: %s in %s is not valid (%v): the node's election state is lost; remove the data directory to start this node afresh", metaFile, dir, err))
		}
	}
	entries, torn, err := readLog(filepath.Join(dir, logFile))
	if err != nil {
		return fail(err)
	}
	if torn {
		if err := d.rewrite(entries); err != nil {
			return fail(err)
		}
	} else if err := d.openLog(); err != nil {
		return fail(err)
	}
	return d, m, entries, nil
}

// readLog reads the log file; torn reports a dropped unreadable last line.
func readLog(path string) (entries []entry, torn bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pbkv: read %s: %w", logFile, err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	for i, line := range lines {
		if len(line) == 0 {
			continue
		}
		var e entry
		bad := line[len(line)-1] != '\n' || json.Unmarshal(line, &e) != nil || e.Index != uint64(len(entries))+1 || e.Epoch == 0
		if bad {
			if rest := bytes.TrimSpace(bytes.Join(lines[i+1:], nil)); len(rest) > 0 {
				return nil, false, fmt.Errorf("pbkv: %s line %d is unreadable and readable lines follow it: the log is corrupt; remove the data directory to start this node afresh", logFile, i+1)
			}
			return entries, true, nil
		}
		entries = append(entries, e)
	}
	return entries, false, nil
}

func (d *disk) openLog() error {
	f, err := os.OpenFile(filepath.Join(d.dir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pbkv: open %s: %w", logFile, err)
	}
	d.log = f
	return nil
}

// saveMeta replaces meta.json atomically and durably.
func (d *disk) saveMeta(m meta) error {
	if d.closed {
		return errClosed
	}
	b, _ := json.Marshal(m)
	return d.replace(metaFile, append(b, '\n'))
}

// encodeEntries is es as log lines, one JSON object each.
func encodeEntries(es []entry) ([]byte, error) {
	var buf bytes.Buffer
	for _, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("pbkv: encode log entry %d: %w", e.Index, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// append writes es at the end of the log and fsyncs it.
func (d *disk) append(es []entry) error {
	if d.closed || d.log == nil {
		return errClosed
	}
	b, err := encodeEntries(es)
	if err != nil {
		return err
	}
	if _, err := d.log.Write(b); err != nil {
		return fmt.Errorf("pbkv: append to %s: %w", logFile, err)
	}
	if err := d.log.Sync(); err != nil {
		return fmt.Errorf("pbkv: fsync %s: %w", logFile, err)
	}
	return nil
}

// rewrite replaces the whole log with es, atomically and durably.
func (d *disk) rewrite(es []entry) error {
	if d.closed {
		return errClosed
	}
	b, err := encodeEntries(es)
	if err != nil {
		return err
	}
	if d.log != nil {
		d.log.Close()
		d.log = nil
	}
	if err := d.replace(logFile, b); err != nil {
		return err
	}
	return d.openLog()
}

// replace writes name atomically: a temporary file, fsync, rename, fsync
// of the directory.
func (d *disk) replace(name string, data []byte) error {
	tmp := filepath.Join(d.dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pbkv: write %s: %w", name, err)
	}
	w := bufio.NewWriter(f)
	_, err = w.Write(data)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(d.dir, name))
	}
	if err == nil {
		err = syncDir(d.dir)
	}
	if err != nil {
		return fmt.Errorf("pbkv: write %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// close closes the log and releases the lock. Further writes fail.
func (d *disk) close() {
	d.closed = true
	if d.log != nil {
		d.log.Close()
		d.log = nil
	}
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}
