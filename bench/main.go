// Command bench measures faultline side by side with what a user would pick
// instead, in one run on one machine, and prints one table of figures for
// faultline, the peer and their ratio (issue 17):
//
//   - HTTP load: the http workload against vegeta (as a library, its results
//     encoder writing to a file as faultline writes its history), both
//     driving one loopback server in a separate process that answers after
//     a fixed service time; rising rates, then a 1 s server stall.
//   - Checker: `faultline check --checkers linearizability` against a small
//     program calling Porcupine directly on the same history files.
//   - Pacer: the open-loop pacer at 1k to 1M ops/s against a no-op client,
//     with the closed-loop maximum as the baseline; and the http workload's
//     closed loop against a no-op HTTP server, as a fraction of what a
//     minimal Go client gets through the same loopback.
//   - Cluster start: a local 3-node raftkv, and Docker (3 nodes and the
//     proxy) with the image already built.
//
// Usage: bench/run [--quick] [--only PARTS] (the script builds faultline and
// this program, then runs `bench all`). The other subcommands are the child
// processes `all` starts; each measures one thing and prints one JSON
// object on stdout, so that the parent can take its CPU time and peak
// memory from the kernel (rusage) without counting its own.
//
// BENCH_CPUPROFILE=FILE writes a CPU profile of one subcommand to FILE
// (go tool pprof reads it): for finding where a child spends its time,
// e.g. BENCH_CPUPROFILE=/tmp/l.prof bench load --tool faultline ...
package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
)

// commands are the subcommands, by name.
var commands = map[string]struct {
	run  func(args []string) error
	help string
}{
	"all":       {cmdAll, "run every comparison and print the table"},
	"server":    {cmdServer, "a loopback HTTP/1.1 server answering after a fixed service time"},
	"load":      {cmdLoad, "one load run of faultline's http workload or of vegeta"},
	"pacer":     {cmdPacer, "one open- or closed-loop run of the pacer against a no-op client"},
	"minpacer":  {cmdMinPacer, "a minimal Go pacer handing ops to goroutines: the floor for dispatch lag"},
	"httpmax":   {cmdHTTPMax, "one closed-loop run against an HTTP server: faultline's http workload or a minimal Go client"},
	"genhist":   {cmdGenHist, "write a linearizable KV history (JSON Lines)"},
	"porcupine": {cmdPorcupine, "check a KV history with Porcupine directly"},
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]].run == nil {
		usage()
		os.Exit(64)
	}
	stop, err := profile(os.Getenv("BENCH_CPUPROFILE"))
	if err == nil {
		err = commands[os.Args[1]].run(os.Args[2:])
		if serr := stop(); err == nil {
			err = serr
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// profile starts a CPU profile into path (nothing when path is empty) and
// returns the function that ends it.
func profile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

func usage() {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: bench COMMAND [flags] (bench COMMAND -h lists its flags)\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-10s %s\n", n, commands[n].help)
	}
	fmt.Fprint(os.Stderr, b.String())
}
