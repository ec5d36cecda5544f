// Package runtimetest holds the tests every runtime that starts nodes of
// its own (targets/local, targets/docker) must pass, written once: the
// contract of targets.ProcessControl and targets.Pauser on one node, and a
// storm of concurrent process control. Each runtime's tests start a
// cluster their own way and hand it here.
package runtimetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

// adminHTTP uses no proxy and keeps no connection to a node that may be
// killed next.
var adminHTTP = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// Status reads node id's status with GET /admin/status on its admin
// address as c.Nodes() gives it now (Docker publishes new ports on every
// start), within 2 s. It is the tests' own reader: runtimes read no
// status, systems do (targets.StatusOf).
func Status(ctx context.Context, c targets.Cluster, id string) (targets.Status, error) {
	var admin string
	for _, n := range c.Nodes() {
		if n.ID == id {
			admin = n.Admin
		}
	}
	if admin == "" {
		return targets.Status{}, fmt.Errorf("no node %q in the cluster", id)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/admin/status", nil)
	if err != nil {
		return targets.Status{}, err
	}
	resp, err := adminHTTP.Do(req)
	if err != nil {
		return targets.Status{}, fmt.Errorf("node %s: %w", id, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return targets.Status{}, fmt.Errorf("node %s: %w", id, err)
	}
	if resp.StatusCode != http.StatusOK {
		return targets.Status{}, fmt.Errorf("node %s: GET /admin/status: HTTP %d: %s", id, resp.StatusCode, body)
	}
	var st targets.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return targets.Status{}, fmt.Errorf("node %s: GET /admin/status: %w", id, err)
	}
	st.Raw = body
	return st, nil
}

// answers reports whether node id answers GET /admin/status within d,
// asking again every 50 ms.
func answers(c targets.Cluster, id string, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if _, err := Status(ctx, c, id); err == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ProcessControl checks, on node id of c, the contract that
// targets.ProcessControl and targets.Pauser state: Kill, Stop and a
// paused Start of a node do what they say (it stops or goes on answering
// GET /admin/status); Kill and Stop of a node that is not running, Start
// of a running one (paused or not), Pause of a paused one and Resume of a
// running one do nothing and return nil; Pause and Resume of a node that
// is not running fail; a paused node can be killed and stopped;
// targets.Restart works; every method fails for an unknown node. The node
// must be running and ready; it is left so.
func ProcessControl(t testing.TB, c targets.Cluster, id string) {
	t.Helper()
	pc, ok := c.(targets.ProcessControl)
	if !ok {
		t.Fatalf("%T has no process control", c)
	}
	pa, ok := c.(targets.Pauser)
	if !ok {
		t.Fatalf("%T cannot pause", c)
	}
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s of %s: %v", what, id, err)
		}
	}
	up := func(when string) {
		t.Helper()
		if !answers(c, id, 5*time.Second) {
			t.Fatalf("%s: %s does not answer GET /admin/status", when, id)
		}
	}
	down := func(when string) {
		t.Helper()
		if answers(c, id, 300*time.Millisecond) {
			t.Errorf("%s: %s still answers GET /admin/status", when, id)
		}
	}
	up("before the test")

	must("Pause", pa.Pause(ctx, id))
	down("after Pause")
	must("a second Pause", pa.Pause(ctx, id))
	must("Start of a paused node", pc.Start(ctx, id))
	down("after Start of a paused node (Start must not resume it)")
	must("Resume", pa.Resume(ctx, id))
	up("after Resume")
	must("Resume of a running node", pa.Resume(ctx, id))

	must("Kill", pc.Kill(ctx, id))
	down("after Kill")
	must("Kill of a killed node", pc.Kill(ctx, id))
	if err := pa.Pause(ctx, id); err == nil {
		t.Errorf("Pause of killed %s succeeded, want an error", id)
	}
	if err := pa.Resume(ctx, id); err == nil {
		t.Errorf("Resume of killed %s succeeded, want an error", id)
	}
	must("Start after Kill", pc.Start(ctx, id))
	up("after Start")
	must("Start of a running node", pc.Start(ctx, id))

	must("Stop", pc.Stop(ctx, id))
	down("after Stop")
	must("Stop of a stopped node", pc.Stop(ctx, id))
	must("Start after Stop", pc.Start(ctx, id))
	up("after Start")
	must("targets.Restart", targets.Restart(ctx, pc, id))
	up("after Restart")

	for _, end := range []struct {
		name string
		f    func(context.Context, string) error
	}{{"Kill", pc.Kill}, {"Stop", pc.Stop}} {
		must("Pause", pa.Pause(ctx, id))
		must(end.name+" of a paused node", end.f(ctx, id))
		down("after " + end.name + " of a paused node")
		must("Start after "+end.name+" of a paused node", pc.Start(ctx, id))
		up("after Start")
	}

	for name, f := range map[string]func(context.Context, string) error{
		"Kill": pc.Kill, "Stop": pc.Stop, "Start": pc.Start, "Pause": pa.Pause, "Resume": pa.Resume,
	} {
		if err := f(ctx, "no-such-node"); err == nil {
			t.Errorf("%s of an unknown node succeeded", name)
		}
	}
}

// Storm drives process control of c's nodes ids from workers goroutines
// at once, rounds operations each: worker w acts on ids[w%len(ids)] and
// cycles through kill, start, pause, resume, a status read and stop,
// beginning at its own place, calling Nodes between operations. The
// operations race, so their results are not checked; what is checked is
// that nothing hangs (run it under go test's timeout) and that every node
// is controllable afterwards: resumed and started, each answers GET
// /admin/status.
func Storm(t testing.TB, c targets.Cluster, ids []string, workers, rounds int) {
	t.Helper()
	pc := c.(targets.ProcessControl)
	pa := c.(targets.Pauser)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		id := ids[w%len(ids)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				switch (w + i) % 6 {
				case 0:
					pc.Kill(ctx, id)
				case 1:
					pc.Start(ctx, id)
				case 2:
					pa.Pause(ctx, id)
				case 3:
					pa.Resume(ctx, id)
				case 4:
					Status(ctx, c, id)
				case 5:
					pc.Stop(ctx, id)
				}
				c.Nodes()
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		pa.Resume(ctx, id) // a node may be left paused (or not running)
		if err := pc.Start(ctx, id); err != nil {
			t.Fatalf("Start of %s after the storm: %v", id, err)
		}
		if !answers(c, id, 5*time.Second) {
			t.Errorf("%s does not answer GET /admin/status after the storm", id)
		}
	}
}
