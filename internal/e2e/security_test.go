package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/internal/testbin"
	"github.com/faultline/faultline/internal/testenv"
)

// Control surfaces under attack by another local user: the attacker is
// `setpriv --reuid=65534 --regid=65534 --clear-groups curl ...` (user
// nobody) when this test runs as root with setpriv; elsewhere it is curl as
// this user without the token (a client that lacks the secret), and the
// test says so.

// nobody runs curl ARGS as another user (or, failing that, as this user
// without any token) and returns the HTTP status it printed ("000" when it
// could not connect).
func nobody(t *testing.T, args ...string) string {
	t.Helper()
	code, _ := nobodyAnswer(t, args...)
	return code
}

// nobodyAnswer is nobody that also returns the answer's body.
func nobodyAnswer(t *testing.T, args ...string) (code, body string) {
	t.Helper()
	curl := testenv.Command(t, "curl", "apt-get install curl")
	argv := append([]string{curl, "-s", "-w", "\n%{http_code}", "-m", "5"}, args...)
	if setpriv, err := exec.LookPath("setpriv"); err == nil && os.Geteuid() == 0 {
		argv = append([]string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"}, argv...)
	} else {
		t.Logf("not root or no setpriv: the attacker is this user without the token")
	}
	out, _ := exec.Command(argv[0], argv[1:]...).Output()
	o := strings.TrimSpace(string(out))
	i := strings.LastIndexByte(o, '\n')
	return o[i+1:], o[:max(i, 0)]
}

// startBin starts the faultline binary with args and extra environment,
// stopped (SIGTERM) at the end of the test.
func startBin(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	bin, err := testbin.Build()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return cmd
}

// get does GET url with an optional bearer token and returns the status.
func get(url, token string) int {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls GET url (with token) until it answers 200.
func waitFor(t *testing.T, url, token string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for get(url, token) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer 200", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notOnCommandLine checks that what `ps` shows of pid lacks secret.
func notOnCommandLine(t *testing.T, pid int, secret string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the token is on the command line of pid %d: %q", pid, b)
	}
	if out, err := exec.Command("ps", "-eo", "args").Output(); err == nil && strings.Contains(string(out), secret) {
		t.Errorf("ps shows the token")
	}
}

func token(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestProxyAPIRefusesOtherUsers: `faultline proxy` with its token in
// FAULTLINE_PROXY_TOKEN (as the Docker runtime runs it) refuses another
// user's requests, reads and writes alike (the attack: a 900 ms
// latency toxic), and serves the token's holder.
func TestProxyAPIRefusesOtherUsers(t *testing.T) {
	tok := token(t)
	p := testenv.FreePorts(t, 2)
	api := fmt.Sprintf("127.0.0.1:%d", p[0])
	cmd := startBin(t, []string{"FAULTLINE_PROXY_TOKEN=" + tok}, "proxy", "--listen", api)
	waitFor(t, "http://"+api+"/version", tok)
	notOnCommandLine(t, cmd.Process.Pid, tok)
	create := fmt.Sprintf(`{"name":"victim","listen":"127.0.0.1:%d","upstream":"127.0.0.1:1","enabled":true}`, p[1])
	for _, attack := range [][]string{
		{"http://" + api + "/proxies"},
		{"http://" + api + "/version"},
		{"-X", "POST", "-d", create, "http://" + api + "/proxies"},
		{"-X", "POST", "-d", `{}`, "http://" + api + "/reset"},
		{"-H", "Authorization: Bearer guessed", "http://" + api + "/proxies"},
	} {
		if code := nobody(t, attack...); code != "401" {
			t.Errorf("another user's curl %v: HTTP %s, want 401", attack, code)
		}
	}
	// The holder of the token creates a proxy; another user cannot slow it.
	req, _ := http.NewRequest("POST", "http://"+api+"/proxies", strings.NewReader(create))
	req.SetBasicAuth("faultline", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create a proxy with the token: %v %v", resp, err)
	}
	resp.Body.Close()
	toxic := `{"name":"evil","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":900}}`
	if code := nobody(t, "-X", "POST", "-d", toxic, "http://"+api+"/proxies/victim/toxics"); code != "401" {
		t.Errorf("another user adding a 900 ms latency toxic: HTTP %s, want 401", code)
	}
	req, _ = http.NewRequest("GET", "http://"+api+"/proxies/victim/toxics", nil)
	req.SetBasicAuth("faultline", tok)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		sc := bufio.NewScanner(resp.Body)
		sc.Scan()
		resp.Body.Close()
		if got := strings.TrimSpace(sc.Text()); got != "[]" {
			t.Errorf("toxics on the proxy after the attack: %s, want none", got)
		}
	}
}

// TestNodeRefusesOtherUsers: a reference node started with its run's
// token in FAULTLINE_NODE_TOKEN (as the runtimes start them) refuses
// another user on its client and admin APIs: no status, no writes, no
// clock changes, no local reads; the token's holder is served. A node
// started by hand without the token is open, as before.
func TestNodeRefusesOtherUsers(t *testing.T) {
	tok := token(t)
	p := testenv.FreePorts(t, 6)
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(p[i]) }
	node := func(env []string, first int, id string) *exec.Cmd {
		return startBin(t, env, "node", "--system", "raftkv", "--id", id,
			"--listen", addr(first), "--admin", addr(first+1), "--peer-listen", addr(first+2),
			"--data", filepath.Join(t.TempDir(), id))
	}
	cmd := node([]string{"FAULTLINE_NODE_TOKEN=" + tok}, 0, "n1")
	client, admin := "http://"+addr(0), "http://"+addr(1)
	waitFor(t, admin+"/admin/status", tok)
	notOnCommandLine(t, cmd.Process.Pid, tok)
	for _, attack := range [][]string{
		{admin + "/admin/status"},
		{admin + "/admin/kv/k"},
		{"-X", "POST", "-d", `{"offset_ms": 3600000}`, admin + "/admin/clock"},
		{client + "/kv/k"},
		{"-X", "PUT", "-d", `{"value": "evil"}`, client + "/kv/k"},
		{"-X", "POST", "-d", `{"from": null, "to": "evil"}`, client + "/kv/k/cas"},
		{"-H", "Authorization: Bearer guessed", admin + "/admin/status"},
		{"-u", "faultline:guessed", client + "/kv/k"},
	} {
		if code := nobody(t, attack...); code != "401" {
			t.Errorf("another user's curl %v: HTTP %s, want 401", attack, code)
		}
	}
	if code := get(admin+"/admin/clock", tok); code != 200 {
		t.Errorf("GET /admin/clock with the token: %d", code)
	}

	node(nil, 3, "h1")
	waitFor(t, "http://"+addr(4)+"/admin/status", "")
	if code := nobody(t, "http://"+addr(4)+"/admin/status"); code != "200" {
		t.Errorf("a node started by hand without a token: HTTP %s to anyone, want 200 (open)", code)
	}
}

// TestCleanRefusesEmptyRun: `faultline clean --run ""` names no run; it
// used to remove every run.
func TestCleanRefusesEmptyRun(t *testing.T) {
	code, out := faultline(t, time.Minute, "clean", "--run", "")
	if code != 64 || !strings.Contains(out, "--run") {
		t.Errorf("clean --run \"\": exit %d, want 64 naming --run\n%s", code, out)
	}
}

// labelsOfOwner returns docker --label arguments for a run owned by pid
// (with its start time) on this machine.
func labelsOfOwner(t *testing.T, run string, pid int) []string {
	t.Helper()
	host, _ := os.Hostname()
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return []string{
		"--label", "faultline=1", "--label", "faultline.run=" + run,
		"--label", "faultline.owner.host=" + host, "--label", "faultline.owner.boot=" + strings.TrimSpace(string(boot)),
		"--label", "faultline.owner.pid=" + strconv.Itoa(pid), "--label", "faultline.owner.start=" + f[22-3],
	}
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestCleanLeavesLiveRunsAlone: `faultline clean`, with or without --run,
// leaves a Docker run in progress alone (the issue: it removed a live
// run's containers, and the run ended exit 4); the run then ends as it
// would have. The resources of a run whose faultline has exited (its pid
// reaped) are removed; --force removes a live one's.
func TestCleanLeavesLiveRunsAlone(t *testing.T) {
	requireDocker(t)
	// The run id starts with the run directory's name: a unique one finds
	// this run's containers by name.
	base := fmt.Sprintf("clean-live-%d", time.Now().UnixNano()%1e9)
	dir := filepath.Join(t.TempDir(), base)
	run, out := startRun(t, "examples/raft-basic.yaml", "--runtime", "docker", "--duration", "12s", "--rate", "100", "--out", dir, "--quiet")
	defer run.Process.Kill()
	var runID string
	deadline := time.Now().Add(2 * time.Minute)
	for runID == "" && time.Now().Before(deadline) {
		ids := docker(t, "ps", "--filter", "name=faultline-"+base+"-", "--format", `{{.Label "faultline.run"}}`)
		if ids != "" && strings.Count(ids, "\n") >= 3 { // the proxy and 3 nodes
			runID = strings.Fields(ids)[0]
		}
		time.Sleep(200 * time.Millisecond)
	}
	if runID == "" {
		t.Fatalf("the Docker run did not start its containers\n%s", out.String())
	}
	before := docker(t, "ps", "-q", "--filter", "label=faultline.run="+runID)

	// A dead run's leftovers, owned by a process that has exited.
	gone := exec.Command("sleep", "60")
	if err := gone.Start(); err != nil {
		t.Fatal(err)
	}
	deadLabels := labelsOfOwner(t, "dead-"+runID, gone.Process.Pid)
	gone.Process.Kill()
	gone.Wait()
	vol := "faultline-dead-" + runID + "-data"
	docker(t, append(append([]string{"volume", "create"}, deadLabels...), vol)...)
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", vol).Run() })

	code, cout := faultline(t, time.Minute, "clean", "--run", runID)
	if code != 0 || !strings.Contains(cout, "kept run "+runID) || strings.Contains(cout, "removed") {
		// Stop here: a clean that takes a live run would take every run
		// on this daemon without --run.
		t.Fatalf("clean --run LIVE: exit %d, want 0 keeping the run\n%s", code, cout)
	}
	code, cout = faultline(t, time.Minute, "clean")
	if code != 0 || !strings.Contains(cout, "kept run "+runID) || !strings.Contains(cout, "removed volume "+vol) {
		t.Errorf("clean: exit %d, want the live run kept and the dead run's volume removed\n%s", code, cout)
	}
	if after := docker(t, "ps", "-q", "--filter", "label=faultline.run="+runID); after != before {
		t.Errorf("the live run's containers changed under clean:\nbefore %s\nafter %s", before, after)
	}
	if err := run.Wait(); err != nil {
		t.Errorf("the run cleaned around: %v, want exit 0\n%s", err, out.String())
	}
	if l := leftovers(t); strings.Contains(l, runID) {
		t.Errorf("left behind by the run:\n%s", l)
	}

	// --force removes a run whose faultline lives (here: this test).
	forced := "forced-" + runID
	docker(t, append(append([]string{"volume", "create"}, labelsOfOwner(t, forced, os.Getpid())...), "faultline-"+forced)...)
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", "faultline-"+forced).Run() })
	if code, cout := faultline(t, time.Minute, "clean", "--run", forced); code != 0 || !strings.Contains(cout, "kept run") {
		t.Errorf("clean of this live test's run: exit %d\n%s", code, cout)
	}
	if code, cout := faultline(t, time.Minute, "clean", "--run", forced, "--force"); code != 0 || !strings.Contains(cout, "removed volume faultline-"+forced) {
		t.Errorf("clean --force: exit %d, want the volume removed\n%s", code, cout)
	}
}

// listeningPorts returns the TCP ports pid listens on (from /proc: its
// socket inodes, looked up in its network namespace's tcp tables).
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil {
				ports = append(ports, int(p))
			}
		}
	}
	return ports
}

// TestLocalRunProxyAPIRefusesOtherUsers: the attack on a local
// run. While `faultline run` goes, another user tries every port the
// faultline process listens on (the embedded Toxiproxy API among them) to
// read the proxies and add a 900 ms latency toxic: every try is refused,
// and the run ends with no toxic for its heal to remove.
func TestLocalRunProxyAPIRefusesOtherUsers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	run, out := startRun(t, "examples/raft-basic.yaml", "--duration", "6s", "--rate", "100", "--out", dir)
	defer run.Process.Kill()
	waitOutput(out, "main:", 90*time.Second)
	ports := listeningPorts(t, run.Process.Pid)
	if len(ports) < 4 { // the API and a proxy per link, at least
		t.Fatalf("faultline listens on %v: the test would prove nothing\n%s", ports, out.String())
	}
	toxic := `{"name":"evil","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":900}}`
	apis := 0
	for _, p := range ports {
		base := "http://127.0.0.1:" + strconv.Itoa(p)
		// The nodes behind the client-link proxies answer 401 too (they
		// want the token): only Toxiproxy's own refusal counts.
		code, body := nobodyAnswer(t, base+"/version")
		if code == "401" && strings.Contains(body, "Toxiproxy API requires") {
			apis++
		}
		if code == "200" {
			t.Errorf("port %d answers GET /version to another user: the Toxiproxy API is open", p)
		}
		for _, proxy := range []string{"client_to_n1", "n1_to_n2"} {
			if code := nobody(t, "-X", "POST", "-d", toxic, base+"/proxies/"+proxy+"/toxics"); code == "200" {
				t.Errorf("another user added a toxic to %s through port %d", proxy, p)
			}
		}
	}
	if apis != 1 {
		t.Errorf("%d of faultline's ports answered like a Toxiproxy API that wants a token (401), want exactly 1", apis)
	}
	if err := run.Wait(); err != nil {
		t.Errorf("the run: %v, want exit 0\n%s", err, out.String())
	}
	h, err := os.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(h), "\n") {
		if strings.Contains(line, `"f":"heal"`) && !strings.Contains(line, `"toxics_removed":0`) {
			t.Errorf("the heal removed toxics nobody planned: %s", line)
		}
	}
}
