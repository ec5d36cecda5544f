package faults

import (
	"math"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// clock-skew's parameters: a drift outside (-1, 10] and an offset and drift
// both 0 are refused, each naming its field; a drift alone, an offset alone
// or both are accepted.
func TestClockSkewValidate(t *testing.T) {
	env := fullEnv(nodes3)
	for _, tc := range []struct {
		offset time.Duration
		drift  float64
		field  string // "" if valid
		says   string
	}{
		{0, 0, "mix[0].offset", "shifts nothing and drift is 0"},
		{0, -1, "mix[0].drift", "above -1"},
		{time.Second, -1.5, "mix[0].drift", "out of range"},
		{0, 10.5, "mix[0].drift", "at most 10"},
		{0, math.NaN(), "mix[0].drift", "out of range"},
		{0, math.Inf(1), "mix[0].drift", "out of range"},
		{0, -0.95, "", ""},
		{0, 10, "", ""},
		{-2 * time.Second, 0, "", ""},
		{time.Second, 0.5, "", ""},
	} {
		s := mix(NewSpec("clock-skew", func(c *ClockSkew) { c.Offset, c.Drift = tc.offset, tc.drift }))
		if tc.field == "" {
			if err := s.Validate(env); err != nil {
				t.Errorf("offset %s drift %v: %v, want valid", tc.offset, tc.drift, err)
			}
			continue
		}
		specErrOn(t, s, env, tc.field, "clock-skew", tc.says)
	}
}

// A drift decodes from a scenario's mapping (a bare number, negative or
// whole), is listed in the catalog as a number defaulting to 0, and is
// written back when the spec is saved.
func TestClockSkewDriftYAML(t *testing.T) {
	specs := decodeSchedule(t, `
schedule: timeline
timeline:
  - {at: 1s, for: 4s, fault: clock-skew, target: leader, offset: 0s, drift: -0.95}
  - {at: 2s, for: 1s, fault: clock-skew, target: n1, drift: 2}
`)
	if c := specs[0].Kind.(*ClockSkew); c.Offset != 0 || c.Drift != -0.95 || c.Target != TargetLeader {
		t.Errorf("first: %+v", c)
	}
	if c := specs[1].Kind.(*ClockSkew); c.Offset != 5*time.Second || c.Drift != 2 {
		t.Errorf("second (offset left at its default): %+v", c)
	}
	out, err := yaml.Marshal(Schedule{Kind: "timeline", Timeline: specs[:1]})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "drift: -0.95") || !strings.Contains(string(out), "offset: 0s") {
		t.Errorf("saved spec lacks the drift or the offset:\n%s", out)
	}
	if again := decodeSchedule(t, string(out)); again[0].Kind.(*ClockSkew).Drift != -0.95 {
		t.Errorf("drift after a round trip: %+v", again[0].Kind)
	}
	k, _ := Lookup("clock-skew")
	var drift *Param
	for i := range k.Params {
		if k.Params[i].Name == "drift" {
			drift = &k.Params[i]
		}
	}
	if drift == nil || drift.Type != "number" || drift.Default != "0" || !strings.Contains(drift.Doc, "per real second") {
		t.Errorf("catalog's drift: %+v", drift)
	}
	if !strings.Contains(k.Doc, "drift") {
		t.Errorf("catalog doc does not mention the drift: %s", k.Doc)
	}
}
