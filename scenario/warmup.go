package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// warmUpKey is read (never written) to learn that the cluster serves; it is
// not a workload key and the probe is not recorded in the history.
const warmUpKey = "faultline-warmup-probe"

// clientConfig is the adapter configuration every client of the run
// shares; each client sets its own Home.
func (s *Scenario) clientConfig(c targets.Cluster) targets.ClientConfig {
	cfg := targets.ClientConfig{Nodes: map[string]string{}, Roles: map[string]string{},
		Timeout: s.Workload.Timeout.D(), Options: s.Client.Options}
	for _, n := range c.Nodes() {
		cfg.Nodes[n.ID] = n.ClientVia
		cfg.Roles[n.ID] = n.Role
		cfg.Token = n.Token // the run's, or "" for nodes that take none
	}
	return cfg
}

// servingNodes returns the ids of the nodes that take the workload's
// operations, in order.
func (s *Scenario) servingNodes() []string {
	var out []string
	for _, n := range s.nodes {
		if s.sys.Serving(n.Role) {
			out = append(out, n.ID)
		}
	}
	return out
}

// warmUp waits until a read through every serving node succeeds (with the
// adapter's own redirects), or the window passes. An adapter that cannot
// read, or a workload that speaks to the nodes itself, is not probed: the
// runtime's readiness check is all there is.
func (s *Scenario) warmUp(ctx context.Context, cfg targets.ClientConfig, window time.Duration) error {
	if !s.adapter.Supports("get") || s.ownClient() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	for _, id := range s.servingNodes() {
		cfg.Home = id
		c, err := s.newClient(cfg)
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
