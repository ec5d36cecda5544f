// Package jsonscan finds where JSON values end in a line of bytes without
// decoding them. It is the validating scanner under history's fast event
// decoder and the report's reader of history lines, so both accept exactly
// the values encoding/json accepts (any bytes but control characters in
// strings, the escapes of RFC 8259, its number grammar), and neither
// takes a line the other refuses.
//
// Every function takes the line b and an index i into it and returns the
// index just after what starts at b[i], or -1 when that is not valid JSON
// there. They allocate nothing and are safe for concurrent use.
package jsonscan

// MaxDepth bounds the nesting ValueEnd follows; a deeper value is -1,
// left to encoding/json.
const MaxDepth = 32

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space (space, tab, newline, carriage return).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ValueEnd returns the index after the JSON value that starts at b[i], or
// -1 if there is none there (or it is nested deeper than MaxDepth).
func ValueEnd(b []byte, i int) int { return valueEnd(b, i, 0) }

func valueEnd(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return StringEnd(b, i)
	case c == '-' || c >= '0' && c <= '9':
		return NumberEnd(b, i)
	case c == 't':
		return literalEnd(b, i, "true")
	case c == 'f':
		return literalEnd(b, i, "false")
	case c == 'n':
		return literalEnd(b, i, "null")
	case c == '[' || c == '{':
		if depth >= MaxDepth {
			return -1
		}
		closing := byte(']')
		if c == '{' {
			closing = '}'
		}
		j := SkipSpace(b, i+1)
		if j < len(b) && b[j] == closing {
			return j + 1
		}
		for {
			if c == '{' {
				if j >= len(b) || b[j] != '"' {
					return -1
				}
				if j = StringEnd(b, j); j < 0 {
					return -1
				}
				j = SkipSpace(b, j)
				if j >= len(b) || b[j] != ':' {
					return -1
				}
				j = SkipSpace(b, j+1)
			}
			if j = valueEnd(b, j, depth+1); j < 0 {
				return -1
			}
			j = SkipSpace(b, j)
			if j >= len(b) {
				return -1
			}
			switch b[j] {
			case ',':
				j = SkipSpace(b, j+1)
			case closing:
				return j + 1
			default:
				return -1
			}
		}
	}
	return -1
}

// StringEnd returns the index after the JSON string at b[i] (a quote), or
// -1.
func StringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c < 0x20:
			return -1
		case c == '\\':
			j++
			if j >= len(b) {
				return -1
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return -1
				}
				for _, h := range b[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				j += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// NumberEnd returns the index after the JSON number at b[i], or -1.
func NumberEnd(b []byte, i int) int {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	digits := func() bool {
		k := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j > k
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case !digits():
		return -1
	}
	if j < len(b) && b[j] == '.' {
		j++
		if !digits() {
			return -1
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if !digits() {
			return -1
		}
	}
	return j
}

// literalEnd returns the index after lit at b[i], or -1.
func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// ObjectStart returns the index of the first member of the JSON object
// that starts b (after white space), the index just after it when it is
// empty and closed (with end true), or -1 when b does not start with one.
func ObjectStart(b []byte) (i int, end bool) {
	i = SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return -1, false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	return i, false
}

// Member reads the object member at b[i]: its name's text between the
// quotes (escapes not decoded) and its value as it stands in b, both
// aliasing b. next is where the following member starts, or, with end
// true, the index just after the object's closing brace; next is -1 when
// b[i:] is not a member followed by a comma or the closing brace.
//
// The loop over a line's members, with the line's end checked by
// AtEnd:
//
//	i, end := jsonscan.ObjectStart(b)
//	for i >= 0 && !end {
//		var name, value []byte
//		if name, value, i, end = jsonscan.Member(b, i); i >= 0 {
//			use(name, value)
//		}
//	}
//	whole := i >= 0 && jsonscan.AtEnd(b, i)
func Member(b []byte, i int) (name, value []byte, next int, end bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, nil, -1, false
	}
	ne := StringEnd(b, i)
	if ne < 0 {
		return nil, nil, -1, false
	}
	name = b[i+1 : ne-1]
	i = SkipSpace(b, ne)
	if i >= len(b) || b[i] != ':' {
		return nil, nil, -1, false
	}
	i = SkipSpace(b, i+1)
	ve := ValueEnd(b, i)
	if ve < 0 {
		return nil, nil, -1, false
	}
	value = b[i:ve]
	i = SkipSpace(b, ve)
	switch {
	case i < len(b) && b[i] == ',':
		return name, value, SkipSpace(b, i+1), false
	case i < len(b) && b[i] == '}':
		return name, value, i + 1, true
	}
	return nil, nil, -1, false
}

// AtEnd reports whether only white space follows b[i:].
func AtEnd(b []byte, i int) bool { return SkipSpace(b, i) == len(b) }
