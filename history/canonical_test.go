package history

import (
	"strings"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`1`, `1`},
		{`1.0`, `1`},
		{`1e3`, `1000`},
		{`-0`, `0`},
		{`-0.0`, `0`},
		{`-1`, `-1`},
		{`-0.10e1`, `-1`},
		{`-1e-400`, `0`},
		{`1.5`, `1.5`},
		{`0.1`, `0.1`},
		{`9007199254740993`, `9007199254740993`},
		{`12345678901234567890.0`, `12345678901234567890`},
		{`1e300`, `1e+300`},
		{` "a<b>&" `, `"a<b>&"`},
		{`"a\u003cb"`, `"a<b"`},
		{`"\u00e9"`, `"é"`},
		{`"line\u2028"`, `"line\u2028"`},
		{`{"b": [1.0, {"d":2, "c":1}], "a": null}`, `{"a":null,"b":[1,{"c":1,"d":2}]}`},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{`[true,false,null]`, `[true,false,null]`},
	} {
		got, err := CanonicalJSON([]byte(tc.in))
		if err != nil || got != tc.want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
		b, err := AppendCanonicalJSON([]byte("x"), []byte(tc.in))
		if err != nil || string(b) != "x"+tc.want {
			t.Errorf("AppendCanonicalJSON(%s) = %s, %v; want x%s", tc.in, b, err, tc.want)
		}
	}
	for _, bad := range []string{``, ` `, `{`, `1 2`, `{"a":1}x`, `1e999`, `-1e999`, `nul`, `{"a":`} {
		if got, err := CanonicalJSON([]byte(bad)); err == nil {
			t.Errorf("CanonicalJSON(%q) = %s, want an error", bad, got)
		}
		if b, err := AppendCanonicalJSON([]byte("x"), []byte(bad)); err == nil || string(b) != "x" {
			t.Errorf("AppendCanonicalJSON(%q) = %s, %v; want an error and dst unchanged", bad, b, err)
		}
	}
}

func TestCanonicalJSONEquality(t *testing.T) {
	same := [][]string{
		{`1`, `1.0`, `1e0`, ` 1 `, `10e-1`},
		{`-0`, `0`, `0.0`},
		{`12345678901234567890`, `12345678901234567890.0`, `1.234567890123456789e19`},
		{`0.1`, `0.10`, `1e-1`},
		{`{"a":1,"b":[2,"x"]}`, `{"b":[2.0,"x"], "a":1}`},
		{`"a<b"`, `"a\u003cb"`},
		{`"é"`, `"\u00e9"`},
	}
	for _, group := range same {
		first, err := CanonicalJSON([]byte(group[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range group[1:] {
			if got, err := CanonicalJSON([]byte(s)); err != nil || got != first {
				t.Errorf("%s -> %s, but %s -> %s (%v)", group[0], first, s, got, err)
			}
		}
	}
	differ := [][2]string{{`1`, `"1"`}, {`1`, `1.5`}, {`null`, `"null"`}, {`{"a":1}`, `{"a":2}`}, {`12345678901234567890`, `12345678901234567891`}}
	for _, d := range differ {
		a, _ := CanonicalJSON([]byte(d[0]))
		b, _ := CanonicalJSON([]byte(d[1]))
		if a == b {
			t.Errorf("%s and %s both -> %s", d[0], d[1], a)
		}
	}
}

func TestAppendCanonicalJSONFastPathAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	for _, v := range []string{`"w-17-3"`, `12345`, `-7`} {
		raw := []byte(v)
		n := testing.AllocsPerRun(100, func() {
			buf, _ = AppendCanonicalJSON(buf[:0], raw)
		})
		if n != 0 {
			t.Errorf("AppendCanonicalJSON(%s) allocates %v times, want 0", v, n)
		}
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`1`, `{"a":[1.5,"x<"]}`, `"\u2028"`, `-0.0e5`, `[null,true]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		c, err := CanonicalJSON([]byte(in))
		if err != nil {
			return
		}
		again, err := CanonicalJSON([]byte(c))
		if err != nil || again != c {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", in, c, again, err)
		}
		if strings.ContainsAny(c, "\n\t") {
			t.Fatalf("canonical text %q has whitespace", c)
		}
	})
}
