package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/history"
)

// The generated history is linearizable for both checkers and has the
// info and failed ops asked for; a single read changed to a value nobody
// wrote makes Porcupine (through the bench's model) and faultline's
// checker both find it illegal. (The corrupted history has no info ops:
// proving a history illegal, Porcupine must try every order of the info
// writes it may place anywhere, which it does not finish in minutes.)
func TestGeneratedHistoryBothCheckers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.jsonl")
	st, err := genHistoryFile(path, genConfig{Ops: 6000, Keys: 5, Workers: 8, Seed: 3, InfoProb: 0.03, FailProb: 0.03})
	if err != nil {
		t.Fatal(err)
	}
	if st.Ops != 6000 || st.Info == 0 || st.Fail == 0 || st.Mismatch == 0 {
		t.Fatalf("stats %+v: want 6000 ops with info, fail and mismatch among them", st)
	}
	if got := rawVerdict(t, path); got != porcupine.Ok {
		t.Fatalf("Porcupine directly: %v, want Ok", got)
	}
	if got := faultlineVerdict(t, path); got != checkers.Valid {
		t.Fatalf("faultline's checker: %v, want valid", got)
	}

	// Corrupt the last ok read of a value: it now reads 999999999, never written.
	path = filepath.Join(dir, "noinfo.jsonl")
	if _, err := genHistoryFile(path, genConfig{Ops: 3000, Keys: 5, Workers: 8, Seed: 3, FailProb: 0.03}); err != nil {
		t.Fatal(err)
	}
	if got := rawVerdict(t, path); got != porcupine.Ok {
		t.Fatalf("Porcupine directly, no info ops: %v, want Ok", got)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	bad := -1
	for i := len(lines) - 1; i > 0; i-- {
		if strings.Contains(lines[i], `"type":"ok"`) && strings.Contains(lines[i], `"f":"get"`) && !strings.Contains(lines[i], `"value":null`) {
			bad = i
			break
		}
	}
	if bad < 0 {
		t.Fatal("no ok read of a value in the history")
	}
	e := history.Event{}
	if err := e.UnmarshalJSON([]byte(lines[bad])); err != nil {
		t.Fatal(err)
	}
	e.Value = []byte("999999999")
	lines[bad] = string(e.AppendJSON(nil))
	badPath := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(badPath, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := rawVerdict(t, badPath); got != porcupine.Illegal {
		t.Fatalf("Porcupine directly on a read of a value never written: %v, want Illegal", got)
	}
	if got := faultlineVerdict(t, badPath); got != checkers.Invalid {
		t.Fatalf("faultline's checker on a read of a value never written: %v, want invalid", got)
	}
}

func rawVerdict(t *testing.T, path string) porcupine.CheckResult {
	t.Helper()
	ops, dropped, err := readRegisterOps(path)
	if err != nil {
		t.Fatal(err)
	}
	if dropped == 0 {
		t.Fatal("no failed read or write was dropped")
	}
	return porcupine.CheckOperationsTimeout(registerModel, ops, time.Minute)
}

func faultlineVerdict(t *testing.T, path string) checkers.Verdict {
	t.Helper()
	_, evs, err := history.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res := checkers.Linearizability{}.Check(context.Background(), checkers.Input{Events: evs, Budget: time.Minute})
	return res.Verdict
}

// Info ops, as the raw model reads them, return at infinity and accept any
// state; a mismatch cas observes that the register did not hold "from".
func TestRegisterModelSteps(t *testing.T) {
	step := registerModel.Step
	for _, c := range []struct {
		name  string
		state string
		in    regInput
		out   regOutput
		ok    bool
		next  string
	}{
		{"read what is there", "1", regInput{kind: regGet}, regOutput{val: "1"}, true, "1"},
		{"read something else", "1", regInput{kind: regGet}, regOutput{val: "2"}, false, "1"},
		{"info read", "1", regInput{kind: regGet}, regOutput{unknown: true}, true, "1"},
		{"put", "1", regInput{kind: regPut, val: "3"}, regOutput{}, true, "3"},
		{"cas that holds", "1", regInput{kind: regCAS, from: "1", val: "4"}, regOutput{}, true, "4"},
		{"ok cas that does not hold", "2", regInput{kind: regCAS, from: "1", val: "4"}, regOutput{}, false, "2"},
		{"info cas that does not hold", "2", regInput{kind: regCAS, from: "1", val: "4"}, regOutput{unknown: true}, true, "2"},
		{"mismatch where it differs", "2", regInput{kind: regCAS, from: "1", val: "4"}, regOutput{mismatch: true}, true, "2"},
		{"mismatch where it holds", "1", regInput{kind: regCAS, from: "1", val: "4"}, regOutput{mismatch: true}, false, "1"},
	} {
		ok, next := step(c.state, c.in, c.out)
		if ok != c.ok || (ok && next.(string) != c.next) {
			t.Errorf("%s: got (%v, %v), want (%v, %v)", c.name, ok, next, c.ok, c.next)
		}
	}
}

// The truth is computed from the schedule: requests sent late (here held
// behind a 0.5 s stall) count from when they were due, whatever the offset
// of the file's clock; requests never sent count as answered at the end.
func TestTrueLatency(t *testing.T) {
	const rate = 100.0
	dur := 10 * time.Second
	offset := 37 * time.Millisecond // the file's origin is not the schedule's start
	var reqs []request
	for k := 0; k < 1000; k++ {
		due := time.Duration(k) * 10 * time.Millisecond
		sent := due + 100*time.Microsecond
		done := sent + 2*time.Millisecond
		if due >= 3*time.Second && due < 3500*time.Millisecond { // held until 3.5 s
			sent, done = 3500*time.Millisecond, 3502*time.Millisecond
		}
		reqs = append(reqs, request{Sent: sent + offset, Done: done + offset, OK: true})
	}
	tr := trueLatency(reqs, rate, dur)
	if tr.Scheduled != 1000 || tr.Sent != 1000 || tr.LowerBound {
		t.Fatalf("%+v: want 1000 scheduled and sent", tr)
	}
	// The schedule's start is taken where the smallest dispatch lag (0.1
	// ms here) is zero, so each latency is 0.1 ms short: p50 is 2 ms. The
	// 99th percentile (the 990th of 1000) is the request due at 3.10 s and
	// answered at 3.502 s: 402 ms, less 0.1.
	if want := 401.9; math.Abs(tr.P99us/1e3-want) > 0.01 {
		t.Errorf("true p99 %.3f ms, want %.1f", tr.P99us/1e3, want)
	}
	if want := 2.0; math.Abs(tr.P50us/1e3-want) > 0.01 {
		t.Errorf("true p50 %.3f ms, want %.1f", tr.P50us/1e3, want)
	}
	// Only the first 900 sent: the 100 never sent count up to the last
	// answer, and the p99 is a lower bound; one never sent changes nothing.
	tr = trueLatency(reqs[:900], rate, dur)
	if tr.Scheduled != 1000 || tr.Sent != 900 || !tr.LowerBound {
		t.Fatalf("%+v: want 1000 scheduled, 900 sent, a lower bound", tr)
	}
	if tr = trueLatency(reqs[:999], rate, dur); tr.LowerBound || math.Abs(tr.P99us/1e3-401.9) > 0.01 {
		t.Fatalf("%+v: one of 1000 never sent; want the same p99, not a lower bound", tr)
	}
}

// The server reads whole requests (a body by its length), answers each on
// the same connection after the service time, and refuses chunked bodies.
func TestServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const service = 20 * time.Millisecond
	go serve(ln, service)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	req := "POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /items?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2*len(serverAnswer))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(t0); elapsed < 2*service {
		t.Errorf("two requests answered in %v, less than two service times", elapsed)
	}
	if want := serverAnswer + serverAnswer; string(buf) != want {
		t.Fatalf("answers %q, want %q", buf, want)
	}
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(c)
	if !bytes.HasPrefix(rest, []byte("HTTP/1.1 501")) {
		t.Errorf("a chunked request got %q, want a 501 and the connection closed", rest)
	}

	resp, err := http.Get("http://" + ln.Addr().String() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `{"ok":true}` {
		t.Errorf("net/http client: %s %q", resp.Status, body)
	}
}

// Both load generators run against a real server, write their output
// files, and the harness reads every request back from them.
func TestLoadBothTools(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, time.Millisecond)
	addr := ln.Addr().String()
	dir := t.TempDir()
	const rate, dur = 200.0, 500 * time.Millisecond

	rep, err := loadFaultline(addr, rate, dur, filepath.Join(dir, "f.jsonl"), 8, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reqs, err := readFaultlineRequests(filepath.Join(dir, "f.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(reqs)) != rep.Ops || rep.OK != rep.Ops || rep.Ops < 90 || rep.Ops > 101 {
		t.Errorf("faultline: %+v, %d requests in its history; want about 100, all ok", rep, len(reqs))
	}
	for _, r := range reqs {
		if !r.OK || r.Done < r.Sent {
			t.Fatalf("faultline request %+v", r)
		}
	}

	if err := loadVegeta(addr, rate, dur, filepath.Join(dir, "v.gob"), 0, 5*time.Second, false); err != nil {
		t.Fatal(err)
	}
	reqs, m, err := readVegetaResults(filepath.Join(dir, "v.gob"))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) < 90 || len(reqs) > 102 || int(m.Requests) != len(reqs) || m.Success != 1 {
		t.Errorf("vegeta: %d requests, metrics %d requests, success %v; want about 100, all ok", len(reqs), m.Requests, m.Success)
	}
	if m.Latencies.P50 < time.Millisecond {
		t.Errorf("vegeta's p50 %v is below the server's 1 ms service time", m.Latencies.P50)
	}
}

func TestReadClusterStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	os.WriteFile(path, []byte(`{"phases":[{"name":"setup","start_ns":1000,"end_ns":800001000},{"name":"warmup","start_ns":800500000,"end_ns":1200000000},{"name":"main","start_ns":1200000000,"end_ns":2200000000}]}`), 0o644)
	cs, err := readClusterStart(path)
	if err != nil {
		t.Fatal(err)
	}
	if cs.Setup != 800*time.Millisecond || cs.Warmup != 399500*time.Microsecond || cs.Ready != 1199999*time.Microsecond {
		t.Errorf("%+v", cs)
	}
	os.WriteFile(path, []byte(`{"phases":[{"name":"setup","start_ns":0,"end_ns":1}]}`), 0o644)
	if _, err := readClusterStart(path); err == nil || !strings.Contains(err.Error(), "warmup") {
		t.Errorf("a run that stopped in setup: %v, want an error naming the phases", err)
	}
}

func TestMedianAndFormat(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median of 3 values: %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median of 4 values: %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	for v, want := range map[float64]string{1234567: "1,234,567", 123.4: "123", 12.34: "12.3", 1.234: "1.23", 0.9996: "1.000", 0.01234: "0.0123", 0: "0"} {
		if got := formatNum(v); got != want {
			t.Errorf("formatNum(%v) = %q, want %q", v, got, want)
		}
	}
	for v, want := range map[float64]string{1e3: "1k", 2e5: "200k", 1e6: "1M", 1500: "1,500"} {
		if got := rateName(v); got != want {
			t.Errorf("rateName(%v) = %q, want %q", v, got, want)
		}
	}
}
