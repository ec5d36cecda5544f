package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/faultline/faultline/history"
	"github.com/faultline/faultline/targets"
)

// Target is what a nemesis injects faults into: a running cluster and the
// means to act on it. Only Cluster is required; a fault that needs a means
// that is missing fails with an error saying so (Schedule.Validate refuses
// such a fault before anything starts).
type Target struct {
	// Cluster is the running cluster. Process faults use its optional
	// capabilities, targets.ProcessControl (kill) and targets.Pauser.
	Cluster targets.Cluster
	// System is the system under test, for its capability funcs (SetClock
	// for clock faults); nil if it is not a registered system.
	System *targets.System
	// Status reads node status, to find the leader. Nil means
	// targets.StatusOf(Cluster, System): the cluster's own reader, else the
	// system's, else none.
	Status targets.StatusReader
	// Links are the proxies on the cluster's links; nil when there are
	// none (link faults then fail, and kill does not refuse links).
	Links *Links
}

// Nemesis injects faults into a running cluster and records every start
// and end as a nemesis event in the history. Its methods are safe for
// concurrent use.
type Nemesis struct {
	t      Target
	status targets.StatusReader
	rec    *history.Recorder
	nodes  []targets.NodeSpec // ids and roles, in cluster order
	ids    []string

	mu      sync.Mutex
	nextID  int
	active  map[int]*Active
	injects []Injected
	touched map[string]Stop // nodes ever killed or paused, and how: Heal makes sure they run

	tampers    []Tamper        // found by Audit, Watch and Heal, in order
	tamperSeen map[string]bool // Tamper.key of each, to report it once
	audits     AuditStatus

	logf func(format string, args ...any) // the run's live log; nil: none
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

	undo Undo
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

// NewNemesis returns a nemesis over t that records into rec.
func NewNemesis(t Target, rec *history.Recorder) *Nemesis {
	n := &Nemesis{t: t, rec: rec, status: t.Status, active: map[int]*Active{}}
	if n.status == nil {
		n.status = targets.StatusOf(t.Cluster, t.System)
	}
	for _, ni := range t.Cluster.Nodes() {
		n.nodes = append(n.nodes, targets.NodeSpec{ID: ni.ID, Role: ni.Role})
		n.ids = append(n.ids, ni.ID)
	}
	return n
}

// SetLog makes the nemesis write to the run's live log, through logf, one
// line when each fault starts (its id, name, the nodes it acts on, a
// partition's groups and its other parameters, the time since the run's
// start), one when it fails to start, one when it ends (with how long it
// lasted), and one per Heal saying what the heal changed (the faults it
// ended, the toxics it removed, the proxies it enabled), or that it changed
// nothing. logf is called from the goroutines that start and end faults,
// one line per call, without a trailing newline; nil turns the log off.
// Call SetLog before Start, Run or Heal.
func (n *Nemesis) SetLog(logf func(format string, args ...any)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.logf = logf
}

func (n *Nemesis) log(format string, args ...any) {
	n.mu.Lock()
	logf := n.logf
	n.mu.Unlock()
	if logf != nil {
		logf(format, args...)
	}
}

// describe is a fault as the live log names it: "#3 partition-leader on
// n2 (groups n2 | n1 n3; mode drop)". The nodes come from targets; the
// parameters that select nodes (target) are shown only when no node was
// resolved (a leader that could not be found).
func describe(id int, sp Spec, targets []string, groups [][]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", id, sp.Fault)
	if len(targets) > 0 {
		b.WriteString(" on " + strings.Join(targets, " "))
	}
	var parts []string
	if len(groups) > 0 {
		gs := make([]string, len(groups))
		for i, g := range groups {
			gs[i] = strings.Join(g, " ")
		}
		parts = append(parts, "groups "+strings.Join(gs, " | "))
	}
	if f, err := sp.kind(); err == nil {
		if e := entryOf(f); e != nil {
			v := reflect.ValueOf(f).Elem()
			for _, pf := range e.fields {
				fv := v.Field(pf.index)
				if _, isSel := fv.Interface().(Selector); isSel && len(targets) > 0 {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s %v", pf.name, paramValue(fv)))
			}
		}
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, "; ") + ")")
	}
	return b.String()
}

// countOf is "1 fault" or "3 faults" (noun's plural: +s, or y -> ies).
func countOf(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	first, rest, _ := strings.Cut(noun, " ")
	switch {
	case strings.HasSuffix(first, "y"):
		first = strings.TrimSuffix(first, "y") + "ies"
	default:
		first += "s"
	}
	if rest != "" {
		first += " " + rest
	}
	return fmt.Sprintf("%d %s", n, first)
}

// orNothing joins what a heal changed, or says it changed nothing.
func orNothing(changed []string) string {
	if len(changed) == 0 {
		return "no fault in force, no toxic left, every proxy enabled"
	}
	return strings.Join(changed, "; ")
}

// seconds is a time since the run's start for the live log.
func seconds(d time.Duration) string { return fmt.Sprintf("%.2fs", d.Seconds()) }

// Injected returns every fault started so far, in start order.
func (n *Nemesis) Injected() []Injected {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Injected(nil), n.injects...)
}

// InForce returns the names of the faults in force now, sorted.
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

func (n *Nemesis) touch(id string, how Stop) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.touched == nil {
		n.touched = map[string]Stop{}
	}
	n.touched[id] |= how
}

func (n *Nemesis) record(family, phase string, value map[string]any, errText string) {
	b, _ := json.Marshal(value)
	n.rec.Record(history.Event{Type: history.Info, Process: history.Nemesis, F: family, Value: b, Phase: phase, Error: errText})
}

// Leader asks every node for its status and returns the leader (or
// primary) with the highest term.
func (n *Nemesis) Leader(ctx context.Context) (string, error) {
	if n.status == nil {
		return "", errors.New("cannot tell which node leads: neither the cluster nor the system reads node status")
	}
	best, term := "", uint64(0)
	for _, id := range n.ids {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := n.status.Status(ctx, id)
		cancel()
		if err == nil && st.IsLeader() && (best == "" || st.Term > term) {
			best, term = id, st.Term
		}
	}
	if best == "" {
		return "", errors.New("no node reports itself leader right now")
	}
	return best, nil
}

// resolveFault makes f's seeded choices with d: its own Resolve if it is a
// Resolver, else its Selector's pick.
func resolveFault(f Fault, d Draw) ([]string, [][]string) {
	if r, ok := f.(Resolver); ok {
		return r.Resolve(d)
	}
	if sel, ok := selectorOf(f); ok {
		return sel.Pick(d), nil
	}
	return nil, nil
}

// Start injects one fault. Its seeded choices are those Plan resolved
// (Spec.Nodes, Spec.Groups); a spec with neither is resolved here with the
// nodes in cluster order as the draw (so "one" is the first node). A
// "leader" target is resolved now. The start is recorded in the history
// and in Injected, with the error if the fault could not be injected; then
// whatever part of it took effect is undone and its end recorded at once.
func (n *Nemesis) Start(ctx context.Context, p Planned) (*Active, error) {
	sp := p.Spec
	f, err := sp.kind()
	if err != nil {
		return nil, err
	}
	sp.Kind = f
	nodes, groups := sp.Nodes, sp.Groups
	if nodes == nil && groups == nil {
		nodes, groups = resolveFault(f, Draw{Nodes: n.nodes, Shuffled: n.ids})
	}
	n.mu.Lock()
	n.nextID++
	a := &Active{ID: n.nextID, Seq: p.Seq, Spec: sp, Family: f.Family(), Start: n.rec.Now()}
	n.mu.Unlock()

	in := &Injection{ID: a.ID, Nodes: append([]string(nil), n.ids...), Targets: nodes, Groups: groups, nem: n}
	if sel, ok := selectorOf(f); ok && sel == TargetLeader {
		l, lerr := n.Leader(ctx)
		if lerr != nil {
			err = fmt.Errorf("%s targets the leader: %w", sp.Fault, lerr)
		} else {
			in.Targets = []string{l}
		}
	}
	// What the runtime reports doing for the fault (hooks: their exit
	// status and output) is recorded with it.
	var notes map[string][]any
	var notesMu sync.Mutex
	noted := targets.WithNotes(ctx, func(k string, v any) {
		notesMu.Lock()
		defer notesMu.Unlock()
		if notes == nil {
			notes = map[string][]any{}
		}
		notes[k] = append(notes[k], v)
	})
	if err == nil {
		a.undo, err = f.Inject(noted, in)
	}
	a.Targets, a.Groups = in.Targets, in.Groups

	value := map[string]any{}
	for k, v := range sp.Params() {
		value[k] = v
	}
	value["fault"], value["id"] = sp.Fault, a.ID
	if len(a.Targets) > 0 {
		value["targets"] = a.Targets
	}
	if len(a.Groups) > 0 {
		value["groups"] = a.Groups
	}
	if in.links > 0 {
		value["links"] = in.links
	}
	notesMu.Lock()
	for k, v := range notes {
		value[k] = v
	}
	notesMu.Unlock()
	inj := Injected{ID: a.ID, Seq: p.Seq, Name: sp.Fault, Family: a.Family, Targets: a.Targets, Groups: a.Groups, Spec: sp, Start: a.Start}
	if err != nil {
		inj.Error = err.Error()
		inj.End = a.Start
		n.record(a.Family, "start", value, err.Error())
		// Undo whatever part of it took effect, and say it ended.
		if a.undo != nil {
			a.undo(context.WithoutCancel(ctx))
		}
		n.record(a.Family, "end", map[string]any{"fault": sp.Fault, "id": a.ID}, "")
		n.mu.Lock()
		n.injects = append(n.injects, inj)
		n.mu.Unlock()
		n.log("fault %s failed to start at %s: %v", describe(a.ID, sp, a.Targets, a.Groups), seconds(a.Start), err)
		return nil, err
	}
	n.record(a.Family, "start", value, "")
	n.mu.Lock()
	n.active[a.ID] = a
	n.injects = append(n.injects, inj)
	n.mu.Unlock()
	n.log("fault %s started at %s", describe(a.ID, sp, a.Targets, a.Groups), seconds(a.Start))
	return a, nil
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
	var err error
	value := map[string]any{"fault": a.Spec.Fault, "id": a.ID}
	if a.undo != nil {
		var mu sync.Mutex
		err = a.undo(targets.WithNotes(ctx, func(k string, v any) {
			mu.Lock()
			defer mu.Unlock()
			l, _ := value[k].([]any)
			value[k] = append(l, v)
		}))
	}
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
	line := fmt.Sprintf("fault #%d %s", a.ID, a.Spec.Fault)
	if len(a.Targets) > 0 {
		line += " on " + strings.Join(a.Targets, " ")
	}
	line += fmt.Sprintf(" ended at %s, after %s", seconds(now), seconds(now-a.Start))
	if err != nil {
		n.log("%s; ending it failed: %v", line, err)
	} else {
		n.log("%s", line)
	}
	return err
}

// Heal audits the proxies once more (see Audit), ends every active fault,
// then makes sure no toxic is left and every proxy is enabled (even ones
// nemesis did not add: those are recorded as tampering too), and records a
// "heal" event. Every node a fault ever paused is resumed, and every node a
// fault ever killed is started again (both do nothing to a running node).
func (n *Nemesis) Heal(ctx context.Context) error {
	// An error here is Links.Heal's to report; an audit that raced a
	// fault change (one still ending) is tried again a few times.
	for i := 0; i < 5; i++ {
		if _, err := n.Audit(ctx); !errors.Is(err, ErrAuditRaced) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
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
	var paused, killed []string
	for id, how := range n.touched {
		if how&Paused != 0 {
			paused = append(paused, id)
		}
		if how&Killed != 0 {
			killed = append(killed, id)
		}
	}
	n.mu.Unlock()
	sort.Strings(paused)
	sort.Strings(killed)
	pz, _ := n.t.Cluster.(targets.Pauser)
	pc, _ := n.t.Cluster.(targets.ProcessControl)
	for _, id := range paused {
		if pz != nil {
			pz.Resume(ctx, id) // fails harmlessly for a node that is not running
		}
	}
	if pc != nil && len(killed) > 0 {
		if err := startAll(ctx, pc, killed, "heal: start"); err != nil {
			errs = append(errs, err)
		}
	}
	// Links cut by other means (an external cluster's heal hook).
	if p, ok := n.t.Cluster.(targets.Partitioner); ok {
		if err := p.HealPartitions(ctx); err != nil {
			errs = append(errs, fmt.Errorf("heal: %w", err))
		}
	}
	value := map[string]any{"fault": "heal", "ended": len(act)}
	var changed []string
	if len(act) > 0 {
		ids := make([]string, len(act))
		for i, a := range act {
			ids[i] = fmt.Sprintf("#%d %s", a.ID, a.Spec.Fault)
		}
		changed = append(changed, fmt.Sprintf("ended %s still in force (%s)", countOf(len(act), "fault"), strings.Join(ids, ", ")))
	}
	if n.t.Links != nil {
		rep, err := n.t.Links.Heal(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		n.noteTampers(rep.Foreign)
		value["toxics_removed"] = len(rep.Removed)
		value["proxies_enabled"] = len(rep.Enabled)
		// The toxics and proxies of the faults it ended are theirs; these
		// are what was left behind or made by someone else.
		if len(rep.Removed) > 0 {
			changed = append(changed, "removed "+countOf(len(rep.Removed), "toxic left on the links"))
		}
		if len(rep.Enabled) > 0 {
			changed = append(changed, "re-enabled "+countOf(len(rep.Enabled), "proxy"))
		}
	}
	err := errors.Join(errs...)
	errText := ""
	if err != nil {
		errText = err.Error()
	}
	n.record("heal", "", value, errText)
	switch {
	case err != nil:
		n.log("heal: %s; errors: %v", orNothing(changed), err)
	default:
		n.log("heal: %s", orNothing(changed))
	}
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

// Injection is one fault being injected: what it acts on, and the means to
// act, for a Fault's Inject. Inject may change Targets and Groups (a fault
// that finds its own target); the nemesis records them.
type Injection struct {
	ID      int        // the fault's id in the history
	Nodes   []string   // every node of the cluster, in order
	Targets []string   // the nodes it acts on, as resolved (a leader target already found)
	Groups  [][]string // the partition's groups, as resolved

	nem   *Nemesis
	links int // links acted on, for the history event
}

// Leader returns the node that leads now (see Nemesis.Leader).
func (in *Injection) Leader(ctx context.Context) (string, error) { return in.nem.Leader(ctx) }

// Links returns the proxies on the cluster's links, or an error if there
// are none.
func (in *Injection) Links() (*Links, error) {
	if in.nem.t.Links == nil {
		return nil, fmt.Errorf("%w: this fault needs a runtime that proxies the links", errNoLinks)
	}
	return in.nem.t.Links, nil
}

// Process returns the cluster's process control, or an error if it has
// none.
func (in *Injection) Process() (targets.ProcessControl, error) {
	pc, ok := in.nem.t.Cluster.(targets.ProcessControl)
	if !ok {
		return nil, errors.New("this cluster cannot kill and start nodes (no process control)")
	}
	return pc, nil
}

// Pauser returns the cluster's pause control, or an error if it has none.
func (in *Injection) Pauser() (targets.Pauser, error) {
	pz, ok := in.nem.t.Cluster.(targets.Pauser)
	if !ok {
		return nil, errors.New("this cluster cannot pause nodes")
	}
	return pz, nil
}

// SetClock sets node id's clock to c (the zero Clock resets it) through
// the system's SetClock.
func (in *Injection) SetClock(ctx context.Context, id string, c targets.Clock) error {
	sys := in.nem.t.System
	if sys == nil || sys.SetClock == nil {
		return errors.New("the system has no clock control")
	}
	for _, ni := range in.nem.t.Cluster.Nodes() {
		if ni.ID == id {
			return sys.SetClock(ctx, ni, c)
		}
	}
	return fmt.Errorf("no node %q in this cluster", id)
}

// Stop is how a fault stops a node's process: Killed, Paused, or both
// over a run.
type Stop uint8

const (
	Killed Stop = 1 << iota // the process was killed (Heal starts it)
	Paused                  // the process was paused (Heal resumes it)
)

// Touch notes that the fault stops node id's process (kill, pause), and
// how: Heal makes sure it runs again, whatever becomes of the fault, by
// resuming a node that was paused and starting one that was killed (and
// only that: a cluster that can pause but not start, an external one with
// pause and resume hooks only, is never asked to start). Call it before
// acting, so that a call that fails part way is covered too.
func (in *Injection) Touch(id string, how Stop) { in.nem.touch(id, how) }

// LinkFault notes a link fault the injection made (for the history event)
// and returns the Undo that ends it.
func (in *Injection) LinkFault(lf LinkFault) Undo {
	in.links += len(lf.Links)
	links := in.nem.t.Links
	return func(ctx context.Context) error { return links.End(ctx, lf) }
}

// LinksTouching returns the proxied links a latency, bandwidth or reset
// fault acts on: with peers, every node -> node link from or to a target
// (when every node is a target: every peer link); with clients, every
// client -> target link.
func (in *Injection) LinksTouching(peers, clients bool) []Link {
	links := in.nem.t.Links
	if links == nil {
		return nil
	}
	if len(in.Targets) == len(in.Nodes) {
		switch {
		case peers && clients:
			return links.All()
		case peers:
			return links.PeerLinks()
		case clients:
			return links.ClientLinks()
		}
		return nil
	}
	seen := map[Link]bool{}
	var out []Link
	for _, id := range in.Targets {
		for _, l := range links.Touching(id, clients) {
			if !seen[l] && (peers || l.IsClient()) {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	return out
}

// LinksInto returns every proxied link (peer and client) that ends at one
// of ids and does not start at one of them.
func (in *Injection) LinksInto(ids []string) []Link {
	links := in.nem.t.Links
	if links == nil {
		return nil
	}
	into := map[string]bool{}
	for _, id := range ids {
		into[id] = true
	}
	var out []Link
	for _, l := range links.All() {
		if into[l.To] && !into[l.From] {
			out = append(out, l)
		}
	}
	return out
}

// hookPartition cuts in.Groups with the cluster's partition hook
// (targets.Partitioner) when the peer links carry no proxy; ok is false
// when the proxies are to do it. The undo runs the heal hook.
func (in *Injection) hookPartition(ctx context.Context, links *Links, clients bool) (Undo, bool, error) {
	if links != nil && len(links.PeerLinks()) > 0 {
		return nil, false, nil
	}
	p, isP := in.nem.t.Cluster.(targets.Partitioner)
	if !isP {
		return nil, false, nil
	}
	if clients {
		return nil, true, errors.New("the partition hook cuts only the links between nodes; clients: true needs proxies on them")
	}
	if err := p.Partition(ctx, in.Groups); err != nil {
		return p.HealPartitions, true, err
	}
	return p.HealPartitions, true, nil
}
