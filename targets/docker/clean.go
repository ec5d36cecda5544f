package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Clean removes every container (running or not, with its anonymous
// volumes), then every network, then every volume (the nodes' data) that
// faultline made for run runID, found by label (faultline.run=runID), or
// for every run when runID is "". It returns what it removed, as
// "container NAME", "network NAME" and "volume NAME", and an error naming
// anything it could not remove. Node images are kept (they are a cache
// keyed by the binary's hash). This is `faultline clean`: use it after a
// run that was killed before it could clean up.
func Clean(ctx context.Context, runID string) (removed []string, err error) {
	cli, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return removeByLabel(ctx, cli, runID)
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

func removeByLabel(ctx context.Context, cli client.APIClient, runID string) ([]string, error) {
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
