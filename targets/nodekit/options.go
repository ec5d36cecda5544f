package nodekit

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/faultline/faultline/targets"
)

// OptionDefaults maps each of options to its default.
func OptionDefaults(options []targets.Option) map[string]string {
	m := make(map[string]string, len(options))
	for _, o := range options {
		m[o.Name] = o.Default
	}
	return m
}

// Options reads a reference system's NodeConfig.Opts against the options
// it declares: each getter returns the value given, or else the default,
// and records what is wrong with it; Err returns every error recorded.
// Error texts start with the system's name.
type Options struct {
	system   string
	defaults map[string]string
	opts     map[string]string
	errs     []error
}

// ParseOptions starts reading opts for system, which declares options.
// Each name not declared is an error, recorded at once, in name order.
func ParseOptions(system string, options []targets.Option, opts map[string]string) *Options {
	defaults := OptionDefaults(options)
	p := &Options{system: system, defaults: defaults, opts: opts}
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		if _, ok := defaults[k]; !ok {
			p.Errorf("unknown option %q (known: %s)", k, strings.Join(slices.Sorted(maps.Keys(defaults)), ", "))
		}
	}
	return p
}

// Get returns option k as given, or its default.
func (p *Options) Get(k string) string {
	if v, ok := p.opts[k]; ok {
		return v
	}
	return p.defaults[k]
}

// Errorf records an error; its text gets the system's name in front.
func (p *Options) Errorf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(p.system+": "+format, args...))
}

// Err returns every error recorded so far, joined; nil if none.
func (p *Options) Err() error { return errors.Join(p.errs...) }

// Duration returns option k as a positive duration, in Go syntax (300ms)
// or as a bare number of milliseconds.
func (p *Options) Duration(k string) time.Duration {
	s := p.Get(k)
	var d time.Duration
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		if n > math.MaxInt64/int64(time.Millisecond) {
			n = -1 // overflows a duration: refused below
		}
		d = time.Duration(n) * time.Millisecond // a bare number is milliseconds
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 {
		p.Errorf("option %s=%q: want a positive duration such as 300ms (a bare number is milliseconds)", k, s)
	}
	return d
}

// Positive returns option k as a positive integer.
func (p *Options) Positive(k string) uint64 {
	s := p.Get(k)
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		p.Errorf("option %s=%q: want a positive integer", k, s)
	}
	return n
}

// LogLevel returns option k as an hclog level name.
func (p *Options) LogLevel(k string) string {
	s := p.Get(k)
	if hclog.LevelFromString(s) == hclog.NoLevel {
		p.Errorf("option %s=%q: want trace, debug, info, warn or error", k, s)
	}
	return s
}

// CheckBugs says which of the bug switches asked for is not one of bugs
// (the first, as given); nil if none.
func CheckBugs(system string, asked []string, bugs map[string]string) error {
	for _, b := range asked {
		if _, ok := bugs[b]; !ok {
			return fmt.Errorf("%s: unknown bug switch %q (known: %s)", system, b, strings.Join(slices.Sorted(maps.Keys(bugs)), ", "))
		}
	}
	return nil
}

// NewLogger returns the node's logger, named system/id, at level, writing
// to stderr with the node's clock (clock skew shows in its lines), and
// makes it the kit's Log.
func (n *Node) NewLogger(system, level string) hclog.Logger {
	l := hclog.New(&hclog.LoggerOptions{
		Name:       system + "/" + n.cfg.ID,
		Level:      hclog.LevelFromString(level),
		Output:     os.Stderr,
		TimeFn:     n.Now, // clock skew shows in the log lines
		TimeFormat: "15:04:05.000",
	})
	n.Log = l.Info
	return l
}
