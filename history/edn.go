package history

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file reads Jepsen's EDN histories of the register workload
// (history.edn): the subset of EDN that such a history is written in, and no
// more. An op is a map
//
//	{:type :invoke, :f :cas, :value [1 [3 4]], :process 2, :time 3291485317, :index 7}
//
// with :type one of :invoke, :ok, :fail, :info; :f one of :read, :write,
// :cas; :process a non-negative integer or :nemesis; :time an integer
// (nanoseconds since the test's start) and :index a non-negative integer,
// both optional; and :value a register value (an integer, a float or a
// string), nil, [from to] for a cas, or a [k v] tuple (Jepsen's independent
// keys: [k nil] for a read invoke, [k [from to]] for a cas). :error, which
// Jepsen adds to fail and info ops, is read too. Ops are one map after
// another (one per line, as Jepsen writes them) or one vector of maps.
// Nemesis ops take any :f and any value (Jepsen writes maps, sets and
// strings there).
//
// Anything else (another key, a symbol, a tagged literal such as #inst or a
// record, a character, a ratio, a map key that is not a keyword, a register
// value that is a collection, ops of a workload other than the register) is
// an error naming the file, the line and the column, and what was found.

// ednKind is the kind of an EDN value.
type ednKind uint8

const (
	ednNil ednKind = iota
	ednBool
	ednInt
	ednFloat
	ednString
	ednKeyword
	ednVector
	ednList
	ednSet
	ednMap
)

var ednKindNames = [...]string{
	ednNil: "nil", ednBool: "a boolean", ednInt: "an integer", ednFloat: "a float",
	ednString: "a string", ednKeyword: "a keyword", ednVector: "a vector",
	ednList: "a list", ednSet: "a set", ednMap: "a map",
}

// ednValue is one EDN value of the subset.
type ednValue struct {
	kind ednKind
	// text is "true" or "false" for a boolean, the number as JSON writes
	// it for a number, the decoded text of a string, and the name (without
	// the colon) of a keyword.
	text string
	// items are a vector's, list's or set's elements; a map's keys and
	// values, alternating.
	items     []ednValue
	line, col int // where the value starts (1-based; the column counts bytes)
}

// maxEDNDepth bounds how deeply collections nest: an op nests three deep
// ([k [from to]] in a map); nemesis values a few more.
const maxEDNDepth = 64

// maxEDNShown bounds how much of a value an error quotes.
const maxEDNShown = 60

// String renders v as EDN, cut after about maxEDNShown bytes (for error
// messages).
func (v ednValue) String() string {
	var b strings.Builder
	v.write(&b, maxEDNShown)
	return b.String()
}

// write renders v as EDN to b, stopping once b holds more than limit
// bytes (limit < 0: no limit).
func (v ednValue) write(b *strings.Builder, limit int) {
	if limit >= 0 && b.Len() > limit {
		return
	}
	open, end := "", ""
	switch v.kind {
	case ednNil:
		b.WriteString("nil")
	case ednString:
		b.WriteString(strconv.Quote(v.text))
	case ednKeyword:
		b.WriteString(":" + v.text)
	case ednVector:
		open, end = "[", "]"
	case ednList:
		open, end = "(", ")"
	case ednSet:
		open, end = "#{", "}"
	case ednMap:
		open, end = "{", "}"
	default:
		b.WriteString(v.text)
	}
	if open == "" {
		return
	}
	b.WriteString(open)
	for i, it := range v.items {
		if i > 0 {
			b.WriteByte(' ')
		}
		it.write(b, limit)
	}
	b.WriteString(end)
}

// shown is v as an error message quotes it: its kind and at most
// maxEDNShown bytes of its text.
func (v ednValue) shown() string {
	s := v.String()
	if len(s) > maxEDNShown {
		s = s[:maxEDNShown] + "..."
	}
	return s
}

// ednParser reads EDN values from a stream, keeping track of the line and
// column of the next byte.
type ednParser struct {
	r         *bufio.Reader
	name      string
	line, col int
	prevLine  int // the position before the last byte read, for unread
	prevCol   int
	ioErr     error
}

func newEDNParser(r io.Reader, name string) *ednParser {
	return &ednParser{r: bufio.NewReaderSize(r, 64<<10), name: name, line: 1, col: 1}
}

func (p *ednParser) errorf(line, col int, format string, args ...any) error {
	return fmt.Errorf("%s:%d:%d: %s", p.name, line, col, fmt.Sprintf(format, args...))
}

// readByte returns the next byte; false at the end of the input (or on a
// read error, kept in ioErr).
func (p *ednParser) readByte() (byte, bool) {
	c, err := p.r.ReadByte()
	if err != nil {
		if err != io.EOF {
			p.ioErr = err
		}
		return 0, false
	}
	p.prevLine, p.prevCol = p.line, p.col
	if c == '\n' {
		p.line++
		p.col = 1
	} else {
		p.col++
	}
	return c, true
}

// unreadByte puts back the byte just read.
func (p *ednParser) unreadByte() {
	if p.r.UnreadByte() == nil {
		p.line, p.col = p.prevLine, p.prevCol
	}
}

// eof returns the error for input that ended where more was due, or the
// read error that ended it.
func (p *ednParser) eof(what string) error {
	if p.ioErr != nil {
		return p.errorf(p.line, p.col, "%v", p.ioErr)
	}
	return p.errorf(p.line, p.col, "the file ends %s", what)
}

func isEDNSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == '\f'
}

// isEDNDelim reports whether c ends a token (a number, keyword or symbol).
func isEDNDelim(c byte) bool {
	switch c {
	case '(', ')', '[', ']', '{', '}', '"', ';':
		return true
	}
	return isEDNSpace(c)
}

// skip skips whitespace (commas included) and comments, and returns the
// next byte, consumed, with its position; false at the end of the input.
func (p *ednParser) skip() (c byte, line, col int, ok bool) {
	for {
		line, col = p.line, p.col
		c, ok = p.readByte()
		if !ok {
			return 0, line, col, false
		}
		switch {
		case isEDNSpace(c):
		case c == ';':
			for {
				c, ok := p.readByte()
				if !ok || c == '\n' {
					break
				}
			}
		case line == 1 && col == 1 && c == 0xef:
			// A UTF-8 byte order mark.
			if b, err := p.r.Peek(2); err == nil && b[0] == 0xbb && b[1] == 0xbf {
				p.readByte()
				p.readByte()
				p.col = 1
				continue
			}
			return c, line, col, true
		default:
			return c, line, col, true
		}
	}
}

// value reads one value whose first byte c (at line:col) has been read.
func (p *ednParser) value(c byte, line, col, depth int) (ednValue, error) {
	v := ednValue{line: line, col: col}
	switch {
	case c == '{':
		v.kind = ednMap
		return p.collection(v, '}', depth)
	case c == '[':
		v.kind = ednVector
		return p.collection(v, ']', depth)
	case c == '(':
		v.kind = ednList
		return p.collection(v, ')', depth)
	case c == '#':
		n, ok := p.readByte()
		if ok && n == '{' {
			v.kind = ednSet
			return p.collection(v, '}', depth)
		}
		if ok && n == '_' {
			return v, p.errorf(line, col, "#_ (discard) is outside the EDN faultline reads: delete the form it discards")
		}
		tag := ""
		if ok {
			p.unreadByte()
			tag = p.token()
		}
		if tag == "" {
			return v, p.errorf(line, col, "# not followed by { (a set) is outside the EDN faultline reads")
		}
		hint := ""
		if strings.Contains(tag, ".") {
			hint = "; a record is printed this way: write the op as a plain map {:type ...}"
		}
		return v, p.errorf(line, col, "the tagged literal #%s is outside the EDN faultline reads (Jepsen's register histories: maps of keywords, integers, floats, strings, nil, vectors)%s", tag, hint)
	case c == '"':
		s, err := p.str(line, col)
		v.kind, v.text = ednString, s
		return v, err
	case c == ':':
		name := p.token()
		if name == "" {
			return v, p.errorf(line, col, "a colon alone is not a keyword (if this file is JSON Lines, read it with --format jsonl)")
		}
		if name[0] == ':' || !validKeyword(name) {
			return v, p.errorf(line, col, "%q is not a keyword faultline reads (write :name, with letters, digits and * + ! - _ ? < > = . / $ %% & ')", ":"+name)
		}
		v.kind, v.text = ednKeyword, name
		return v, nil
	case c >= '0' && c <= '9', (c == '-' || c == '+') && p.peekDigit():
		return p.number(v, c)
	case c == '\\':
		tok := p.token()
		return v, p.errorf(line, col, "the character literal \\%s is outside the EDN faultline reads: write it as a string", tok)
	case c == ')' || c == ']' || c == '}':
		return v, p.errorf(line, col, "%q closes nothing: no collection is open here", c)
	case c == '^' || c == '\'' || c == '`' || c == '~' || c == '@':
		return v, p.errorf(line, col, "%q (Clojure reader syntax) is outside the EDN faultline reads", c)
	}
	sym := string(c) + p.token()
	switch sym {
	case "nil":
		v.kind = ednNil
		return v, nil
	case "true", "false":
		v.kind, v.text = ednBool, sym
		return v, nil
	}
	if len(sym) > maxEDNShown {
		sym = sym[:maxEDNShown] + "..."
	}
	return v, p.errorf(line, col, "the symbol %q is outside the EDN faultline reads (only nil, true and false are): a keyword is written :%s, a string \"%s\"", sym, sym, sym)
}

// collection reads the elements of v up to the closing byte end.
func (p *ednParser) collection(v ednValue, end byte, depth int) (ednValue, error) {
	if depth >= maxEDNDepth {
		return v, p.errorf(v.line, v.col, "collections nest more than %d deep here, beyond any history", maxEDNDepth)
	}
	for {
		c, line, col, ok := p.skip()
		if !ok {
			return v, p.eof(fmt.Sprintf("inside the %s opened at line %d, column %d: it is never closed", strings.TrimPrefix(ednKindNames[v.kind], "a "), v.line, v.col))
		}
		if c == end {
			break
		}
		it, err := p.value(c, line, col, depth+1)
		if err != nil {
			return v, err
		}
		v.items = append(v.items, it)
	}
	if v.kind == ednMap {
		if len(v.items)%2 != 0 {
			k := v.items[len(v.items)-1]
			return v, p.errorf(k.line, k.col, "the map opened at line %d, column %d has a key, %s, without a value", v.line, v.col, k.shown())
		}
		seen := make(map[string]int, len(v.items)/2)
		for i := 0; i < len(v.items); i += 2 {
			k := v.items[i]
			var id strings.Builder
			id.WriteByte(byte(k.kind))
			k.write(&id, -1)
			if j, dup := seen[id.String()]; dup {
				return v, p.errorf(k.line, k.col, "the key %s appears twice in one map (also at line %d, column %d)", k.shown(), v.items[j].line, v.items[j].col)
			}
			seen[id.String()] = i
		}
	}
	return v, nil
}

// peekDigit reports whether the next byte is a digit. (After it the byte
// read before cannot be unread.)
func (p *ednParser) peekDigit() bool {
	b, err := p.r.Peek(1)
	return err == nil && b[0] >= '0' && b[0] <= '9'
}

// token reads the bytes up to the next delimiter (a number, keyword or
// symbol).
func (p *ednParser) token() string {
	var b []byte
	for {
		c, ok := p.readByte()
		if !ok {
			break
		}
		if isEDNDelim(c) {
			p.unreadByte()
			break
		}
		b = append(b, c)
		if len(b) > 1<<16 {
			break
		}
	}
	return string(b)
}

func validKeyword(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("*+!-_?<>=./$%&'#:", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// number reads an integer or a float in JSON's syntax (a leading + is
// allowed and dropped). Clojure's other numbers (42N, 1.5M, 1/2, 0x1f,
// 017, ##Inf) are errors.
func (p *ednParser) number(v ednValue, first byte) (ednValue, error) {
	tok := string(first) + p.token()
	s := strings.TrimPrefix(tok, "+")
	digits := strings.TrimPrefix(s, "-")
	i := 0
	for i < len(digits) && digits[i] >= '0' && digits[i] <= '9' {
		i++
	}
	intLen := i
	float := false
	if i < len(digits) && digits[i] == '.' {
		float = true
		i++
		j := i
		for i < len(digits) && digits[i] >= '0' && digits[i] <= '9' {
			i++
		}
		if i == j {
			i = -1 // "1." : no digits after the point
		}
	}
	if i >= 0 && i < len(digits) && (digits[i] == 'e' || digits[i] == 'E') {
		float = true
		i++
		if i < len(digits) && (digits[i] == '+' || digits[i] == '-') {
			i++
		}
		j := i
		for i < len(digits) && digits[i] >= '0' && digits[i] <= '9' {
			i++
		}
		if i == j {
			i = -1
		}
	}
	bad := func(why string) (ednValue, error) {
		shown := tok
		if len(shown) > maxEDNShown {
			shown = shown[:maxEDNShown] + "..."
		}
		return v, p.errorf(v.line, v.col, "the number %s is outside the EDN faultline reads: %s (write integers such as 42 or -7, floats such as 1.5 or 2e3)", shown, why)
	}
	switch {
	case i != len(digits) && strings.HasSuffix(tok, "N"):
		return bad("N makes a big integer")
	case i != len(digits) && strings.HasSuffix(tok, "M"):
		return bad("M makes a big decimal")
	case strings.Contains(tok, "/"):
		return bad("a ratio")
	case strings.HasPrefix(digits, "0x") || strings.HasPrefix(digits, "0X"):
		return bad("a hexadecimal number")
	case i != len(digits):
		return bad("not a number")
	case intLen > 1 && digits[0] == '0':
		return bad("a leading zero (Clojure reads 017 as octal)")
	}
	v.text = s
	v.kind = ednInt
	if float {
		v.kind = ednFloat
		if f, err := strconv.ParseFloat(s, 64); err != nil || math.IsInf(f, 0) {
			return bad("beyond the range of a float")
		}
	}
	return v, nil
}

// str reads a string whose opening quote (at line:col) has been read.
// Escapes are EDN's: \" \\ \n \t \r \b \f and \uXXXX (a surrogate pair
// written as two); the text must be UTF-8.
func (p *ednParser) str(line, col int) (string, error) {
	var b []byte
	for {
		c, ok := p.readByte()
		if !ok {
			return "", p.eof(fmt.Sprintf("inside the string opened at line %d, column %d: it is never closed", line, col))
		}
		if c == '"' {
			break
		}
		if c != '\\' {
			b = append(b, c)
			continue
		}
		el, ecol := p.line, p.col-1
		e, ok := p.readByte()
		if !ok {
			return "", p.eof(fmt.Sprintf("inside the string opened at line %d, column %d: it is never closed", line, col))
		}
		switch e {
		case '"', '\\':
			b = append(b, e)
		case 'n':
			b = append(b, '\n')
		case 't':
			b = append(b, '\t')
		case 'r':
			b = append(b, '\r')
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.errorf(el, ecol, "\\u in a string wants four hexadecimal digits")
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if c1, ok := p.readByte(); ok && c1 == '\\' {
					if c2, ok := p.readByte(); ok && c2 == 'u' {
						r2, _ = p.hex4()
					}
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", p.errorf(el, ecol, "a \\u escape of half a surrogate pair is not text: write the character, or both halves")
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.errorf(el, ecol, "the escape \\%c is outside the EDN faultline reads (\\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX)", e)
		}
	}
	if !utf8.Valid(b) {
		return "", p.errorf(line, col, "the string is not UTF-8 text")
	}
	return string(b), nil
}

func (p *ednParser) hex4() (rune, bool) {
	var buf [4]byte
	for i := range buf {
		c, ok := p.readByte()
		if !ok {
			return 0, false
		}
		buf[i] = c
	}
	n, err := strconv.ParseUint(string(buf[:]), 16, 32)
	return rune(n), err == nil
}

// ednOps is the subset's op keys, for messages.
const ednOps = ":type, :f, :value, :process, :time, :index and :error"

// ednConverter turns op maps into events, keeping what one op must agree
// with the others on: whether values are [k v] tuples.
type ednConverter struct {
	p *ednParser
	// tuples is 1 once an op's value was a [k v] tuple (independent keys),
	// -1 once one was a single register's; tupleLine says where.
	tuples    int
	tupleLine int
}

// event converts the op map m.
func (c *ednConverter) event(m ednValue) (Event, error) {
	ev := Event{Line: m.line}
	var typ, proc, f, value, errv *ednValue
	for i := 0; i < len(m.items); i += 2 {
		k, v := m.items[i], &m.items[i+1]
		if k.kind != ednKeyword {
			return ev, c.p.errorf(k.line, k.col, "an op map's keys are keywords (%s); this one is %s, %s", ednOps, ednKindNames[k.kind], k.shown())
		}
		switch k.text {
		case "type":
			typ = v
		case "process":
			proc = v
		case "f":
			f = v
		case "value":
			value = v
		case "error":
			errv = v
		case "time":
			t, ok := ednInt64(*v)
			if !ok {
				return ev, c.p.errorf(v.line, v.col, ":time %s: want an integer, nanoseconds since the test's start", v.shown())
			}
			ev.Time = t
		case "index":
			n, ok := ednInt64(*v)
			if !ok || n < 0 {
				return ev, c.p.errorf(v.line, v.col, ":index %s: want a non-negative integer, the op's place in the history", v.shown())
			}
			ev.Extra = map[string]json.RawMessage{"index": json.RawMessage(strconv.FormatInt(n, 10))}
		default:
			return ev, c.p.errorf(k.line, k.col, "the key :%s is outside the subset faultline reads: an op map has %s", k.text, ednOps)
		}
	}
	missing := func(key, want string) error {
		return c.p.errorf(m.line, m.col, "the op map has no %s: %s", key, want)
	}
	if typ == nil {
		return ev, missing(":type", "every op says :invoke, :ok, :fail or :info")
	}
	if proc == nil {
		return ev, missing(":process", "every op names its process, an integer or :nemesis")
	}
	if f == nil {
		return ev, missing(":f", "every op names its function: :read, :write or :cas (a nemesis op, any keyword)")
	}
	if typ.kind == ednKeyword {
		ev.Type = Type(typ.text)
	}
	if typ.kind != ednKeyword || ev.Type == Header || !ev.Type.Valid() {
		return ev, c.p.errorf(typ.line, typ.col, ":type %s: want :invoke, :ok, :fail or :info", typ.shown())
	}
	switch n, ok := ednInt64(*proc); {
	case ok && n >= 0 && n <= math.MaxInt32:
		ev.Process = Process(n)
	case proc.kind == ednKeyword && proc.text == "nemesis":
		ev.Process = Nemesis
	default:
		return ev, c.p.errorf(proc.line, proc.col, ":process %s: want a non-negative integer (a client) or :nemesis", proc.shown())
	}
	if f.kind != ednKeyword {
		return ev, c.p.errorf(f.line, f.col, ":f %s: want a keyword, :read, :write or :cas", f.shown())
	}
	ev.F = f.text
	if errv != nil {
		switch errv.kind {
		case ednNil:
		case ednString, ednKeyword:
			ev.Error = errv.text
		default:
			b, err := c.json(nil, *errv)
			if err != nil {
				return ev, err
			}
			ev.Error = string(b)
		}
	}
	if ev.Process == Nemesis {
		if value != nil {
			b, err := c.json(nil, *value)
			if err != nil {
				return ev, err
			}
			ev.Value = b
		}
		return ev, nil
	}
	switch ev.F {
	case "read", "write", "cas":
	default:
		return ev, c.p.errorf(f.line, f.col, ":f :%s: faultline reads Jepsen's register workload, whose ops are :read, :write and :cas", ev.F)
	}
	if value == nil {
		return ev, nil
	}
	return ev, c.clientValue(&ev, *value)
}

// clientValue sets ev's key and value from the :value v of a client op.
func (c *ednConverter) clientValue(ev *Event, v ednValue) error {
	if v.kind == ednNil {
		ev.Value = Null
		return nil
	}
	isPair := func(v ednValue) bool { return v.kind == ednVector && len(v.items) == 2 }
	var tuple bool
	switch ev.F {
	case "cas":
		if !isPair(v) {
			return c.p.errorf(v.line, v.col, ":value %s of a :cas: want [from to], or [k [from to]] with independent keys", v.shown())
		}
		tuple = isPair(v.items[1])
	default:
		tuple = isPair(v)
		if !tuple && v.kind != ednInt && v.kind != ednFloat && v.kind != ednString {
			return c.p.errorf(v.line, v.col, ":value %s of a :%s: a register's value is an integer, a float, a string or nil; with independent keys, a [k v] tuple", v.shown(), ev.F)
		}
	}
	mode := -1
	if tuple {
		mode = 1
	}
	switch {
	case c.tuples == 0:
		c.tuples, c.tupleLine = mode, v.line
	case c.tuples != mode && tuple:
		return c.p.errorf(v.line, v.col, ":value %s is a [k v] tuple (independent keys), but the op at line %d has a single register's value: a history uses one or the other", v.shown(), c.tupleLine)
	case c.tuples != mode:
		return c.p.errorf(v.line, v.col, ":value %s is a single register's value, but the op at line %d has a [k v] tuple (independent keys): a history uses one or the other", v.shown(), c.tupleLine)
	}
	if tuple {
		k := v.items[0]
		switch k.kind {
		case ednInt:
			text, err := CanonicalJSON([]byte(k.text))
			if err != nil {
				return c.p.errorf(k.line, k.col, "the key %s: %v", k.shown(), err)
			}
			ev.Key, ev.KeyIsNumber = text, true
		case ednString:
			ev.Key = k.text
		default:
			return c.p.errorf(k.line, k.col, "the key %s of the tuple %s: a key is an integer or a string", k.shown(), v.shown())
		}
		v = v.items[1]
	}
	check := func(x ednValue) error {
		switch x.kind {
		case ednNil, ednInt, ednFloat, ednString:
			return nil
		}
		return c.p.errorf(x.line, x.col, "%s in the :value of a :%s: a register's value is an integer, a float, a string or nil", x.shown(), ev.F)
	}
	if ev.F == "cas" {
		if !isPair(v) {
			return c.p.errorf(v.line, v.col, ":value %s of a :cas: want [from to]", v.shown())
		}
		for _, x := range v.items {
			if err := check(x); err != nil {
				return err
			}
		}
	} else if err := check(v); err != nil {
		return err
	}
	b, err := c.json(nil, v)
	if err != nil {
		return err
	}
	ev.Value = b
	return nil
}

// json appends v as JSON: nil as null, keywords as their names, vectors,
// lists and sets as arrays, maps as objects (a key must be a keyword, a
// string, a number, a boolean or nil: its text is the object's key).
func (c *ednConverter) json(dst []byte, v ednValue) ([]byte, error) {
	switch v.kind {
	case ednNil:
		return append(dst, "null"...), nil
	case ednBool, ednInt, ednFloat:
		return append(dst, v.text...), nil
	case ednString, ednKeyword:
		return appendJSONStringHTML(dst, v.text, false), nil
	case ednMap:
		dst = append(dst, '{')
		for i := 0; i < len(v.items); i += 2 {
			if i > 0 {
				dst = append(dst, ',')
			}
			k := v.items[i]
			switch k.kind {
			case ednVector, ednList, ednSet, ednMap:
				return dst, c.p.errorf(k.line, k.col, "a map key that is %s, %s, has no JSON form: keys of maps in values are keywords, strings, numbers, booleans or nil", ednKindNames[k.kind], k.shown())
			case ednNil:
				dst = append(dst, `"nil"`...)
			default:
				dst = appendJSONStringHTML(dst, k.text, false)
			}
			dst = append(dst, ':')
			var err error
			if dst, err = c.json(dst, v.items[i+1]); err != nil {
				return dst, err
			}
		}
		return append(dst, '}'), nil
	}
	dst = append(dst, '[')
	for i, it := range v.items {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = c.json(dst, it); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// ednInt64 returns v's value if it is an integer in the int64 range.
func ednInt64(v ednValue) (int64, bool) {
	if v.kind != ednInt {
		return 0, false
	}
	n, err := strconv.ParseInt(v.text, 10, 64)
	return n, err == nil
}

// ReadEDN reads a Jepsen history in EDN (the subset described above) from
// r and returns its events, the same events a JSON Lines history of the
// same ops reads as: keywords become their names (:read is "read",
// :nemesis the Nemesis process), a [k v] tuple becomes the event's key
// (an integer key a number key, see Event.KeyIsNumber) and value, [from to]
// the value [from,to], nil null, :index the extra field "index", and :error
// the event's error (a keyword or string as its text, anything else as
// JSON). Nemesis ops are kept as nemesis events with their :f and :value,
// as the JSON Lines reader keeps a foreign history's nemesis lines; the
// checkers skip them, FaultWindows draws them.
//
// Each event's Line is the line its map starts on, so evidence names the
// EDN file's lines. name is used in error messages, which name the file,
// the line and the column: NAME:LINE:COL: what was found. On an error the
// events read before it are returned with it. ReadEDN keeps one op at a
// time besides the events, so memory grows with the events only.
func ReadEDN(r io.Reader, name string) ([]Event, error) {
	p := newEDNParser(r, name)
	c := &ednConverter{p: p}
	var evs []Event
	inVector, vectorDone, sawMap := false, false, false
	var vline, vcol int
	add := func(first byte, line, col int) error {
		m, err := p.value(first, line, col, 1)
		if err != nil {
			return err
		}
		ev, err := c.event(m)
		if err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	}
	for {
		b, line, col, ok := p.skip()
		if !ok {
			break
		}
		var err error
		switch {
		case inVector && b == ']':
			inVector, vectorDone = false, true
		case b == '{' && !vectorDone:
			sawMap = sawMap || !inVector
			err = add(b, line, col)
		case b == '[' && !inVector && !vectorDone && !sawMap:
			inVector, vline, vcol = true, line, col
		default:
			v, verr := p.value(b, line, col, 1)
			if verr != nil {
				return evs, verr
			}
			where := "where an op map {:type ... :f ...} belongs"
			switch {
			case vectorDone:
				where = "after the vector of ops: a history is one vector of op maps, or op maps one after another"
			case sawMap && v.kind == ednVector:
				where = "among op maps: a history is one vector of op maps, or op maps one after another, not both"
			case inVector:
				where = "in the vector of ops, which holds op maps {:type ... :f ...}"
			}
			err = p.errorf(line, col, "%s %s %s", ednKindNames[v.kind], v.shown(), where)
		}
		if err != nil {
			return evs, err
		}
	}
	if p.ioErr != nil {
		return evs, p.eof("")
	}
	if inVector {
		return evs, p.eof(fmt.Sprintf("inside the vector of ops opened at line %d, column %d: it is never closed", vline, vcol))
	}
	return evs, nil
}

// ReadEDNFile reads the EDN history at path (see ReadEDN).
func ReadEDNFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadEDN(f, path)
}
