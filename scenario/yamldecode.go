package scenario

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FieldError is a problem with one field of a scenario file.
type FieldError struct {
	File  string
	Line  int
	Col   int
	Field string // dotted path, e.g. workload.mix.get
	Msg   string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Line, e.Col)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: field %q: %s", loc, e.Field, e.Msg)
}

// Duration is a time.Duration written in YAML as a Go duration string
// ("20s", "1m30s", "250ms"). A bare 0 is accepted.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(time.Duration(d).String())), nil
}

// decoder decodes a yaml.Node tree into Go values strictly: unknown keys,
// duplicate keys and wrong types are errors naming file, line, column and
// the dotted field path.
type decoder struct {
	file string
	// signed is set while decoding a field tagged `signed:"true"`: a
	// duration that may be negative (a clock offset).
	signed bool
}

var (
	durationType   = reflect.TypeOf(Duration(0))
	stdDurationTyp = reflect.TypeOf(time.Duration(0))
)

type nodeDecoder interface {
	decodeNode(d *decoder, n *yaml.Node, path string) error
}

func (d *decoder) errf(n *yaml.Node, path, format string, args ...any) error {
	e := &FieldError{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	return e
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return d.decode(n.Content[0], v, path)
	}
	if n.Kind == yaml.AliasNode {
		return d.decode(n.Alias, v, path)
	}
	if v.CanAddr() {
		if nd, ok := v.Addr().Interface().(nodeDecoder); ok {
			return nd.decodeNode(d, n, path)
		}
	}
	if v.Type() == durationType || v.Type() == stdDurationTyp {
		if n.Kind != yaml.ScalarNode {
			return d.errf(n, path, "want a duration such as 30s or 1m30s, got %s", kindName(n))
		}
		if n.Value == "0" {
			v.SetInt(0)
			return nil
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil {
			return d.errf(n, path, "%q is not a duration: write a number with a unit, such as 500ms, 30s or 2m", n.Value)
		}
		if dur < 0 && !d.signed {
			return d.errf(n, path, "duration %s is negative", n.Value)
		}
		v.SetInt(int64(dur))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decode(n, v.Elem(), path)
	case reflect.Struct:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.errf(n, path, "want a mapping of fields, got %s", kindName(n))
		}
		var params any
		if v.CanAddr() {
			if k, ok := v.Addr().Interface().(kinded); ok {
				var err error
				if params, err = d.setKind(n, k, path); err != nil {
					return err
				}
			}
		}
		return d.decodeFields(n, v, params, path)
	case reflect.Map:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return d.errf(n, path, "want a mapping, got %s", kindName(n))
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				return d.errf(k, join(path, k.Value), "appears twice")
			}
			seen[k.Value] = true
			kv := reflect.New(v.Type().Key()).Elem()
			if err := d.decode(k, kv, join(path, k.Value)); err != nil {
				return err
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := d.decode(val, ev, join(path, k.Value)); err != nil {
				return err
			}
			v.SetMapIndex(kv, ev)
		}
		return nil
	case reflect.Slice:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			v.Set(reflect.Zero(v.Type()))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.errf(n, path, "want a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			return d.errf(n, path, "%v", err)
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return d.errf(n, path, "want %s, got %s", typeWord(v.Type()), kindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		if n.Tag == "!!null" {
			v.SetString("")
			return nil
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.Tag != "!!bool" {
			return d.errf(n, path, "want true or false, got %s", kindName(n))
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errf(n, path, "want a whole number, got %s", kindName(n))
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, err := strconv.ParseUint(strings.ReplaceAll(n.Value, "_", ""), 0, v.Type().Bits())
		if err != nil || n.Tag != "!!int" {
			return d.errf(n, path, "want a non-negative whole number, got %s", kindName(n))
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		if n.Tag != "!!int" && n.Tag != "!!float" {
			return d.errf(n, path, "want a number, got %s", kindName(n))
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			return d.errf(n, path, "want a number, got %s", kindName(n))
		}
		v.SetFloat(f)
	default:
		return d.errf(n, path, "cannot decode into %s (internal)", v.Type())
	}
	return nil
}

func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// structFields maps the yaml names of t's exported fields to their index
// paths; the fields of an embedded struct (or one tagged ",inline") count
// as fields of t.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if (f.Anonymous && name == "") || opts == "inline" {
			ft := f.Type
			if ft.Kind() == reflect.Struct {
				for k, idx := range structFields(ft) {
					out[k] = append([]int{i}, idx...)
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = []int{i}
	}
	return out
}

// kinded is implemented by a mapping whose kind key (e.g. "fault", "type")
// picks the type of its other keys: SetKind returns a pointer to the
// struct those keys are decoded into (nil: none), with its defaults set.
// SetKind("") is called when the key is absent. Keys that are fields of
// the value itself are decoded there.
type kinded interface {
	KindKey() string
	SetKind(name string) (params any, err error)
}

// setKind reads the kind key of mapping n and calls SetKind with it.
func (d *decoder) setKind(n *yaml.Node, k kinded, path string) (any, error) {
	key := k.KindKey()
	name, at := "", n
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			at = n.Content[i+1]
			if at.Kind != yaml.ScalarNode {
				return nil, d.errf(at, join(path, key), "want a name, got %s", kindName(at))
			}
			name = at.Value
		}
	}
	params, err := k.SetKind(name)
	if err != nil {
		p := join(path, key)
		if at == n {
			p = path
		}
		return nil, d.errf(at, p, "%v", err)
	}
	return params, nil
}

// decodeShort decodes a value that a file may give in short form, one
// scalar (stored in *short), or as the mapping of the struct ptr points to
// (client: http | {adapter, options}; ready: tcp | {probe, path, port}).
func (d *decoder) decodeShort(n *yaml.Node, path string, ptr any, short *string) error {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		*short = n.Value
		return nil
	}
	return d.decodeFields(n, reflect.ValueOf(ptr).Elem(), nil, path)
}

// decodeFields decodes mapping n into struct v and, for keys that are not
// v's fields, into the struct params points to (nil: no such keys).
// Unknown and duplicate keys are errors naming the known fields.
func (d *decoder) decodeFields(n *yaml.Node, v reflect.Value, params any, path string) error {
	fields := structFields(v.Type())
	var pv reflect.Value
	var pfields map[string][]int
	if params != nil {
		pv = reflect.ValueOf(params)
		for pv.Kind() == reflect.Pointer {
			pv = pv.Elem()
		}
		pfields = structFields(pv.Type())
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		name := k.Value
		if seen[name] {
			return d.errf(k, join(path, name), "appears twice")
		}
		seen[name] = true
		var target reflect.Value
		var field reflect.StructField
		if idx, ok := fields[name]; ok {
			target, field = v.FieldByIndex(idx), v.Type().FieldByIndex(idx)
		} else if idx, ok := pfields[name]; ok {
			target, field = pv.FieldByIndex(idx), pv.Type().FieldByIndex(idx)
		} else {
			known := sortedNames(fields)
			if pfields != nil {
				known = append(known, sortedNames(pfields)...)
				sort.Strings(known)
			}
			return d.errf(k, join(path, name), "unknown field (known fields here: %s)", strings.Join(known, ", "))
		}
		d.signed = field.Tag.Get("signed") == "true"
		err := d.decode(val, target, join(path, name))
		d.signed = false
		if err != nil {
			return err
		}
	}
	return nil
}

func sortedNames(m map[string][]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
