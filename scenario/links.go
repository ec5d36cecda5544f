package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/faultline/faultline/faults"
	"github.com/faultline/faultline/reports"
	"github.com/faultline/faultline/targets"
)

// setupLinks puts a Toxiproxy proxy on every directed link and every
// client -> node link: in a server the runtime hosts (Docker), or in one
// embedded here (local). closeLinks removes the proxies (call it before the
// cluster's Close, which removes a hosted server); closeProxy stops an
// embedded server (call it last). Both are safe to call more than once.
func setupLinks(ctx context.Context, rt targets.Runtime, spec targets.ClusterSpec) (links *faults.Links, closeLinks, closeProxy func(), err error) {
	nop := func() {}
	if ph, ok := rt.(targets.ProxyHost); ok {
		pl, err := ph.StartProxy(ctx, spec)
		if err != nil {
			return nil, nop, nop, err
		}
		opts := faults.LinksOptions{Prefix: ""}
		if pl.Listen != nil {
			opts.Listen = func(l faults.Link) string { return pl.Listen(l.From, l.To) }
		}
		if pl.Dial != nil {
			opts.Dial = func(l faults.Link, listen string) (string, error) { return pl.Dial(l.From, l.To, listen) }
		}
		if pl.Upstream != nil {
			opts.Upstream = func(l faults.Link, addr string) string { return pl.Upstream(l.From, l.To, addr) }
		}
		opts.Token = pl.Token
		links := faults.NewLinks(pl.APIAddr, opts)
		return links, sync.OnceFunc(func() { links.Close() }), nop, nil
	}
	srv, err := faults.NewProxyServer(ctx)
	if err != nil {
		return nil, nop, nop, err
	}
	links = faults.NewLinks(srv.APIAddr(), faults.LinksOptions{})
	closeLinks = sync.OnceFunc(func() { links.Close() })
	return links, closeLinks, sync.OnceFunc(func() { closeLinks(); srv.Close() }), nil
}

// runID names a run for labels and container names: the run directory's
// base name plus a random suffix, lower case, [a-z0-9-] only.
func runID(dir string) string {
	var b [3]byte
	rand.Read(b[:])
	base := strings.ToLower(filepath.Base(dir))
	var sb strings.Builder
	for _, r := range base {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			sb.WriteRune(r)
		} else {
			sb.WriteByte('-')
		}
	}
	return strings.Trim(sb.String(), "-") + "-" + hex.EncodeToString(b[:])
}

func plannedFault(p faults.Planned) reports.Fault {
	f := reports.Fault{Name: p.Spec.Fault, Targets: p.Spec.Nodes, Start: int64(p.At), End: int64(p.At + p.For), Params: specParams(p.Spec)}
	if t, ok := f.Params["target"].(string); ok && f.Targets == nil && t != "" {
		f.Targets = []string{t}
	}
	return f
}

func injectedFaults(in []faults.Injected) []reports.Fault {
	out := []reports.Fault{}
	for _, i := range in {
		f := reports.Fault{Name: i.Name, Targets: i.Targets, Start: int64(i.Start), End: int64(i.End), Error: i.Error, Params: specParams(i.Spec)}
		if len(i.Groups) > 0 {
			f.Params["groups"] = i.Groups
		}
		f.Params["family"] = i.Family
		out = append(out, f)
	}
	return out
}

// specParams are a fault's effective parameters, for the reports.
func specParams(sp faults.Spec) map[string]any {
	m := sp.Params()
	if m == nil {
		m = map[string]any{}
	}
	if len(sp.Groups) > 0 {
		m["groups"] = sp.Groups
	}
	return m
}

// pastTheEnd returns the timeline faults that start at or after the end of
// the main phase (a --duration override can cut a timeline short): they
// are never injected, and the schedule in results.json says so.
func (s *Scenario) pastTheEnd() []reports.Fault {
	var out []reports.Fault
	if s.Faults == nil {
		return nil
	}
	for _, sp := range s.Faults.Timeline {
		if sp.At >= s.Duration.D() {
			out = append(out, reports.Fault{Name: sp.Fault, Start: int64(sp.At), Params: specParams(sp),
				Error: fmt.Sprintf("not injected: it starts at %s, past the end of the main phase (%s)", sp.At, s.Duration)})
		}
	}
	return out
}

// markNotInjected says, in the schedule, which planned faults never
// started (the main phase ended first); faults that failed to start carry
// their error in results.json's faults.
func markNotInjected(sched []reports.Fault, plan []faults.Planned, injected []faults.Injected) {
	started := map[int]bool{}
	for _, in := range injected {
		started[in.Seq] = true
	}
	for i, p := range plan {
		if i < len(sched) && !started[p.Seq] && sched[i].Error == "" {
			sched[i].Error = "not injected: the main phase ended before it was due"
		}
	}
}
