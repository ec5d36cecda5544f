package targets

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitHTTPReady(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	if err := WaitHTTP(context.Background(), srv.URL+ReadyPath, 5*time.Second, nil); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (two 503s, then 200)", n)
	}
}

func TestWaitHTTPTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"not ready"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	t0 := time.Now()
	err := WaitHTTP(context.Background(), srv.URL+ReadyPath, 200*time.Millisecond, nil)
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Exited != nil {
		t.Fatalf("WaitHTTP of a server answering 503: %v, want a NotReadyError for the timeout", err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("gave up after %s, want about 200ms", d)
	}
	for _, want := range []string{"not ready after 200ms", srv.URL + ReadyPath, `HTTP 503: {"error":"not ready"}`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestWaitHTTPHang: a server that accepts and never answers (a paused
// process) is asked again, and the timeout still holds.
func TestWaitHTTPHang(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close() // the kernel accepts; nobody reads
	t0 := time.Now()
	err = WaitHTTP(context.Background(), "http://"+l.Addr().String()+ReadyPath, 700*time.Millisecond, nil)
	var nr *NotReadyError
	if !errors.As(err, &nr) {
		t.Fatalf("WaitHTTP of a server that never answers: %v, want a NotReadyError", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("gave up after %s, want about 700ms", d)
	}
}

func TestWaitHTTPExited(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // connections are refused
	tries := 0
	exited := func(context.Context) error {
		tries++
		if tries == 3 {
			return errors.New("exit status 3")
		}
		return nil
	}
	err = WaitHTTP(context.Background(), "http://"+addr+ReadyPath, time.Minute, exited)
	var nr *NotReadyError
	if !errors.As(err, &nr) || nr.Exited == nil || !strings.Contains(err.Error(), "exited before it was ready (exit status 3)") {
		t.Fatalf("WaitHTTP of a process that exits: %v, want a NotReadyError saying it exited", err)
	}
	if !strings.Contains(nr.Last, "refused") {
		t.Errorf("Last = %q, want the refused connection", nr.Last)
	}
}

func TestWaitHTTPCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = WaitHTTP(ctx, "http://"+addr+ReadyPath, 0, nil)
	var nr *NotReadyError
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &nr) {
		t.Fatalf("WaitHTTP with an ending context: %v, want an error wrapping the context's and no NotReadyError", err)
	}
}
