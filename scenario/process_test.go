package scenario

import (
	"testing"

	"github.com/faultline/faultline/targets"
)

// proc is a process target over `true` (found in PATH everywhere) spoken
// to with the http adapter; extra is appended under the role.
func proc(extra string) string {
	return "system: process\nclient: http\nroles:\n  member:\n    nodes: 3\n    command: [true, \"--id={{.ID}}\"]\n    ready: tcp\n" + extra
}

func TestProcessTargetParses(t *testing.T) {
	s, err := Parse("p.yaml", []byte(proc("    peers: dial\n    stop_signal: SIGINT\n    stop_grace: 3s\n    env: {A: \"{{.Index}}\"}\n")))
	if err != nil {
		t.Fatal(err)
	}
	if s.sys.Name != targets.ProcessSystem || !s.sys.PeerLinks || s.sys.PeerNames {
		t.Errorf("system %s PeerLinks %v PeerNames %v, want process with peer links (peers: dial)", s.sys.Name, s.sys.PeerLinks, s.sys.PeerNames)
	}
	ids := s.NodeIDs()
	if len(ids) != 3 || ids[0] != "n1" {
		t.Errorf("node ids %v, want n1..n3", ids)
	}
	p := s.NodeSpecs()[0].Process
	if p == nil || p.Path == "" || p.Signal().String() != "interrupt" || p.Grace().Seconds() != 3 {
		t.Fatalf("process spec %+v", p)
	}
	argv, env, _, err := p.Render(targets.SampleProcessVars(3, 2))
	if err != nil || argv[1] != "--id=n2" || len(env) != 1 || env[0] != "A=2" {
		t.Errorf("render: %q %q %v", argv, env, err)
	}
}

func TestProcessTargetErrors(t *testing.T) {
	cases := []struct {
		name, src   string
		line, col   int
		field, says string
	}{
		{"no roles", "system: process\nclient: http\n", 1, 9, "roles", "needs its roles"},
		{"no client", "system: process\nroles:\n  member: {command: [true], ready: tcp}\n", 1, 9, "client", "client adapter"},
		{"no command", "system: process\nclient: http\nroles:\n  member: {nodes: 3, ready: tcp}\n", 4, 11, "roles.member.command", "command that starts a node"},
		{"unknown template field", proc("")[:len(proc(""))-len("    ready: tcp\n")] + "    ready: tcp\n    env: {X: \"{{.Nope}}\"}\n", 8, 14, "roles.member.env.X", ".Nope"},
		{"bad template", "system: process\nclient: http\nroles:\n  member:\n    command: [true, \"{{.ID\"]\n    ready: tcp\n", 5, 21, "roles.member.command[1]", "template"},
		{"binary not found", "system: process\nclient: http\nroles:\n  member:\n    command: [no-such-binary-for-faultline]\n    ready: tcp\n", 5, 15, "roles.member.command[0]", "not found in PATH"},
		{"bad probe", proc("")[:len(proc(""))-len("    ready: tcp\n")] + "    ready: {probe: http}\n", 7, 12, "roles.member.ready.path", "path"},
		{"bad signal", proc("    stop_signal: SIGFOO\n"), 8, 18, "roles.member.stop_signal", "SIGTERM"},
		{"bad peers", proc("    peers: everyone\n"), 8, 12, "roles.member.peers", "dial"},
		{"process keys on raftkv", "system: raftkv\nroles:\n  node: {command: [x]}\n", 3, 9, "roles.node", "process targets"},
		{"adapter without ping", "system: process\nclient: http\nroles:\n  member:\n    command: [true]\n    ready: adapter\n", 6, 12, "roles.member.ready", "no ping"},
		{"bug switch", proc("    bugs: [stale-read]\n"), 8, 12, "roles.member.bugs[0]", "no bug switch"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantFieldError(t, c.src, c.line, c.col, c.field, c.says)
		})
	}
}
