package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// whole reports whether b is one JSON value with white space around it,
// as the scanner sees it.
func whole(b []byte) bool {
	i := SkipSpace(b, 0)
	e := ValueEnd(b, i)
	return e >= 0 && SkipSpace(b, e) == len(b)
}

// brackets is an upper bound on the nesting of b (brackets inside strings
// count too).
func brackets(b []byte) int {
	d, most := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			most = max(most, d)
		case ']', '}':
			d--
		}
	}
	return most
}

var cases = []string{
	`0`, `-0`, `12`, `-1.5e+3`, `1E9`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `0x1`,
	`"a"`, `""`, `"\u00e9\n\"\\\/"`, `"\x"`, `"\u12"`, "\"a\x01b\"", `"open`, "\"\xff\"",
	`true`, `false`, `null`, `tru`, `nul`, `True`,
	`[]`, `[ ]`, `[1,2]`, `[1,,2]`, `[1,]`, `[,1]`, `[1 2]`, `[`, `]`,
	`{}`, `{ }`, `{"a":1}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a":[1,{"b":"}"}]}`,
	` 1 `, "\t{\"a\" : [ 1 , 2 ] }\n", `1 2`, `{} x`, ``, ` `,
	strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
}

// TestValueEndIsEncodingJSON: the scanner takes a value exactly when
// encoding/json does, up to MaxDepth levels; deeper ones it leaves.
func TestValueEndIsEncodingJSON(t *testing.T) {
	for _, c := range cases {
		if got, want := whole([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("%q: scanner %v, encoding/json %v", c, got, want)
		}
	}
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	if whole([]byte(deep)) {
		t.Errorf("nesting of %d levels taken, MaxDepth is %d", MaxDepth+1, MaxDepth)
	}
}

func FuzzValueEnd(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := whole(b), json.Valid(b)
		if got && !want {
			t.Fatalf("%q: the scanner takes what encoding/json refuses", b)
		}
		if want && !got && brackets(b) <= MaxDepth {
			t.Fatalf("%q: the scanner refuses what encoding/json takes", b)
		}
		object := want && b[SkipSpace(b, 0)] == '{'
		if whole := members(b) != nil; whole != object && (whole || brackets(b) <= MaxDepth) {
			t.Fatalf("%q: Member says whole %v, encoding/json an object %v", b, whole, object)
		}
	})
}

// members returns the names and values Member reads from b, or nil if b
// is not one whole object.
func members(b []byte) []string {
	out := []string{}
	i, end := ObjectStart(b)
	for i >= 0 && !end {
		var name, value []byte
		if name, value, i, end = Member(b, i); i >= 0 {
			out = append(out, string(name)+"="+string(value))
		}
	}
	if i < 0 || !AtEnd(b, i) {
		return nil
	}
	return out
}

// TestMembers: the members of an object as they stand in the line, and
// every way a line is not one object.
func TestMembers(t *testing.T) {
	got := members([]byte(` { "a" : 1 , "b\"c":[1, {"d":"}"}] ,"e":null} `))
	want := []string{`a=1`, `b\"c=[1, {"d":"}"}]`, `e=null`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("members = %q, want %q", got, want)
	}
	if got := members([]byte(`{}`)); got == nil || len(got) != 0 {
		t.Errorf("{} = %q, want no members", got)
	}
	for _, bad := range []string{``, `[]`, `1`, `{`, `{"a":1`, `{"a":1,}`, `{"a":}`, `{"a" 1}`, `{a:1}`, `{"a":1} x`, `{} {}`, `{"a":1 "b":2}`, "{\"a\x01\":1}"} {
		if got := members([]byte(bad)); got != nil {
			t.Errorf("%q: read as one object, members %q", bad, got)
		}
	}
}
