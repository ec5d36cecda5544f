package faults

import "time"

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
