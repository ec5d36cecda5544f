// Package browsertest opens a local HTML file in headless Chromium from a Go
// test (through chromedp) and records what a reviewer's browser would
// complain about: console errors, uncaught exceptions, browser log errors
// (a blocked resource, a Content-Security-Policy violation), network
// requests, and JavaScript dialogs (an injected alert()). It is meant for
// tests only.
//
// Chromium comes from Debian's chromium package (or any Chrome/Chromium on
// PATH, or $CHROMIUM). Without one the test is skipped, except under CI=true,
// where a missing browser fails the test: CI installs it (.ci/run).
package browsertest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium returns the path of a Chromium or Chrome binary. Without one it
// skips the test, or fails it when CI=true.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium on PATH (install Debian's chromium: apt-get install -y chromium, or set $CHROMIUM)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; under CI=true the browser test must run")
	}
	t.Skip(msg)
	return ""
}

// Page is one file opened in a headless browser tab.
type Page struct {
	Ctx  context.Context // a chromedp context for the tab; run actions on it
	URL  string
	mu   sync.Mutex
	errs []string
	reqs []string
}

// Open starts a headless Chromium (one per call; closed at the test's end),
// loads the file at path in a 1280x900 viewport, and waits for the load
// event. Everything in the browser is bounded by timeout.
func Open(t testing.TB, path string, timeout time.Duration) *Page {
	t.Helper()
	bin := Chromium(t)
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: abs}).String()
	base, cancelBase := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancelBase)
	ctx, cancel := chromedp.NewContext(base,
		chromedp.WithAllocatorOptions(chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.WindowSize(1280, 900),
			chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir())),
		chromedp.WithErrorf(func(string, ...any) {}),
	)
	t.Cleanup(cancel)
	p := &Page{Ctx: ctx, URL: u}
	// Start the browser (the first Run) and subscribe before navigating.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	if err := chromedp.Listen(ctx, p.event); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(u)); err != nil {
		t.Fatalf("loading %s: %v", u, err)
	}
	return p
}

func (p *Page) event(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var parts []string
			for _, a := range ev.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			p.errs = append(p.errs, "console."+string(ev.Type)+": "+strings.Join(parts, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		p.errs = append(p.errs, fmt.Sprintf("uncaught exception at %s:%d:%d: %s", d.URL, d.LineNumber+1, d.ColumnNumber+1, msg))
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError {
			p.errs = append(p.errs, fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		if ev.Request != nil {
			p.reqs = append(p.reqs, ev.Request.URL)
		}
	case *page.EventJavascriptDialogOpening:
		p.errs = append(p.errs, fmt.Sprintf("a JavaScript %s dialog opened: %q", ev.Type, ev.Message))
		go chromedp.Run(p.Ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			return err
		}))
	}
}

// Errors returns what the browser reported as errors so far.
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Requests returns the URLs of every request the page made other than
// loading itself.
func (p *Page) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.reqs {
		if r != p.URL {
			out = append(out, r)
		}
	}
	return out
}

// Eval evaluates a JavaScript expression in the page and decodes its
// JSON-able result into T.
func Eval[T any](t testing.TB, p *Page, expr string) T {
	t.Helper()
	v, err := chromedp.Run(p.Ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// Goto loads the file at path in p's tab (the browser it already runs)
// and waits for the load event; Requests then leaves that file out.
func (p *Page) Goto(t testing.TB, path string) {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	u := (&url.URL{Scheme: "file", Path: abs}).String()
	p.mu.Lock()
	p.URL = u
	p.mu.Unlock()
	if err := chromedp.Do(p.Ctx, chromedp.Navigate(u)); err != nil {
		t.Fatalf("loading %s: %v", u, err)
	}
}

// FirstViolationJS is a JavaScript expression for a page of Porcupine's
// (linearizability.html): it finds the first violation as Porcupine's
// "jump to first error" does (the leftmost invalid linearization point
// not hidden) and returns {found, x, y, w, h}: its centre in the window's
// coordinates and the window's size.
const FirstViolationJS = `(() => {
	const pts = Array.from(document.querySelectorAll('line.linearization-invalid.linearization-point'))
		.filter(p => !p.parentElement.classList.contains('hidden'))
		.sort((a, b) => a.getAttribute('x1') - b.getAttribute('x1'));
	const v = {found: pts.length > 0, x: 0, y: 0, w: window.innerWidth, h: window.innerHeight};
	if (v.found) { const r = pts[0].getBoundingClientRect(); v.x = r.left + r.width / 2; v.y = r.top + r.height / 2; }
	return v;
})()`

// ArtifactsEnv names the environment variable that sets where tests keep
// their screenshots (ArtifactDir).
const ArtifactsEnv = "FAULTLINE_ARTIFACTS"

// ArtifactDir returns the directory a test writes its screenshots to:
// $FAULTLINE_ARTIFACTS (created if need be; kept), else the test's own
// artifact directory (testing.T.ArtifactDir: kept with go test -artifacts
// -outputdir DIR, else a temporary directory removed after the test).
func ArtifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv(ArtifactsEnv); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("%s=%s: %v", ArtifactsEnv, d, err)
		}
		return d
	}
	return t.ArtifactDir()
}

// Screenshot saves a full-page PNG as name in ArtifactDir(t), logs its
// path and returns it.
func Screenshot(t *testing.T, p *Page, name string) string {
	t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return saveShot(t, name, png)
}

// ViewportScreenshot saves a PNG of what the window shows at its scroll
// position (1280x900; not the whole page) as name in ArtifactDir(t), logs
// its path and returns it.
func ViewportScreenshot(t *testing.T, p *Page, name string) string {
	t.Helper()
	png, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return saveShot(t, name, png)
}

func saveShot(t *testing.T, name string, png []byte) string {
	t.Helper()
	path := filepath.Join(ArtifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes; %s=DIR keeps screenshots there)", path, len(png), ArtifactsEnv)
	return path
}
