package scenario

import (
	"bytes"

	"gopkg.in/yaml.v3"
)

// Marshal writes s as YAML, as a run saves it in its run directory
// (scenario.yaml): every field with its value, but no mapping entry whose
// value is null (an absent external cluster, no faults, a threshold not
// set), which decodes to the same zero value as a key left out. It does
// not redact secrets; the conductor does that before it calls Marshal.
func Marshal(s *Scenario) ([]byte, error) {
	return marshalWithoutNulls(s)
}

// marshalWithoutNulls is yaml.Marshal of v without the mapping entries
// whose value is null, at any depth.
func marshalWithoutNulls(v any) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	dropNulls(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(4) // as yaml.Marshal
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// dropNulls removes, from every mapping under n, the entries whose value
// is a null scalar.
func dropNulls(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			if v := n.Content[i+1]; v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue
			}
			kept = append(kept, n.Content[i], n.Content[i+1])
		}
		n.Content = kept
	}
	for _, c := range n.Content {
		dropNulls(c)
	}
}
