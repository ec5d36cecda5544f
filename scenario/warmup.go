package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets/httpkv"
)

// warmUpKey is read (never written) to learn that the cluster serves; it is
// not a workload key and the probe is not recorded in the history.
const warmUpKey = "faultline-warmup-probe"

// warmUp waits until a linearizable read through every node succeeds (with
// redirects to the leader), or the window passes.
func warmUp(ctx context.Context, addrs map[string]string, ids []string, opTimeout, window time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for _, id := range ids {
		c, err := httpkv.New(addrs, id, httpkv.Options{Timeout: opTimeout})
		if err != nil {
			return err
		}
		var last history.Outcome
		for {
			last = c.Do(ctx, history.Op{F: "get", Key: warmUpKey})
			if last.Type == history.OK {
				break
			}
			select {
			case <-ctx.Done():
				c.Close()
				if last.Error == "" {
					last.Error = ctx.Err().Error()
				}
				return fmt.Errorf("node %s did not serve a read within %s (last answer: %s %s)", id, window, last.Type, last.Error)
			case <-time.After(100 * time.Millisecond):
			}
		}
		c.Close()
	}
	return nil
}
