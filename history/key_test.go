package history

import (
	"strings"
	"testing"
)

// Keys that are not UTF-8 text are refused with their line: decoding would
// turn "k\xff" and "k\xfe" alike into "k\ufffd" and merge two keys.
func TestKeyNotUTF8IsRejected(t *testing.T) {
	ok := `{"type":"invoke","process":0,"time":1,"f":"get","key":"k"}`
	for name, bad := range map[string]string{
		"byte ff":        "{\"type\":\"invoke\",\"process\":0,\"time\":2,\"f\":\"get\",\"key\":\"k\xff\"}",
		"byte fe":        "{\"type\":\"invoke\",\"process\":0,\"time\":2,\"f\":\"get\",\"key\":\"k\xfe\"}",
		"lone high":      `{"type":"invoke","process":0,"time":2,"f":"get","key":"k\ud800"}`,
		"lone low":       `{"type":"invoke","process":0,"time":2,"f":"get","key":"k\udc00x"}`,
		"high then text": `{"type":"invoke","process":0,"time":2,"f":"get","key":"k\ud800\u0041"}`,
	} {
		_, _, err := ReadAll(strings.NewReader(ok+"\n"+bad+"\n"), "h.jsonl")
		if err == nil || !strings.HasPrefix(err.Error(), "h.jsonl:2: ") || !strings.Contains(err.Error(), `field "key"`) {
			t.Errorf("%s: err = %v, want one naming h.jsonl:2 and the key", name, err)
		}
	}
	// Valid text, escaped or not, is accepted as it reads.
	for raw, want := range map[string]string{
		`"k\ud83d\ude00"`: "k😀",
		`"k😀"`:            "k😀",
		`"k\ufffd"`:       "k\ufffd",
		`"k\\ud800"`:      `k\ud800`,
		`"\u00e9"`:        "é",
	} {
		_, evs, err := ReadAll(strings.NewReader(`{"type":"invoke","process":0,"time":1,"key":`+raw+`}`), "h")
		if err != nil || evs[0].Key != want || evs[0].KeyIsNumber {
			t.Errorf("key %s: got %+v, %v; want %q", raw, evs, err, want)
		}
	}
}

// The number 1 and the string "1" are different keys; a numeric key is
// compared as JSON (1.0 is 1) and written back as a number.
func TestNumericKeysStayDistinct(t *testing.T) {
	in := `{"type":"invoke","process":0,"time":1,"f":"get","key":1}
{"type":"invoke","process":1,"time":2,"f":"get","key":"1"}
{"type":"invoke","process":2,"time":3,"f":"get","key":1.0}
{"type":"invoke","process":3,"time":4,"f":"get","key":-0}
{"type":"invoke","process":4,"time":5,"f":"get","key":12345678901234567890}
`
	_, evs, err := ReadAll(strings.NewReader(in), "h")
	if err != nil {
		t.Fatal(err)
	}
	if evs[0].KeyID() == evs[1].KeyID() {
		t.Errorf("1 and \"1\" share the key %v", evs[0].KeyID())
	}
	if evs[0].KeyID() != evs[2].KeyID() || evs[3].KeyID() != (Key{"0", true}) {
		t.Errorf("1 and 1.0 differ, or -0 is not 0: %v %v %v", evs[0].KeyID(), evs[2].KeyID(), evs[3].KeyID())
	}
	if s0, s1 := evs[0].KeyID().String(), evs[1].KeyID().String(); s0 != "1" || s1 != `"1"` {
		t.Errorf("String: %s %s", s0, s1)
	}
	for i, want := range []string{`"key":1}`, `"key":"1"}`, `"key":1}`, `"key":0}`, `"key":12345678901234567890}`} {
		if got := string(evs[i].AppendJSON(nil)); !strings.Contains(got, want) {
			t.Errorf("event %d encodes as %s, want %s", i, got, want)
		}
	}
	// An event built in memory with a number flag on text that is no
	// number is written as a string.
	ev := Event{Type: Invoke, Key: "k", KeyIsNumber: true}
	if got := string(ev.AppendJSON(nil)); !strings.Contains(got, `"key":"k"`) {
		t.Errorf("got %s", got)
	}
}
