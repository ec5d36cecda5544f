package workloads

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/faultline/faultline/history"
)

// Final-read retry backoff: doubles from finalBackoffMin up to finalBackoffMax.
const (
	finalBackoffMin = 50 * time.Millisecond
	finalBackoffMax = time.Second
)

// FinalReads reads every key once with c, one key after another, recording
// each attempt in rec (if non-nil) as a normal "get" op (invoke, then ok,
// fail or info). An attempt that does not end ok is retried, after a backoff
// of 50 ms doubling up to 1 s, until it does or ctx is done; ctx also bounds
// each attempt (an attempt cut by ctx ends info). The reads run under
// process, and under a fresh process (process+1, +2, ...) after every info,
// so pass an id no one else used (Stats.NextProcess of the last phase).
//
// It returns the value read for each key read ok (null for an absent key),
// the next unused process id, and an error naming the keys it could not
// read when ctx ended first.
func FinalReads(ctx context.Context, c Client, keys []string, rec *history.Recorder, process history.Process) (map[string]json.RawMessage, history.Process, error) {
	values := make(map[string]json.RawMessage, len(keys))
	var unread []string
	for _, key := range keys {
		backoff := finalBackoffMin
		for {
			if ctx.Err() != nil {
				break
			}
			op := history.Op{F: FGet, Key: key}
			if rec != nil {
				rec.Record(history.Event{Type: history.Invoke, Process: process, F: op.F, Key: key})
			}
			out := checkOutcome(c.Do(ctx, op))
			if rec != nil {
				rec.Record(completionEvent(process, op, out))
			}
			if out.Type == history.Info {
				process++
			}
			if out.Type == history.OK {
				values[key] = completionValue(op, out)
				break
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			backoff = min(2*backoff, finalBackoffMax)
		}
		if _, ok := values[key]; !ok {
			unread = append(unread, key)
		}
	}
	if len(unread) > 0 {
		sort.Strings(unread)
		return values, process, fmt.Errorf("workloads: final reads: %d of %d keys could not be read before the deadline (%s): %w; give the cluster a longer recovery window or final-read timeout",
			len(unread), len(keys), strings.Join(unread, ", "), context.Cause(ctx))
	}
	return values, process, nil
}
