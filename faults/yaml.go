package faults

import "time"

// MarshalYAML writes a spec with durations as strings ("5s"), so that a
// saved scenario reads back (the scenario decoder rejects bare numbers for
// durations). Unset fields are left out. It needs no YAML import: yaml.v3
// calls any MarshalYAML() (any, error).
func (s Spec) MarshalYAML() (any, error) {
	m := map[string]any{"fault": s.Fault}
	str := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	dur := func(k string, d time.Duration) {
		if d != 0 {
			m[k] = d.String()
		}
	}
	str("mode", s.Mode)
	str("target", s.Target)
	if s.Clients {
		m["clients"] = true
	}
	dur("latency", s.Latency)
	dur("jitter", s.Jitter)
	if s.Rate != 0 {
		m["rate"] = s.Rate
	}
	dur("offset", s.Offset)
	dur("at", s.At)
	dur("for", s.For)
	if s.Weight != 0 {
		m["weight"] = s.Weight
	}
	return m, nil
}

// MarshalYAML writes a schedule with durations as strings.
func (s Schedule) MarshalYAML() (any, error) {
	m := map[string]any{}
	if s.Kind != "" {
		m["schedule"] = s.Kind
	}
	for k, d := range map[string]time.Duration{"start": s.Start, "every": s.Every, "for": s.For, "stagger": s.Stagger} {
		if d != 0 {
			m[k] = d.String()
		}
	}
	if len(s.Mix) > 0 {
		m["mix"] = s.Mix
	}
	if len(s.Timeline) > 0 {
		m["timeline"] = s.Timeline
	}
	return m, nil
}
