package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	toxiclient "github.com/Shopify/toxiproxy/v2/client"
)

// What a Tamper found, in Tamper.What.
const (
	// TamperToxicAdded: a toxic that no active fault made.
	TamperToxicAdded = "toxic added"
	// TamperToxicChanged: a toxic a fault made, with another type, stream,
	// toxicity or attributes than it was made with.
	TamperToxicChanged = "toxic changed"
	// TamperToxicRemoved: a toxic an active fault made is gone.
	TamperToxicRemoved = "toxic removed"
	// TamperProxyDisabled: a proxy disabled that no active fault refuses.
	TamperProxyDisabled = "proxy disabled"
	// TamperProxyEnabled: a proxy an active refuse fault disabled is enabled.
	TamperProxyEnabled = "proxy enabled"
	// TamperProxyChanged: a proxy listens or dials elsewhere than it was
	// made to.
	TamperProxyChanged = "proxy changed"
	// TamperProxyDeleted: a proxy of the run is gone from the server.
	TamperProxyDeleted = "proxy deleted"
)

// Tamper is a change to a run's proxies that faultline did not make:
// someone else is at the controls, so the run's faults are not the ones
// recorded, and the run cannot be judged.
type Tamper struct {
	Link  Link   `json:"link"`
	Proxy string `json:"proxy"`
	// What is one of the Tamper* constants.
	What string `json:"what"`
	// Toxic is the toxic found (added, changed) or missing (removed).
	Toxic *ToxicRef `json:"toxic,omitempty"`
	// Detail says more, e.g. the upstream a changed proxy dials.
	Detail string `json:"detail,omitempty"`
	// At is when the nemesis found it, in the history's clock (since the
	// run's start); 0 from Links.Audit, which has no clock.
	At time.Duration `json:"at_ns,omitempty"`
}

// String describes the tampering for a report: "toxic added on client->n1
// (proxy client_to_n1): latency upstream {"jitter":0,"latency":900}".
func (t Tamper) String() string {
	s := fmt.Sprintf("%s on %s (proxy %s)", t.What, t.Link, t.Proxy)
	if t.Toxic != nil {
		a, _ := json.Marshal(t.Toxic.Attributes)
		s += fmt.Sprintf(": %s %s %s %s", t.Toxic.Name, t.Toxic.Type, t.Toxic.Stream, a)
	}
	if t.Detail != "" {
		s += ": " + t.Detail
	}
	return s
}

// key identifies one tampering, so that it is reported once.
func (t Tamper) key() string {
	k := t.Proxy + "|" + t.What + "|" + t.Detail
	if t.Toxic != nil {
		a, _ := json.Marshal(t.Toxic.Attributes)
		k += "|" + t.Toxic.Name + "|" + t.Toxic.Type + "|" + t.Toxic.Stream + "|" + string(a)
	}
	return k
}

// expected is the state this Links made its proxies be in.
type expected struct {
	toxics        map[string]ToxicRef // proxy/name -> as made, for active faults
	disabled      map[Link]bool       // disabled by an active refuse fault
	staleDisabled map[Link]bool       // re-enabling failed: may be disabled
}

func (l *Links) expectedLocked() expected {
	e := expected{toxics: map[string]ToxicRef{}, disabled: map[Link]bool{}, staleDisabled: map[Link]bool{}}
	for _, f := range l.active {
		for _, t := range f.Toxics {
			e.toxics[t.Proxy+"/"+t.Name] = t
		}
	}
	for k, n := range l.disabled {
		if n > 0 {
			e.disabled[k] = true
		}
	}
	for k := range l.staleDisabled {
		e.staleDisabled[k] = true
	}
	return e
}

// Audit lists this Links' proxies and their toxics on the Toxiproxy API
// and compares them with what its faults made: every difference is a
// Tamper (see the Tamper* kinds), in proxy creation order. Toxics and
// disabled proxies that a failed undo may have left behind are not
// tampering. It holds the Links' lock for the whole comparison, so a fault
// being applied or ended is never mistaken for tampering. The error is the
// API's (nothing could be compared).
func (l *Links) Audit(ctx context.Context) ([]Tamper, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(l.order) == 0 {
		return nil, nil
	}
	all, err := l.c.Proxies()
	if err != nil {
		return nil, fmt.Errorf("faults: audit: list proxies on toxiproxy %s: %w", l.api, err)
	}
	want := l.expectedLocked()
	var out []Tamper
	for _, k := range l.order {
		lp := l.proxies[k]
		p, ok := all[lp.name]
		if !ok {
			out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperProxyDeleted})
			continue
		}
		if p.Upstream != lp.upstream || p.Listen != lp.listen {
			out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperProxyChanged,
				Detail: fmt.Sprintf("listen %s upstream %s, made as listen %s upstream %s", p.Listen, p.Upstream, lp.listen, lp.upstream)})
		}
		switch {
		case !p.Enabled && !want.disabled[k] && !want.staleDisabled[k]:
			out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperProxyDisabled})
		case p.Enabled && want.disabled[k]:
			out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperProxyEnabled})
		}
		seen := map[string]bool{}
		ts := append([]toxiclient.Toxic(nil), p.ActiveToxics...)
		sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
		for _, t := range ts {
			key := lp.name + "/" + t.Name
			seen[key] = true
			ref := ToxicRef{Link: k, Proxy: lp.name, Name: t.Name, Type: t.Type, Stream: t.Stream, Attributes: t.Attributes}
			made, ours := want.toxics[key]
			switch {
			case !ours && l.staleToxics[key]:
			case !ours:
				out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicAdded, Toxic: &ref})
			case t.Type != made.Type || t.Stream != made.Stream || t.Toxicity != 1 || !sameAttributes(made.Attributes, t.Attributes):
				out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicChanged, Toxic: &ref,
					Detail: fmt.Sprintf("toxicity %g; made as %s %s toxicity 1 %s", t.Toxicity, made.Type, made.Stream, jsonText(made.Attributes))})
			}
		}
		for key, made := range want.toxics {
			if made.Proxy == lp.name && !seen[key] {
				ref := made
				out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicRemoved, Toxic: &ref})
			}
		}
	}
	return out, nil
}

// sameAttributes reports whether every attribute a fault set has the same
// value on the server (compared as JSON: the server's numbers come back as
// float64).
func sameAttributes(made, got toxiclient.Attributes) bool {
	for k, v := range made {
		g, ok := got[k]
		if !ok || jsonText(v) != jsonText(g) {
			return false
		}
	}
	return true
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var x any
	if json.Unmarshal(b, &x) == nil {
		if b2, err := json.Marshal(x); err == nil {
			return string(b2)
		}
	}
	return string(b)
}

// AuditInterval is how often Watch audits the proxies by default.
const AuditInterval = 500 * time.Millisecond

// Audit compares the run's proxies with what the nemesis made (see
// Links.Audit) and records each tampering not found before: a nemesis event
// in the history (f "tamper", no phase: an instant; value: the Tamper with
// "fault": "tamper") and an entry of Tampered. It returns what it found
// new. Without Links there is nothing to audit. Safe for concurrent use.
func (n *Nemesis) Audit(ctx context.Context) ([]Tamper, error) {
	if n.t.Links == nil {
		return nil, nil
	}
	found, err := n.t.Links.Audit(ctx)
	return n.noteTampers(found), err
}

// noteTampers records the tamperings not seen before and returns them.
func (n *Nemesis) noteTampers(found []Tamper) []Tamper {
	var fresh []Tamper
	for _, t := range found {
		n.mu.Lock()
		if n.tamperSeen == nil {
			n.tamperSeen = map[string]bool{}
		}
		dup := n.tamperSeen[t.key()]
		n.tamperSeen[t.key()] = true
		n.mu.Unlock()
		if dup {
			continue
		}
		t.At = n.rec.Now()
		value := map[string]any{"fault": "tamper", "what": t.What, "link": t.Link, "proxy": t.Proxy}
		if t.Toxic != nil {
			value["toxic"] = t.Toxic
		}
		if t.Detail != "" {
			value["detail"] = t.Detail
		}
		n.record("tamper", "", value, "")
		n.mu.Lock()
		n.tampers = append(n.tampers, t)
		n.mu.Unlock()
		fresh = append(fresh, t)
	}
	return fresh
}

// Watch audits the proxies (Audit) every interval (AuditInterval if
// interval <= 0) until ctx is done, and returns then. Run it beside Run
// for the main phase, or for as long as the run's proxies are in use: a
// toxic added or a proxy disabled behind the nemesis's back is then in
// the history and in Tampered within one interval. Errors of single audits
// (the API did not answer) are counted in AuditErrors and do not stop it.
func (n *Nemesis) Watch(ctx context.Context, interval time.Duration) {
	if n.t.Links == nil {
		return
	}
	if interval <= 0 {
		interval = AuditInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := n.Audit(ctx); err != nil && ctx.Err() == nil {
			n.mu.Lock()
			n.auditErrs++
			n.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tampered returns every tampering found so far (by Audit, Watch and
// Heal), in the order found, each once: what (Tamper.What), where (link,
// proxy, toxic) and when (At). A run with any is not a valid run: its
// faults are not the ones recorded.
func (n *Nemesis) Tampered() []Tamper {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Tamper(nil), n.tampers...)
}

// AuditErrors returns how many audits of Watch failed to read the proxies.
func (n *Nemesis) AuditErrors() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.auditErrs
}
