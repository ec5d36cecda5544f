package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// porcupineReport is what `bench porcupine` prints.
type porcupineReport struct {
	Verdict string `json:"verdict"` // ok, illegal or unknown (timeout)
	Ops     int    `json:"ops"`     // operations checked
	Dropped int    `json:"dropped"` // failed reads and writes, dropped
	Keys    int    `json:"keys"`
}

// cmdPorcupine is `bench porcupine FILE`: the small program a user would
// write to check a KV history with Porcupine directly, the baseline of
// `faultline check --checkers linearizability`. It reads the JSON Lines
// with encoding/json, pairs each client's invoke with its completion, and
// checks a register per key (Porcupine's Partition) with the model of
// faultline's design: an ok op took effect inside its interval; an info op
// (or one never completed) returns at infinity with an output the model
// accepts in any state (an info write may take effect or not: placed
// last, it changes nothing); failed reads and failed writes are dropped;
// a cas that failed with "mismatch" observed that the register did not
// hold its "from". Values are compared as their JSON text as written
// (enough for the histories genhist writes: numbers and null).
func cmdPorcupine(args []string) error {
	fs := flag.NewFlagSet("porcupine", flag.ContinueOnError)
	timeout := fs.Duration("timeout", 10*time.Minute, "give up (verdict unknown) after this long; 0: never")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("want one history file")
	}
	ops, dropped, err := readRegisterOps(fs.Arg(0))
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for _, o := range ops {
		keys[o.Input.(regInput).key] = true
	}
	r := porcupine.CheckOperationsTimeout(registerModel, ops, *timeout)
	verdict := map[porcupine.CheckResult]string{porcupine.Ok: "ok", porcupine.Illegal: "illegal", porcupine.Unknown: "unknown"}[r]
	return printJSON(porcupineReport{Verdict: verdict, Ops: len(ops), Dropped: dropped, Keys: len(keys)})
}

// Register operation kinds.
const (
	regGet = iota
	regPut
	regCAS
)

type regInput struct {
	kind int
	key  string
	val  string // put: written; cas: "to"
	from string // cas
}

type regOutput struct {
	val      string // get: what was read
	unknown  bool   // info: any output
	mismatch bool   // cas failed with "mismatch"
}

// registerModel is a register per key, its state the JSON text of its
// value ("null": absent).
var registerModel = porcupine.Model{
	Partition: func(ops []porcupine.Operation) [][]porcupine.Operation {
		idx := map[string]int{}
		var out [][]porcupine.Operation
		for _, o := range ops {
			k := o.Input.(regInput).key
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				out = append(out, nil)
			}
			out[i] = append(out[i], o)
		}
		return out
	},
	Init: func() any { return "null" },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(string), input.(regInput), output.(regOutput)
		switch in.kind {
		case regGet:
			return out.unknown || s == out.val, s
		case regPut:
			return true, in.val
		}
		if out.mismatch {
			return s != in.from, s
		}
		if s == in.from {
			return true, in.val
		}
		return out.unknown, s // an info cas that found another value did nothing
	},
}

// line is one history line, as the small program reads it.
type line struct {
	Type    string          `json:"type"`
	Process json.RawMessage `json:"process"`
	Time    int64           `json:"time"`
	F       string          `json:"f"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Error   string          `json:"error"`
}

// readRegisterOps reads the history at path into Porcupine operations, and
// counts the dropped ones.
func readRegisterOps(path string) ([]porcupine.Operation, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	open := map[string]line{} // process -> its invoke
	var ops []porcupine.Operation
	dropped := 0
	for n := 1; sc.Scan(); n++ {
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		if l.Type == "header" || len(l.Process) == 0 || l.Process[0] == '"' {
			continue // the header, the nemesis and the observer
		}
		p := string(l.Process)
		if l.Type == "invoke" {
			open[p] = l
			continue
		}
		inv, ok := open[p]
		if !ok {
			return nil, 0, fmt.Errorf("%s:%d: a completion of process %s without its invoke", path, n, p)
		}
		delete(open, p)
		op, keep, err := registerOp(inv, &l)
		if err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %v", path, n, err)
		}
		if !keep {
			dropped++
			continue
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, 0, err
	}
	for _, inv := range open { // never completed: info
		op, _, err := registerOp(inv, nil)
		if err != nil {
			return nil, 0, err
		}
		ops = append(ops, op)
	}
	return ops, dropped, nil
}

// registerOp makes the operation of an invoke and its completion (nil:
// none, as info); keep is false for a failed read or write.
func registerOp(inv line, comp *line) (op porcupine.Operation, keep bool, err error) {
	typ := "info"
	if comp != nil {
		typ = comp.Type
	}
	in := regInput{key: inv.Key}
	out := regOutput{unknown: typ == "info"}
	switch inv.F {
	case "get":
		in.kind = regGet
		if typ == "fail" {
			return op, false, nil
		}
		if typ == "ok" {
			out.val = compact(comp.Value)
		}
	case "put":
		in.kind, in.val = regPut, compact(inv.Value)
		if typ == "fail" {
			return op, false, nil
		}
	case "cas":
		in.kind = regCAS
		var c struct{ From, To json.RawMessage }
		if err := json.Unmarshal(inv.Value, &c); err != nil || c.From == nil || c.To == nil {
			return op, false, fmt.Errorf("cas value %s: want {\"from\":X,\"to\":Y}", inv.Value)
		}
		in.from, in.val = compact(c.From), compact(c.To)
		if typ == "fail" {
			if comp.Error != "mismatch" {
				return op, false, nil
			}
			out.mismatch = true
		}
	default:
		return op, false, fmt.Errorf("f %q: this program knows get, put and cas", inv.F)
	}
	ret := int64(math.MaxInt64)
	if !out.unknown {
		ret = comp.Time
	}
	return porcupine.Operation{Input: in, Call: inv.Time, Output: out, Return: ret}, true, nil
}

// compact returns v's JSON text without surrounding space.
func compact(v json.RawMessage) string { return string(bytes.TrimSpace(v)) }
