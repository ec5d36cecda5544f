package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// CleanOptions say what Clean removes.
type CleanOptions struct {
	// Run limits Clean to the run with this id (faultline.run; results.json's
	// run_id); "" means every run.
	Run string
	// Force removes the resources of runs whose faultline is alive, or
	// whose liveness this process cannot tell, too.
	Force bool
}

// KeptRun is a run whose resources Clean left alone, and why.
type KeptRun struct {
	Run   string
	Owner Owner
	Why   string
}

// CleanReport says what Clean did.
type CleanReport struct {
	// Removed lists what was removed, as "container NAME", "network NAME"
	// and "volume NAME".
	Removed []string
	// Kept lists the runs left alone because their faultline is alive or
	// cannot be told dead (without Force), sorted by run id.
	Kept []KeptRun
}

// Clean removes, for every run that opts select, every container (running
// or not, with its anonymous volumes), then every network, then every
// volume (the nodes' data) that faultline made for it, found by label
// (faultline.run) — but only for runs whose faultline process is dead
// (see Owner.Check: the owner labels record its host, boot id, pid and
// start time, so a reused pid is not mistaken for it), unless opts.Force.
// A run still going, or one whose owner this process cannot see (another
// machine or container, or resources without owner labels), is kept and
// listed in the report. It returns an error naming anything it could not
// remove. Node images are kept (they are a cache keyed by the binary's
// hash). This is `faultline clean`: use it after a run that was killed
// before it could clean up.
func Clean(ctx context.Context, opts CleanOptions) (CleanReport, error) {
	cli, err := connect(ctx)
	if err != nil {
		return CleanReport{}, err
	}
	defer cli.Close()
	runs, err := runsOf(ctx, cli, opts.Run)
	if err != nil {
		return CleanReport{}, err
	}
	var rep CleanReport
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(runs)) {
		st := runs[id]
		if st.live != Dead && !opts.Force {
			rep.Kept = append(rep.Kept, KeptRun{Run: id, Owner: st.owner, Why: st.why})
			continue
		}
		removed, err := removeByLabel(ctx, cli, id)
		rep.Removed = append(rep.Removed, removed...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return rep, errors.Join(errs...)
}

// runState is what the resources of one run say about its owner.
type runState struct {
	owner Owner
	live  Liveness
	why   string
}

// runsOf finds the runs that have resources (containers, networks,
// volumes) labelled faultline.run (= runID when set) and tells, for each,
// whether its owner lives: alive if any resource's owner is, else unknown
// if any cannot be told, else dead.
func runsOf(ctx context.Context, cli client.APIClient, runID string) (map[string]*runState, error) {
	runs := map[string]*runState{}
	note := func(labels map[string]string) {
		id := labels[LabelRun]
		if id == "" || (runID != "" && id != runID) {
			return
		}
		o := ownerOf(labels)
		live, why := o.Check()
		if st := runs[id]; st == nil || live > st.live {
			runs[id] = &runState{owner: o, live: live, why: why}
		}
	}
	f := runFilter(runID)
	cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: list containers: %w", err)
	}
	for _, c := range cs.Items {
		note(c.Labels)
	}
	ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: list networks: %w", err)
	}
	for _, n := range ns.Items {
		note(n.Labels)
	}
	vs, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: list volumes: %w", err)
	}
	for _, v := range vs.Items {
		note(v.Labels)
	}
	return runs, nil
}

// runFilter selects faultline's resources of one run ("" = every run).
func runFilter(runID string) client.Filters {
	f := client.Filters{}
	f.Add("label", LabelFaultline+"=1")
	if runID != "" {
		f.Add("label", LabelRun+"="+runID)
	}
	return f
}

// removeByLabel removes every container, network and volume of run runID,
// which must not be "".
func removeByLabel(ctx context.Context, cli client.APIClient, runID string) ([]string, error) {
	if runID == "" {
		return nil, errors.New("docker runtime: remove by label: no run id (refusing to remove every run)")
	}
	var removed []string
	var errs []error
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: runFilter(runID)})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: list containers of run %q: %w", runID, err)
	}
	for _, c := range list.Items {
		name := c.ID[:12]
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil, cerrdefs.IsNotFound(err):
			removed = append(removed, "container "+name)
		case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "already in progress"):
			removed = append(removed, "container "+name)
		default:
			errs = append(errs, fmt.Errorf("remove container %s: %w", name, err))
		}
	}
	// A container being removed may still hold a network endpoint or use a
	// volume briefly: removals are tried again for up to 2 s.
	removeAgain := func(kind, name string, remove func() error) {
		var err error
		for try := 0; try < 20; try++ {
			if err = remove(); err == nil || cerrdefs.IsNotFound(err) || ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err == nil || cerrdefs.IsNotFound(err) {
			removed = append(removed, kind+" "+name)
		} else {
			errs = append(errs, fmt.Errorf("remove %s %s: %w", kind, name, err))
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: runFilter(runID)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks of run %q: %w", runID, err))
	} else {
		for _, n := range nets.Items {
			removeAgain("network", n.Name, func() error {
				_, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
				return err
			})
		}
	}
	vols, err := cli.VolumeList(ctx, client.VolumeListOptions{Filters: runFilter(runID)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes of run %q: %w", runID, err))
	} else {
		for _, v := range vols.Items {
			removeAgain("volume", v.Name, func() error {
				_, err := cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{})
				return err
			})
		}
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("docker runtime: cleaning up run %q left something behind (try `faultline clean` again): %w", runID, errors.Join(errs...))
	}
	return removed, nil
}
