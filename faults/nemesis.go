package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// Nemesis injects faults into a running cluster and records every start
// and end as a nemesis event in the history. Its methods are safe for
// concurrent use.
type Nemesis struct {
	cluster targets.Cluster
	links   *Links // nil: link faults fail with a clear error
	rec     *history.Recorder
	nodes   []string
	http    *http.Client

	mu      sync.Mutex
	nextID  int
	active  map[int]*Active
	injects []Injected
	touched map[string]bool // nodes ever killed or paused: Heal makes sure they run
}

func (n *Nemesis) touch(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.touched == nil {
		n.touched = map[string]bool{}
	}
	n.touched[id] = true
}

// Active is a fault in force.
type Active struct {
	ID      int
	Seq     int // the plan's sequence number, 0 if not planned
	Spec    Spec
	Family  string
	Targets []string   // nodes it acts on (resolved)
	Groups  [][]string // partitions
	Start   time.Duration

	link    *LinkFault
	killed  []string
	paused  []string
	clocked []string
}

// Injected records one fault as it really happened, for results.json.
type Injected struct {
	ID      int           `json:"id"`
	Seq     int           `json:"seq,omitempty"`
	Name    string        `json:"name"`
	Family  string        `json:"family"`
	Targets []string      `json:"targets,omitempty"`
	Groups  [][]string    `json:"groups,omitempty"`
	Spec    Spec          `json:"spec"`
	Start   time.Duration `json:"start_ns"`
	End     time.Duration `json:"end_ns,omitempty"` // 0 while in force
	Error   string        `json:"error,omitempty"`
}

// NewNemesis returns a nemesis over cluster; links may be nil when the
// runtime has no proxies (link faults then fail).
func NewNemesis(cluster targets.Cluster, links *Links, rec *history.Recorder) *Nemesis {
	var nodes []string
	for _, n := range cluster.Nodes() {
		nodes = append(nodes, n.ID)
	}
	return &Nemesis{cluster: cluster, links: links, rec: rec, nodes: nodes,
		http:   &http.Client{Timeout: 3 * time.Second},
		active: map[int]*Active{}}
}

// Injected returns every fault started so far, in start order.
func (n *Nemesis) Injected() []Injected {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Injected(nil), n.injects...)
}

// InForce returns the names of the faults in force now.
func (n *Nemesis) InForce() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, a := range n.active {
		out = append(out, a.Spec.Fault)
	}
	sort.Strings(out)
	return out
}

func (n *Nemesis) record(family, phase string, value map[string]any, errText string) {
	b, _ := json.Marshal(value)
	n.rec.Record(history.Event{Type: history.Info, Process: history.Nemesis, F: family, Value: b, Phase: phase, Error: errText})
}

// Leader asks every node for its status and returns the leader with the
// highest term.
func (n *Nemesis) Leader(ctx context.Context) (string, error) {
	best, term := "", uint64(0)
	for _, id := range n.nodes {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := n.cluster.Status(ctx, id)
		cancel()
		if err == nil && (st.Role == "leader" || st.Role == "primary") && (best == "" || st.Term > term) {
			best, term = id, st.Term
		}
	}
	if best == "" {
		return "", errors.New("no node reports itself leader right now")
	}
	return best, nil
}

// Start injects one fault (its seeded choices already resolved by Plan, or
// resolved here against the nodes if absent).
func (n *Nemesis) Start(ctx context.Context, p Planned) (*Active, error) {
	sp := p.Spec.withDefaults()
	kind, ok := Lookup(sp.Fault)
	if !ok {
		return nil, fmt.Errorf("unknown fault %q", sp.Fault)
	}
	n.mu.Lock()
	n.nextID++
	a := &Active{ID: n.nextID, Seq: p.Seq, Spec: sp, Family: kind.Family, Targets: sp.Nodes, Groups: sp.Groups, Start: n.rec.Now()}
	n.mu.Unlock()

	err := n.inject(ctx, a, kind)
	value := map[string]any{"fault": sp.Fault, "id": a.ID}
	if len(a.Targets) > 0 {
		value["targets"] = a.Targets
	}
	if len(a.Groups) > 0 {
		value["groups"] = a.Groups
	}
	if sp.Mode != "" && kind.Family == "partition" {
		value["mode"] = sp.Mode
	}
	switch sp.Fault {
	case "latency":
		value["latency_ms"] = sp.Latency.Milliseconds()
		value["jitter_ms"] = sp.Jitter.Milliseconds()
	case "bandwidth":
		value["rate_kbps"] = sp.Rate
	case "clock-skew":
		value["offset_ms"] = sp.Offset.Milliseconds()
	}
	if a.link != nil {
		value["links"] = len(a.link.Links)
	}
	inj := Injected{ID: a.ID, Seq: p.Seq, Name: sp.Fault, Family: kind.Family, Targets: a.Targets, Groups: a.Groups, Spec: sp, Start: a.Start}
	if err != nil {
		inj.Error = err.Error()
		inj.End = a.Start
		n.record(kind.Family, "start", value, err.Error())
		// Undo whatever part of it took effect, and say it ended.
		n.undo(context.WithoutCancel(ctx), a)
		n.record(kind.Family, "end", map[string]any{"fault": sp.Fault, "id": a.ID}, "")
		n.mu.Lock()
		n.injects = append(n.injects, inj)
		n.mu.Unlock()
		return nil, err
	}
	n.record(kind.Family, "start", value, "")
	n.mu.Lock()
	n.active[a.ID] = a
	n.injects = append(n.injects, inj)
	n.mu.Unlock()
	return a, nil
}

func (n *Nemesis) needLinks(name string) error {
	if n.links == nil {
		return fmt.Errorf("%s needs proxies on the links, which this runtime does not provide", name)
	}
	return nil
}

func (n *Nemesis) inject(ctx context.Context, a *Active, kind Kind) error {
	sp := a.Spec
	if sp.Target == "leader" {
		l, err := n.Leader(ctx)
		if err != nil {
			return fmt.Errorf("%s targets the leader: %w", sp.Fault, err)
		}
		a.Targets = []string{l}
	}
	if kind.Links {
		if err := n.needLinks(sp.Fault); err != nil {
			return err
		}
	}
	mode := Mode(sp.Mode)
	var opts []PartitionOption
	if sp.Clients {
		opts = append(opts, ClientsIn(LargestGroup))
	}
	var lf LinkFault
	var err error
	switch sp.Fault {
	case "partition-halves":
		lf, err = n.links.Partition(ctx, a.Groups, mode, opts...)
	case "partition-one", "partition-leader":
		if sp.Fault == "partition-leader" && sp.Target != "leader" {
			l, lerr := n.Leader(ctx)
			if lerr != nil {
				return fmt.Errorf("partition-leader: %w", lerr)
			}
			a.Targets = []string{l}
		}
		iso := a.Targets[0]
		a.Groups = [][]string{{iso}, without(n.nodes, iso)}
		lf, err = n.links.Partition(ctx, a.Groups, mode, opts...)
	case "partition-bridge":
		bridge := a.Targets[0]
		var cut []Link
		for _, l := range mustCrossing(n.nodes, a.Groups) {
			if l.From != bridge && l.To != bridge {
				cut = append(cut, l)
			}
		}
		lf, err = n.links.Cut(ctx, cut, mode)
	case "partition-majorities-ring":
		lf, err = n.links.Cut(ctx, RingLinks(a.Targets), mode)
	case "partition-one-way":
		var cut []Link
		for _, to := range without(n.nodes, a.Targets[0]) {
			cut = append(cut, Link{a.Targets[0], to})
		}
		lf, err = n.links.Cut(ctx, cut, mode)
	case "latency":
		lf, err = n.links.Latency(ctx, n.linksFor(a, sp.Clients), sp.Latency, sp.Jitter)
	case "bandwidth":
		lf, err = n.links.Bandwidth(ctx, n.linksFor(a, sp.Clients), sp.Rate)
	case "reset":
		lf, err = n.links.ResetPeer(ctx, n.linksFor(a, sp.Clients))
	case "kill":
		// A dead process refuses connections; a live proxy in front of it
		// would instead accept and close them, turning requests that never
		// reached any process into unknown outcomes. So the links into the
		// nodes refuse while they are down (cut first, so no request slips
		// in between), as a real dead node's port would.
		if n.links != nil {
			lf, err := n.links.Cut(ctx, n.linksInto(a.Targets), Refuse)
			if err != nil {
				return fmt.Errorf("kill: refusing the links into %v: %w", a.Targets, err)
			}
			a.link = &lf
		}
		for _, id := range a.Targets {
			// Noted before the call: a kill that fails part way (its wait
			// cancelled) may still have killed the node, and ending the
			// fault must start it again (Start of a running node does
			// nothing).
			a.killed = append(a.killed, id)
			n.touch(id)
			if err = n.cluster.Kill(ctx, id); err != nil {
				return fmt.Errorf("kill %s: %w", id, err)
			}
		}
		return nil
	case "pause":
		for _, id := range a.Targets {
			a.paused = append(a.paused, id)
			n.touch(id)
			if err = n.cluster.Pause(ctx, id); err != nil {
				return fmt.Errorf("pause %s: %w", id, err)
			}
		}
		return nil
	case "clock-skew":
		for _, id := range a.Targets {
			if err = n.setClock(ctx, id, sp.Offset); err != nil {
				return fmt.Errorf("clock-skew %s: %w", id, err)
			}
			a.clocked = append(a.clocked, id)
		}
		return nil
	default:
		return fmt.Errorf("fault %q has no injector", sp.Fault)
	}
	if err != nil {
		return err
	}
	a.link = &lf
	return nil
}

// linksFor returns the links a latency/bandwidth/reset fault acts on: every
// peer link when it targets all nodes, else the links touching its targets.
func (n *Nemesis) linksFor(a *Active, clients bool) []Link {
	if len(a.Targets) == len(n.nodes) {
		if clients {
			return n.links.All()
		}
		return n.links.PeerLinks()
	}
	seen := map[Link]bool{}
	var out []Link
	for _, id := range a.Targets {
		for _, l := range n.links.Touching(id, clients) {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}

// linksInto returns every link (peer and client) that ends at one of ids.
func (n *Nemesis) linksInto(ids []string) []Link {
	in := map[string]bool{}
	for _, id := range ids {
		in[id] = true
	}
	var out []Link
	for _, l := range n.links.All() {
		if in[l.To] && !in[l.From] {
			out = append(out, l)
		}
	}
	return out
}

func mustCrossing(nodes []string, groups [][]string) []Link {
	ls, err := CrossingLinks(nodes, groups)
	if err != nil {
		return nil
	}
	return ls
}

func without(nodes []string, id string) []string {
	var out []string
	for _, n := range nodes {
		if n != id {
			out = append(out, n)
		}
	}
	return out
}

// setClock shifts a node's clock through its admin API.
func (n *Nemesis) setClock(ctx context.Context, id string, offset time.Duration) error {
	var admin string
	for _, ni := range n.cluster.Nodes() {
		if ni.ID == id {
			admin = ni.Admin
		}
	}
	if admin == "" {
		return fmt.Errorf("node %s has no admin address", id)
	}
	body, _ := json.Marshal(map[string]int64{"offset_ms": offset.Milliseconds()})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+admin+"/admin/clock", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("admin API answered %s: the system does not support clock faults", resp.Status)
	}
	return nil
}

// End ends one active fault and records it.
func (n *Nemesis) End(ctx context.Context, a *Active) error {
	n.mu.Lock()
	if _, ok := n.active[a.ID]; !ok {
		n.mu.Unlock()
		return nil
	}
	delete(n.active, a.ID)
	n.mu.Unlock()
	err := n.undo(ctx, a)
	value := map[string]any{"fault": a.Spec.Fault, "id": a.ID}
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	n.record(a.Family, "end", value, errText)
	now := n.rec.Now()
	n.mu.Lock()
	for i := range n.injects {
		if n.injects[i].ID == a.ID {
			n.injects[i].End = now
			if err != nil && n.injects[i].Error == "" {
				n.injects[i].Error = "ending: " + err.Error()
			}
		}
	}
	n.mu.Unlock()
	return err
}

func (n *Nemesis) undo(ctx context.Context, a *Active) error {
	var errs []error
	for _, id := range a.paused {
		if err := n.cluster.Resume(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("resume %s: %w", id, err))
		}
	}
	// Killed nodes start before their links open again (see inject).
	for _, id := range a.killed {
		if err := n.cluster.Start(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", id, err))
		}
	}
	if a.link != nil {
		if err := n.links.End(ctx, *a.link); err != nil {
			errs = append(errs, err)
		}
	}
	for _, id := range a.clocked {
		if err := n.setClock(ctx, id, 0); err != nil {
			errs = append(errs, fmt.Errorf("reset clock of %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// Heal ends every active fault, then makes sure no toxic is left and every
// proxy is enabled (even ones nemesis did not add), and records a "heal"
// event. Nodes it killed are started again, paused ones resumed.
func (n *Nemesis) Heal(ctx context.Context) error {
	n.mu.Lock()
	var act []*Active
	for _, a := range n.active {
		act = append(act, a)
	}
	n.mu.Unlock()
	sort.Slice(act, func(i, j int) bool { return act[i].ID > act[j].ID })
	var errs []error
	for _, a := range act {
		if err := n.End(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	// Every node a fault ever killed or paused runs again, whatever became
	// of the fault that touched it (an ending that failed, a kill cut
	// short): resume (a no-op for a running node) then start (likewise).
	n.mu.Lock()
	var touched []string
	for id := range n.touched {
		touched = append(touched, id)
	}
	n.mu.Unlock()
	sort.Strings(touched)
	for _, id := range touched {
		n.cluster.Resume(ctx, id) // fails harmlessly for a node that is not running
		if err := n.cluster.Start(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("heal: start %s: %w", id, err))
		}
	}
	value := map[string]any{"fault": "heal", "ended": len(act)}
	if n.links != nil {
		rep, err := n.links.Heal(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		value["toxics_removed"] = len(rep.Removed)
		value["proxies_enabled"] = len(rep.Enabled)
	}
	err := errors.Join(errs...)
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	n.record("heal", "", value, errText)
	return err
}

// Run injects a plan: each fault starts at its time since base (the main
// phase's start in the recorder's clock) and ends after its length. It
// returns when every planned fault has ended or ctx is done; faults still in
// force then are ended before it returns. Errors of single faults are
// recorded (history, Injected) and do not stop the plan. onChange, if set,
// is called whenever the set of faults in force changes.
func (n *Nemesis) Run(ctx context.Context, plan []Planned, base time.Duration, onChange func()) {
	var wg sync.WaitGroup
	for _, p := range plan {
		wait := base + p.At - n.rec.Now()
		if wait > 0 {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		a, err := n.Start(ctx, p)
		if onChange != nil {
			onChange()
		}
		if err != nil {
			continue
		}
		wg.Add(1)
		go func(a *Active, d time.Duration) {
			defer wg.Done()
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
			n.End(context.WithoutCancel(ctx), a)
			if onChange != nil {
				onChange()
			}
		}(a, p.For)
	}
	wg.Wait()
}
