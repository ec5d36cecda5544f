package targets

import "time"

// RuntimeOptions are the timeouts and the log every runtime takes. The zero
// value is ready to use: zero fields get the defaults given to WithDefaults.
type RuntimeOptions struct {
	// ReadyTimeout bounds how long a starting node (or proxy container) may
	// take until its admin API answers.
	ReadyTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration
	// CloseGrace is how long Close waits after SIGTERM before SIGKILL, so
	// that logs are complete.
	CloseGrace time.Duration
	// Log receives one-line progress messages when the ClusterSpec has no
	// Log of its own. Nil means silent. It may be called from several
	// goroutines at once.
	Log func(format string, args ...any)
}

// WithDefaults returns o with every zero duration replaced by the one in def.
func (o RuntimeOptions) WithDefaults(def RuntimeOptions) RuntimeOptions {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = def.ReadyTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = def.StopTimeout
	}
	if o.CloseGrace <= 0 {
		o.CloseGrace = def.CloseGrace
	}
	return o
}
