package history

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

// ednTwins returns the EDN fixtures with the JSON Lines history each must
// read as: NAME.jsonl beside NAME.edn (written for the EDN reader), or the
// checkers' fixture of that name, whose EDN original NAME.edn rebuilds
// (the foreign-* histories, in Jepsen's shape).
func ednTwins(t testing.TB) map[string]string {
	t.Helper()
	edns, err := filepath.Glob(filepath.Join("testdata", "edn", "*.edn"))
	if err != nil || len(edns) == 0 {
		t.Fatalf("no EDN fixtures (%v)", err)
	}
	twins := map[string]string{}
	for _, e := range edns {
		base := strings.TrimSuffix(filepath.Base(e), ".edn")
		for _, j := range []string{strings.TrimSuffix(e, ".edn") + ".jsonl", filepath.Join("..", "checkers", "testdata", base+".jsonl")} {
			if _, err := os.Stat(j); err == nil {
				twins[e] = j
				break
			}
		}
		if twins[e] == "" {
			t.Fatalf("%s has no JSON Lines twin", e)
		}
	}
	return twins
}

// Every EDN fixture reads as the events of its JSON Lines twin: the same
// types, processes, times, functions, keys (a number key stays a number),
// values, errors and extra fields, on the same lines. The checkers'
// fixtures carry no index, so their EDN originals' :index is set aside.
func TestEDNReadsAsItsJSONLinesTwin(t *testing.T) {
	twins := ednTwins(t)
	if len(twins) < 7 {
		t.Fatalf("%d EDN fixtures, want the 4 written for the reader and the 3 rebuilt from checkers/testdata", len(twins))
	}
	for edn, jsonl := range twins {
		t.Run(filepath.Base(edn), func(t *testing.T) {
			evs, err := ReadEDNFile(edn)
			if err != nil {
				t.Fatal(err)
			}
			h, want, err := ReadFile(jsonl)
			if err != nil || h != nil {
				t.Fatalf("the twin %s: header %v, %v", jsonl, h, err)
			}
			if len(evs) != len(want) {
				t.Fatalf("%d events, the twin %s has %d", len(evs), jsonl, len(want))
			}
			foreign := strings.Contains(jsonl, "checkers")
			var clients, nemesis, info int
			for i := range evs {
				got := evs[i]
				if foreign {
					delete(got.Extra, "index")
					if len(got.Extra) == 0 {
						got.Extra = nil
					}
				}
				if a, b := got.AppendJSON(nil), want[i].AppendJSON(nil); !bytes.Equal(a, b) {
					t.Errorf("event %d reads as\n%s\nits twin is\n%s", i, a, b)
				}
				if got.Line != want[i].Line {
					t.Errorf("event %d is on line %d, its twin on %d", i, got.Line, want[i].Line)
				}
				if got.KeyIsNumber != want[i].KeyIsNumber {
					t.Errorf("event %d: key %s is a number: %v, in the twin %v", i, got.KeyID(), got.KeyIsNumber, want[i].KeyIsNumber)
				}
				switch {
				case got.Process == Nemesis:
					nemesis++
				case got.Type == Info:
					info++
				}
				if got.Process.IsClient() {
					clients++
				}
			}
			if clients == 0 || (!foreign && (nemesis == 0 || info == 0)) {
				t.Errorf("%d client events, %d nemesis events, %d info completions: the fixture should have all three", clients, nemesis, info)
			}
			// The detected format of each twin is its own.
			for path, wantF := range map[string]Format{edn: FormatEDN, jsonl: FormatJSONL} {
				h, evs2, f, err := ReadFileFormat(path, FormatAuto)
				if err != nil || f != wantF || len(evs2) != len(evs) || h != nil {
					t.Errorf("ReadFileFormat(%s, auto): format %q, %d events, header %v, %v; want %q, %d events", path, f, len(evs2), h, err, wantF, len(evs))
				}
			}
		})
	}
}

// The vector form and the one-map-per-line form of a history read alike;
// so do commas, comments, a byte order mark and a read that comes in
// pieces of one byte.
func TestEDNForms(t *testing.T) {
	lines := []string{
		`{:type :invoke, :f :write, :value [1 3], :time 0, :process 0, :index 0}`,
		`{:type :ok, :f :write, :value [1 3], :time 10, :process 0, :index 1}`,
		`{:type :invoke, :f :read, :value [1 nil], :time 20, :process 1, :index 2}`,
		`{:type :ok, :f :read, :value [1 3], :time 30, :process 1, :index 3}`,
	}
	perLine := strings.Join(lines, "\n") + "\n"
	want, err := ReadEDN(strings.NewReader(perLine), "a.edn")
	if err != nil || len(want) != 4 {
		t.Fatalf("%d events, %v", len(want), err)
	}
	for name, text := range map[string]string{
		"vector":          "[" + strings.Join(lines, "\n ") + "]\n",
		"commas":          strings.ReplaceAll(strings.Join(lines, ",\n"), ", ", ",,, "),
		"comments":        strings.Join(lines, " ; an op, {:type :ok} \"\n"),
		"bom":             "\xef\xbb\xbf" + perLine,
		"no final return": strings.TrimSuffix(perLine, "\n"),
		"spacing":         strings.ReplaceAll(strings.ReplaceAll(perLine, "{", "{ \t"), "}", "\r\n}"),
	} {
		var got []Event
		var err error
		if name == "bom" {
			got, err = ReadEDN(iotest.OneByteReader(strings.NewReader(text)), "a.edn")
		} else {
			got, err = ReadEDN(strings.NewReader(text), "a.edn")
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d events, want %d", name, len(got), len(want))
			continue
		}
		for i := range got {
			if a, b := got[i].AppendJSON(nil), want[i].AppendJSON(nil); !bytes.Equal(a, b) {
				t.Errorf("%s: event %d is %s, want %s", name, i, a, b)
			}
			if name != "spacing" && got[i].Line != want[i].Line {
				t.Errorf("%s: event %d on line %d, want %d", name, i, got[i].Line, want[i].Line)
			}
		}
	}
}

// Values the subset allows, and how each reads.
func TestEDNValues(t *testing.T) {
	for _, c := range []struct {
		op, key, value string
		keyNumber      bool
	}{
		{`{:type :ok, :f :read, :value -7, :process 0}`, "", `-7`, false},
		{`{:type :ok, :f :read, :value +7, :process 0}`, "", `7`, false},
		{`{:type :ok, :f :read, :value 1.5e-3, :process 0}`, "", `1.5e-3`, false},
		{`{:type :ok, :f :read, :value 123456789012345678901234567890, :process 0}`, "", `123456789012345678901234567890`, false},
		{`{:type :ok, :f :read, :value "a \"b\"\n\u00e9\ud83d\ude00 <&>", :process 0}`, "", `"a \"b\"\né😀 <&>"`, false},
		{`{:type :ok, :f :write, :value nil, :process 0}`, "", `null`, false},
		{`{:type :ok, :f :write, :value [-0 nil], :process 0}`, "0", `null`, true},
		{`{:type :ok, :f :write, :value ["ключ" 1], :process 0}`, "ключ", `1`, false},
		{`{:type :ok, :f :cas, :value ["1" ["a" nil]], :process 0}`, "1", `["a",null]`, false},
		{`{:type :info, :f :start, :value #{:a (1 2) {:b nil, 3 true, nil "x"}}, :process :nemesis}`, "", `["a",[1,2],{"b":null,"3":true,"nil":"x"}]`, false},
	} {
		evs, err := ReadEDN(strings.NewReader(c.op), "v.edn")
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %d events, %v", c.op, len(evs), err)
			continue
		}
		ev := evs[0]
		if ev.Key != c.key || ev.KeyIsNumber != c.keyNumber || string(ev.Value) != c.value {
			t.Errorf("%s: key %q (number %v), value %s; want key %q (number %v), value %s", c.op, ev.Key, ev.KeyIsNumber, ev.Value, c.key, c.keyNumber, c.value)
		}
	}
	evs, err := ReadEDN(strings.NewReader(`{:type :fail, :f :cas, :value [1 2], :process 3, :time 9, :error :mismatch}`), "v.edn")
	if err != nil || evs[0].Error != "mismatch" || !IsMismatch(evs[0].Type, evs[0].Error) || evs[0].Time != 9 || evs[0].Process != 3 {
		t.Errorf("a failed cas with :error :mismatch reads as %+v, %v; want a mismatch", evs, err)
	}
}

// Everything outside the subset is an error naming the file, the line and
// the column, and what was found there.
func TestEDNErrors(t *testing.T) {
	ok := `{:type :invoke, :f :read, :value nil, :process 0}` + "\n"
	for _, c := range []struct{ in, where, want string }{
		{`{:type :invoke, :f :read, :value nil, :process 0, :node "n1"}`, "1:51", "the key :node is outside the subset"},
		{ok + `{:type :invoke, :f :txn, :value [[:r 1 nil]], :process 1}`, "2:20", ":f :txn: faultline reads Jepsen's register workload"},
		{ok + `{:type :invoke :f :read :process 1}` + "\n" + `{:type :ok :f :read :value 1 :process 1 :time 1.5}`, "3:47", ":time 1.5: want an integer"},
		{`{:type :invoked, :f :read, :process 0}`, "1:8", ":type :invoked: want :invoke, :ok, :fail or :info"},
		{`{:type :ok, :f :read, :process -1}`, "1:32", ":process -1: want a non-negative integer (a client) or :nemesis"},
		{`{:type :ok, :f :read, :process :observer}`, "1:32", ":process :observer"},
		{`{:type :ok, :f :read, :value 1}`, "1:1", "the op map has no :process"},
		{`{:f :read, :value 1, :process 0}`, "1:1", "the op map has no :type"},
		{`{:type :ok, :value 1, :process 0}`, "1:1", "the op map has no :f"},
		{`{:type :ok, :f "read", :process 0}`, "1:16", `:f "read": want a keyword`},
		{`{:type :ok, :f :read, :process 0, :index -2}`, "1:42", ":index -2: want a non-negative integer"},
		{`{:type :ok, :f :read, :value [1 2 3], :process 0}`, "1:30", ":value [1 2 3] of a :read: a register's value is an integer"},
		{`{:type :ok, :f :read, :value {:a 1}, :process 0}`, "1:30", "a register's value"},
		{`{:type :ok, :f :read, :value :a, :process 0}`, "1:30", "a register's value"},
		{`{:type :ok, :f :read, :value [1 [2]], :process 0}`, "1:33", "[2] in the :value of a :read"},
		{`{:type :ok, :f :cas, :value 3, :process 0}`, "1:29", ":value 3 of a :cas: want [from to]"},
		{`{:type :ok, :f :cas, :value [1 [2 3 4]], :process 0}`, "1:32", "[2 3 4] in the :value of a :cas: a register's value is"},
		{`{:type :ok, :f :write, :value [:k 1], :process 0}`, "1:32", "the key :k of the tuple [:k 1]: a key is an integer or a string"},
		{`{:type :ok, :f :write, :value [1.5 1], :process 0}`, "1:32", "a key is an integer or a string"},
		{`{:type :ok, :f :write, :value [1 1], :process 0}` + "\n" + `{:type :ok, :f :write, :value 3, :process 1}`, "2:31", ":value 3 is a single register's value, but the op at line 1 has a [k v] tuple"},
		{`{:type :ok, :f :write, :value 3, :process 1}` + "\n" + `{:type :ok, :f :cas, :value [1 [1 2]], :process 0}`, "2:29", "is a [k v] tuple (independent keys), but the op at line 1 has a single register's value"},
		{`{"type" :ok, :f :read, :process 0}`, "1:2", `an op map's keys are keywords (:type, :f, :value, :process, :time, :index and :error); this one is a string, "type"`},
		{`{:type :ok, :type :info, :f :read, :process 0}`, "1:13", "the key :type appears twice in one map (also at line 1, column 2)"},
		{`{:type :ok, :f :read, :process}`, "1:23", "has a key, :process, without a value"},
		{ok + `{:type :ok, :f :read, :value nil, :process 0`, "2:45", "the file ends inside the map opened at line 2, column 1: it is never closed"},
		{`[` + ok, "2:1", "the file ends inside the vector of ops opened at line 1, column 1"},
		{`[` + ok + `]` + ok, "2:2", "a map {:type :invoke :f :read :value nil :process 0} after the vector of ops"},
		{ok + `[` + ok + `]`, "2:1", "a vector [{:type :invoke :f :read :value nil :process 0}] among op maps"},
		{`[` + ok + ` 42]`, "2:2", "an integer 42 in the vector of ops"},
		{`:type :ok`, "1:1", "a keyword :type where an op map"},
		{`{:type :ok, :f :read, :process 0}]`, "1:34", `']' closes nothing`},
		{`#jepsen.history.Op{:type :ok, :f :read, :process 0}`, "1:1", "the tagged literal #jepsen.history.Op is outside the EDN faultline reads"},
		{`{:type :ok, :f :read, :value #inst "2026-01-01", :process 0}`, "1:30", "the tagged literal #inst"},
		{`{:type :ok, :f :read, :value #_ 1 2, :process 0}`, "1:30", "#_ (discard)"},
		{`{:type :ok, :f :read, :value \a, :process 0}`, "1:30", `the character literal \a`},
		{`{:type :ok, :f :read, :value foo, :process 0}`, "1:30", `the symbol "foo" is outside`},
		{`{:type :ok, :f :read, :value 42N, :process 0}`, "1:30", "the number 42N is outside the EDN faultline reads: N makes a big integer"},
		{`{:type :ok, :f :read, :value 1.5M, :process 0}`, "1:30", "M makes a big decimal"},
		{`{:type :ok, :f :read, :value 1/2, :process 0}`, "1:30", "a ratio"},
		{`{:type :ok, :f :read, :value 0x1f, :process 0}`, "1:30", "a hexadecimal number"},
		{`{:type :ok, :f :read, :value 017, :process 0}`, "1:30", "a leading zero"},
		{`{:type :ok, :f :read, :value 1., :process 0}`, "1:30", "not a number"},
		{`{:type :ok, :f :read, :value 1e999, :process 0}`, "1:30", "beyond the range of a float"},
		{`{:type :ok, :f :read, :value "a\qb", :process 0}`, "1:32", `the escape \q`},
		{`{:type :ok, :f :read, :value "\ud800", :process 0}`, "1:31", "half a surrogate pair"},
		{"{:type :ok, :f :read, :value \"a\xffb\", :process 0}", "1:30", "not UTF-8"},
		{`{:type :ok, :f :read, :value "abc`, "1:34", "the file ends inside the string opened at line 1, column 30"},
		{`{:type :ok, :f :read, ::value 1, :process 0}`, "1:23", `"::value" is not a keyword`},
		{`{:type :ok, :f :read, :value 'a, :process 0}`, "1:30", `'\'' (Clojure reader syntax)`},
		{`{:type :ok, :f :start, :value {[1] 2}, :process :nemesis}`, "1:32", "a map key that is a vector, [1], has no JSON form"},
		{strings.Repeat("[", 70), "1:65", "nest more than 64 deep"},
	} {
		_, err := ReadEDN(strings.NewReader(c.in), "h.edn")
		if err == nil {
			t.Errorf("%q: no error; want %q at %s", c.in, c.want, c.where)
			continue
		}
		if !strings.HasPrefix(err.Error(), "h.edn:"+c.where+": ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q:\n got %v\nwant h.edn:%s: ...%s...", c.in, err, c.where, c.want)
		}
	}
}

// The events before an error come with it, and a read error is reported
// with where the reader was.
func TestEDNErrorKeepsEarlierEvents(t *testing.T) {
	in := `{:type :invoke, :f :read, :process 0}` + "\n" + `{:type :ok, :f :read, :value 1, :process 0}` + "\n" + `{:type :bad}`
	evs, err := ReadEDN(strings.NewReader(in), "h.edn")
	if err == nil || len(evs) != 2 || evs[1].Line != 2 {
		t.Errorf("%d events, %v; want the 2 before the error on line 3", len(evs), err)
	}
	boom := errors.New("disk on fire")
	_, err = ReadEDN(iotest.TimeoutReader(iotest.OneByteReader(strings.NewReader(in))), "h.edn")
	if err == nil || !strings.HasPrefix(err.Error(), "h.edn:1:2: ") {
		t.Errorf("a read error: %v; want it named with its place, h.edn:1:2", err)
	}
	_, err = ReadEDN(iotest.ErrReader(boom), "h.edn")
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("a read error at the start: %v", err)
	}
}

func TestDetectFormat(t *testing.T) {
	for _, c := range []struct {
		name, head string
		want       Format
	}{
		{"h.jsonl", `{"type":"invoke"}`, FormatJSONL},
		{"h.edn", ` {"type":"invoke"}`, FormatJSONL}, // the content decides
		{"h.txt", "\n\t{:type :invoke}", FormatEDN},
		{"h.jsonl", "{ ,\n :type :invoke}", FormatEDN},
		{"h", `[{:type :invoke}]`, FormatEDN},
		{"h", "; a Jepsen history\n{:type :invoke}", FormatEDN},
		{"h", `#jepsen.history.Op{}`, FormatEDN},
		{"h", "\xef\xbb\xbf{:type :ok}", FormatEDN},
		{"h.EDN", "", FormatEDN},
		{"h.edn", "{", FormatEDN},
		{"h", "", FormatJSONL},
		{"h.jsonl", "{", FormatJSONL},
		{"h.edn", "x", FormatEDN},
		{"h", "x", FormatJSONL},
	} {
		if got := DetectFormat(c.name, []byte(c.head)); got != c.want {
			t.Errorf("DetectFormat(%q, %q) = %q, want %q", c.name, c.head, got, c.want)
		}
	}
	for in, want := range map[string]Format{"": FormatAuto, "auto": FormatAuto, "EDN": FormatEDN, "jsonl": FormatJSONL} {
		if f, err := ParseFormat(in); err != nil || f != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, f, err, want)
		}
	}
	if _, err := ParseFormat("json"); err == nil || !strings.Contains(err.Error(), "want edn, jsonl or auto") {
		t.Errorf("ParseFormat(json): %v", err)
	}
	// A format given is used whatever the file looks like.
	_, _, f, err := ReadFileFormat(filepath.Join("testdata", "edn", "register-valid.jsonl"), FormatEDN)
	if f != FormatEDN || err == nil || !strings.Contains(err.Error(), `register-valid.jsonl:1:8: a colon alone is not a keyword (if this file is JSON Lines, read it with --format jsonl)`) {
		t.Errorf("a JSON Lines file read as EDN: format %q, %v", f, err)
	}
}
