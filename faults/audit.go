package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
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
	staleToxics   map[string]bool     // proxy/name: removing failed: may be there
}

func (l *Links) expectedLocked() expected {
	e := expected{toxics: map[string]ToxicRef{}, disabled: map[Link]bool{}, staleDisabled: map[Link]bool{}, staleToxics: map[string]bool{}}
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
	for k := range l.staleToxics {
		e.staleToxics[k] = true
	}
	return e
}

// auditView is what an audit compares the server with: a copy of this
// Links' proxies and of what its faults made, taken when a change ended.
// It is never modified once published.
type auditView struct {
	order   []Link
	proxies map[Link]linkProxy
	want    expected
}

// auditState is what audits read instead of the Links' state, so that they
// never wait for mu (held across Toxiproxy calls by every fault change).
type auditState struct {
	mu       sync.Mutex
	gen      uint64 // bumped when a change of the proxies begins and when it ends
	changing bool   // a change is under way
	view     *auditView
}

// changeLocked marks a change of the server's proxies as under way (an
// audit overlapping it is discarded, see Audit) and returns what ends it,
// to be called while l.mu is still held: it publishes the new expected
// state. Every method that changes the proxies on the server calls
//
//	l.mu.Lock()
//	defer l.mu.Unlock()
//	defer l.changeLocked()()
func (l *Links) changeLocked() func() {
	l.audit.mu.Lock()
	l.audit.gen++
	l.audit.changing = true
	l.audit.mu.Unlock()
	return func() {
		v := &auditView{order: append([]Link(nil), l.order...), proxies: make(map[Link]linkProxy, len(l.proxies)), want: l.expectedLocked()}
		for k, lp := range l.proxies {
			v.proxies[k] = *lp
		}
		l.audit.mu.Lock()
		l.audit.gen++
		l.audit.changing = false
		l.audit.view = v
		l.audit.mu.Unlock()
	}
}

// ErrAuditRaced is Audit's error when a fault was applied or ended (or the
// proxies made, healed or deleted) while the audit read the proxies: it
// cannot tell that change from someone else's, so it compared nothing.
// Audit again; it is not a failure of the Toxiproxy API.
var ErrAuditRaced = errors.New("faults: audit: a fault changed the proxies while they were read; nothing was compared (audit again)")

// AuditTimeout bounds the one Toxiproxy API request of an audit.
const AuditTimeout = 5 * time.Second

// Audit lists this Links' proxies and their toxics on the Toxiproxy API
// and compares them with what its faults made: every difference is a
// Tamper (see the Tamper* kinds), in proxy creation order. Toxics and
// disabled proxies that a failed undo may have left behind are not
// tampering.
//
// Audit never waits for a fault change: it reads the proxies without the
// Links' lock, in one request that ends when ctx is done or after
// AuditTimeout, then compares them with what the faults had made when
// the request started. If a fault change was under way then, or began
// before the answer was compared, a fault being applied or ended could be
// mistaken for tampering: Audit then returns ErrAuditRaced and nothing.
// Any other error is the API's (nothing could be compared).
func (l *Links) Audit(ctx context.Context) ([]Tamper, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.audit.mu.Lock()
	gen, busy, v := l.audit.gen, l.audit.changing, l.audit.view
	l.audit.mu.Unlock()
	if busy {
		return nil, ErrAuditRaced
	}
	if v == nil || len(v.order) == 0 {
		return nil, nil
	}
	if auditTestHook != nil {
		auditTestHook()
	}
	all, err := l.listProxies(ctx)
	if err != nil {
		return nil, fmt.Errorf("faults: audit: list proxies on toxiproxy %s: %w", l.api, err)
	}
	l.audit.mu.Lock()
	raced := l.audit.gen != gen
	l.audit.mu.Unlock()
	if raced {
		return nil, ErrAuditRaced
	}
	return v.compare(all), nil
}

// auditTestHook, if set, runs between an audit's copy of what the faults
// made and its read of the proxies (tests make a fault change there).
var auditTestHook func()

// auditHTTP sends the audits' requests; each has its own deadline.
var auditHTTP = &http.Client{}

// listProxies is Toxiproxy's GET /proxies (the client's Proxies), as one
// request bounded by ctx and AuditTimeout: Toxiproxy's client takes no
// context.
func (l *Links) listProxies(ctx context.Context) (map[string]*toxiclient.Proxy, error) {
	ctx, cancel := context.WithTimeout(ctx, AuditTimeout)
	defer cancel()
	base := l.api
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		base = "http://" + base
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/proxies", nil)
	if err != nil {
		return nil, err
	}
	l.opts.Token.SetOn(req)
	resp, err := auditHTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, 64<<20)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		ae := &toxiclient.ApiError{}
		if json.NewDecoder(body).Decode(ae) != nil || ae.Status == 0 {
			ae.Status, ae.Message = resp.StatusCode, http.StatusText(resp.StatusCode)
		}
		return nil, ae
	}
	all := map[string]*toxiclient.Proxy{}
	if err := json.NewDecoder(body).Decode(&all); err != nil {
		return nil, fmt.Errorf("decode the proxies: %w", err)
	}
	return all, nil
}

// compare lists every difference between the proxies on the server and v.
func (v *auditView) compare(all map[string]*toxiclient.Proxy) []Tamper {
	want := v.want
	var out []Tamper
	for _, k := range v.order {
		lp := v.proxies[k]
		p, ok := all[lp.name]
		if !ok || p == nil {
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
			case !ours && want.staleToxics[key]:
			case !ours:
				out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicAdded, Toxic: &ref})
			case t.Type != made.Type || t.Stream != made.Stream || t.Toxicity != 1 || !sameAttributes(made.Attributes, t.Attributes):
				out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicChanged, Toxic: &ref,
					Detail: fmt.Sprintf("toxicity %g; made as %s %s toxicity 1 %s", t.Toxicity, made.Type, made.Stream, jsonText(made.Attributes))})
			}
		}
		var removed []string
		for key, made := range want.toxics {
			if made.Proxy == lp.name && !seen[key] {
				removed = append(removed, key)
			}
		}
		sort.Strings(removed)
		for _, key := range removed {
			ref := want.toxics[key]
			out = append(out, Tamper{Link: k, Proxy: lp.name, What: TamperToxicRemoved, Toxic: &ref})
		}
	}
	return out
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
// new. Without Links there is nothing to audit. Every audit is counted in
// AuditStatus. Safe for concurrent use.
func (n *Nemesis) Audit(ctx context.Context) ([]Tamper, error) {
	if n.t.Links == nil {
		return nil, nil
	}
	found, err := n.t.Links.Audit(ctx)
	n.mu.Lock()
	switch {
	case err == nil:
		n.audits.Done++
	case errors.Is(err, ErrAuditRaced):
		n.audits.Raced++
	case ctx.Err() != nil: // stopped, not failed
	default:
		n.audits.Failed++
		n.audits.LastError = err.Error()
	}
	n.mu.Unlock()
	return n.noteTampers(found), err
}

// AuditStatus counts the audits of a Nemesis (Audit, Watch, Heal).
type AuditStatus struct {
	// Done audits compared every proxy with what the faults made.
	Done int `json:"done"`
	// Failed audits could not read the proxies (the Toxiproxy API did not
	// answer in time, or refused); LastError is the last one's error.
	Failed    int    `json:"failed"`
	LastError string `json:"last_error,omitempty"`
	// Raced audits overlapped a fault change and were discarded
	// (ErrAuditRaced): not failures, the next one decides.
	Raced int `json:"raced"`
}

// AuditStatus says how the audits went so far. A run whose Watch made
// Failed > 0 audits had its proxies unwatched for that long, and one with
// Done == 0 was never audited: tampering could have gone unseen, which
// the run should say (a warning), though nothing was found.
func (n *Nemesis) AuditStatus() AuditStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.audits
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
// interval <= 0) until ctx is done, and returns then (at once: an audit
// under way is cancelled with ctx). Run it beside Run for the main phase,
// or for as long as the run's proxies are in use: a toxic added or a proxy
// disabled behind the nemesis's back is then in the history and in
// Tampered within one interval. A single audit that fails (the API did not
// answer) or raced a fault change does not stop it; see AuditStatus.
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
		n.Audit(ctx) // counted in AuditStatus
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

// AuditErrors returns how many audits failed to read the proxies
// (AuditStatus().Failed).
func (n *Nemesis) AuditErrors() int { return n.AuditStatus().Failed }
