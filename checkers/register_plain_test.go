package checkers

import (
	"encoding/json"
	"testing"
)

// parsePlainCAS reads what json.Unmarshal reads, or leaves the argument to
// it.
func TestParsePlainCAS(t *testing.T) {
	slow := func(raw []byte) (string, string, bool) {
		var c struct{ From, To json.RawMessage }
		if json.Unmarshal(raw, &c) != nil || c.From == nil || c.To == nil {
			return "", "", false
		}
		return string(c.From), string(c.To), true
	}
	taken := []string{
		`{"from":null,"to":1}`, `{"from":1,"to":-2}`, `{"from":"a b","to":"c"}`,
		`{"from":true,"to":false}`, `{"from":0,"to":"x"}`,
		`{"from":"a,","to":"}"}`,
	}
	left := []string{
		`{"from":1,"to":2,"to":3}`, `{"to":1,"from":2}`, `{"from":01,"to":2}`, `{"from":1.0,"to":2}`,
		`{"from":"\u0041","to":2}`, `{"from":[1],"to":2}`, `{"from":1,"to":}`, `{"from":,"to":1}`,
		`{"from":1, "to":2}`, `{"from":"a","to":"b"`, `{"from":"a\"","to":"b"}`, `{"from":-,"to":1}`,
		`{"from":1,"to":2} `, `[1,2]`, `{"FROM":1,"to":2}`, "{\"from\":\"\xff\",\"to\":1}",
	}
	for _, in := range taken {
		f, to, ok := parsePlainCAS([]byte(in))
		sf, sto, sok := slow([]byte(in))
		if !ok || !sok || string(f) != sf || string(to) != sto {
			t.Errorf("%s: plain %s %s %v, json.Unmarshal %s %s %v", in, f, to, ok, sf, sto, sok)
		}
	}
	for _, in := range left {
		if f, to, ok := parsePlainCAS([]byte(in)); ok {
			t.Errorf("%s taken (%s %s): json.Unmarshal should read it", in, f, to)
		}
	}
}
