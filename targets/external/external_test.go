package external

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/targets"
)

func start(t *testing.T, hooks targets.Hooks) (*Cluster, string) {
	t.Helper()
	dir := t.TempDir()
	spec := targets.ClusterSpec{
		System: targets.ExternalSystem, Dir: dir,
		Nodes: []targets.NodeSpec{{ID: "n1", Role: "member"}, {ID: "n2", Role: "member"}},
		External: &targets.ExternalSpec{
			Nodes: []targets.ExternalNode{{ID: "n1", Role: "member", Client: "127.0.0.1:1"}, {ID: "n2", Role: "member", Client: "127.0.0.1:2"}},
			Hooks: hooks,
		},
	}
	c, err := (&Runtime{}).Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*Cluster), dir
}

// Hooks run with the node's variables, their results are noted with the
// fault and logged; a failure names the hook, the node and the exit
// status; a hook that outlives its timeout is killed.
func TestHooks(t *testing.T) {
	out := filepath.Join(t.TempDir(), "did")
	sh := func(s string) targets.Hook { return targets.Hook{Run: s} }
	c, dir := start(t, targets.Hooks{
		Kill:      sh(`echo "kill {{.ID}} {{.Role}} {{.Client}} $FAULTLINE_NODE" >> ` + out),
		Start:     sh(`test -z "$FAULTLINE_DRY_RUN" || exit 0; echo "start {{.ID}}" >> ` + out + `; [ {{.ID}} = n1 ] || { echo boom; exit 3; }`),
		Partition: sh(`echo "partition {{.GroupsText}} {{len .Groups}}" >> ` + out),
		Heal:      sh(`echo heal >> ` + out),
		Pause:     sh(`sleep 5`),
		Resume:    sh(`true`),
		Timeout:   300 * time.Millisecond,
	})
	var notes []any
	ctx := targets.WithNotes(context.Background(), func(k string, v any) { notes = append(notes, v) })
	if err := c.Kill(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	err := c.Start(ctx, "n2")
	if err == nil || !strings.Contains(err.Error(), "hook start for node n2 failed (exit status 3): boom") {
		t.Errorf("failing start: %v", err)
	}
	if err := c.Partition(ctx, [][]string{{"n1"}, {"n2"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.HealPartitions(ctx); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err = c.Pause(ctx, "n1")
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(t0) > 3*time.Second {
		t.Errorf("a hook past its timeout: %v after %s", err, time.Since(t0))
	}
	did, _ := os.ReadFile(out)
	want := "kill n1 member 127.0.0.1:1 n1\nstart n1\nstart n2\npartition n1 n2 2\nheal\n"
	if string(did) != want {
		t.Errorf("the hooks did:\n%s\nwant:\n%s", did, want)
	}
	if len(notes) != 6 {
		t.Errorf("%d notes, want one per hook run (6): %v", len(notes), notes)
	} else if r := notes[2].(HookResult); r.Hook != "start" || r.Node != "n2" || r.Exit != 3 || !strings.Contains(r.Output, "boom") {
		t.Errorf("note of the failed start: %+v", r)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "nodes", "hooks.log"))
	for _, w := range []string{"hook kill for node n1: echo", "exit 3", "(timed out)", "hook partition"} {
		if !strings.Contains(string(log), w) {
			t.Errorf("hooks.log lacks %q:\n%s", w, log)
		}
	}
}

// The preflight runs each hook's check form for every node: Check when
// given, else the hook with FAULTLINE_DRY_RUN=1; a failure names the hook
// and the node.
func TestPreflight(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "killed")
	c, _ := start(t, targets.Hooks{
		Kill:  targets.Hook{Run: `[ "$FAULTLINE_DRY_RUN" = 1 ] && exit 0; touch ` + marker},
		Start: targets.Hook{Run: `false`, Check: `[ {{.ID}} = n1 ]`},
	})
	err := c.Preflight(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hook start (check) for node n2 failed") {
		t.Errorf("preflight: %v", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the preflight ran the kill hook for real")
	}
}

// Capabilities follow the hooks.
func TestCapabilitiesOf(t *testing.T) {
	r := &Runtime{}
	c := r.CapabilitiesOf(targets.ClusterSpec{External: &targets.ExternalSpec{Hooks: targets.Hooks{
		Kill: targets.Hook{Run: "x"}, Start: targets.Hook{Run: "x"}, Partition: targets.Hook{Run: "x"}, Heal: targets.Hook{Run: "x"}}}})
	if !c.Process || c.Pause || !c.Partition || c.Links != targets.ClientLinks {
		t.Errorf("capabilities %+v", c)
	}
}
