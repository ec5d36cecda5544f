package targets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ReadyPath is what a runtime polls to learn that a node of faultline's own
// (`faultline node`) is ready: its admin API answers GET ReadyPath with
// 200 OK.
const ReadyPath = "/admin/status"

// NotReadyError is WaitHTTP's error when its URL did not answer 200 (or a
// process target's probe's, when it did not pass): the process behind it
// ended first (Exited is set), or the timeout passed.
type NotReadyError struct {
	URL     string // the URL, or what the probe tried ("a TCP connection to ADDR")
	Timeout time.Duration
	// Last is the last answer ("HTTP 503: ...") or the last request's
	// error; "" if no request was made.
	Last string
	// Exited says how the process ended, when it ended before it answered.
	Exited error
}

func (e *NotReadyError) Error() string {
	if e.Exited != nil {
		return fmt.Sprintf("exited before it was ready (%v)", e.Exited)
	}
	probe := e.URL
	if strings.HasPrefix(probe, "http://") || strings.HasPrefix(probe, "https://") {
		probe = "GET " + probe
	}
	return fmt.Sprintf("not ready after %v: %s: %s", e.Timeout, probe, e.Last)
}

// Readiness polling: the first try is at once, then the delay doubles from
// readyFirstDelay up to readyMaxDelay; one try takes at most readyTry.
const (
	readyFirstDelay = 5 * time.Millisecond
	readyMaxDelay   = 100 * time.Millisecond
	readyTry        = 500 * time.Millisecond
)

// readyHTTP has no proxy (nodes are on loopback or Docker's host) and no
// keep-alive: a readiness wait asks a few times and is done, and a kept
// connection would outlive a node that is killed next.
var readyHTTP = &http.Client{
	Transport: &http.Transport{
		Proxy:             nil,
		DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		DisableKeepAlives: true,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// WaitHTTP polls GET url until it answers 200 OK, and then returns nil. It
// tries at once, then after a delay that doubles from 5 ms to 100 ms; one
// try takes at most 500 ms (a process that is starting, or stopped, may
// accept a connection and never answer).
//
// exited, if not nil, is called after every failed try: a non-nil error
// means the process behind url has ended, and WaitHTTP returns at once a
// *NotReadyError with Exited set to it. When timeout (if > 0) passes first,
// it returns a *NotReadyError naming the last answer. When ctx ends first,
// it returns an error that wraps ctx.Err() and is no NotReadyError.
//
// It uses no HTTP proxy and keeps no connection open. Safe for concurrent
// use.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration, exited func(context.Context) error) error {
	return poll(ctx, url, "GET "+url+" to answer 200", timeout, exited, func(ctx context.Context) error {
		code, body, err := getOnce(ctx, url)
		switch {
		case err != nil:
			return err
		case code != http.StatusOK:
			return fmt.Errorf("HTTP %d: %.200s", code, strings.TrimSpace(string(body)))
		}
		return nil
	})
}

// poll calls try (each call bounded by 2*readyTry) at once, then after a
// delay that doubles from readyFirstDelay up to readyMaxDelay, until it
// returns nil; then poll returns nil. exited and timeout are as for
// WaitHTTP: a *NotReadyError (URL name, Last the last try's error) when
// the process ends or the timeout passes first; when ctx ends first, an
// error that wraps ctx.Err() saying "waiting for " + what.
func poll(ctx context.Context, name, what string, timeout time.Duration, exited func(context.Context) error, try func(context.Context) error) error {
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	delay := readyFirstDelay
	for {
		tctx, cancel := context.WithTimeout(ctx, 2*readyTry)
		err := try(tctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
		last := err.Error()
		if exited != nil {
			if why := exited(ctx); why != nil {
				return &NotReadyError{URL: name, Timeout: timeout, Last: last, Exited: why}
			}
		}
		select {
		case <-deadline:
			return &NotReadyError{URL: name, Timeout: timeout, Last: last}
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, readyMaxDelay)
	}
}

// getOnce makes one GET request and returns the status code and the start
// of the body. Errors leave out the URL, which the caller names.
func getOnce(ctx context.Context, u string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTry)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := readyHTTP.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, body, nil
}
