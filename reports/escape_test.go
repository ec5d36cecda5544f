package reports

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/browsertest"
)

// hostileRun builds the reports of a run whose target put hostile strings
// in keys, values, errors, node roles, fault values and log lines.
func hostileRun(t *testing.T) (dir, html string) {
	dir = t.TempDir()
	r := genRun(t, dir, genOpts{ops: 3000, hostile: true, verdict: checkers.Invalid})
	r.Description = hostileQuote + hostileScript
	r.Checkers = append(r.Checkers, checkers.Result{Name: "thresholds", Verdict: checkers.Unknown, Summary: hostileImg, Explanation: hostileClose + hostileUni})
	if err := WriteResults(dir, r); err != nil {
		t.Fatal(err)
	}
	sum := filepath.Join(dir, "summary.md")
	if err := Build(dir, BuildOptions{StepSummary: sum}); err != nil {
		t.Fatal(err)
	}
	return dir, readFile(t, filepath.Join(dir, "report.html"))
}

func TestHostileStringsAreEscaped(t *testing.T) {
	dir, html := hostileRun(t)

	// Exactly the two script elements the report ships; no injected tag.
	if n := strings.Count(strings.ToLower(html), "<script"); n != 2 {
		t.Errorf("report has %d <script elements, want 2 (data and code)", n)
	}
	for _, bad := range []string{"<img", "<XSS>", "alert(1)</script>", "<script>alert"} {
		if strings.Contains(html, bad) {
			t.Errorf("report contains %q unescaped", bad)
		}
	}
	// They are shown, as text.
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(3)&gt;", "&lt;XSS&gt;", "ключ", "日本語"} {
		if !strings.Contains(html, want) {
			t.Errorf("report does not show %q", want)
		}
	}
	// The embedded data is JSON with nothing that could end its element,
	// and decodes back to the hostile strings.
	const open = `<script type="application/json" id="fl-data">`
	i := strings.Index(html, open)
	if i < 0 {
		t.Fatal("no data element")
	}
	body := html[i+len(open):]
	body = body[:strings.Index(body, "</script>")]
	if strings.ContainsAny(body, "<>") || strings.Contains(body, "\u2028") {
		t.Errorf("data element contains raw <, > or U+2028: %.200s", body)
	}
	var d jsData
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("data element is not JSON: %v", err)
	}
	if len(d.Faults) == 0 || !strings.Contains(d.Faults[0].N, hostileScript) {
		t.Errorf("fault names in the data = %+v, want the hostile name back", d.Faults)
	}

	// junit.xml: well-formed, the strings round-trip, no raw tag.
	raw := readFile(t, filepath.Join(dir, "junit.xml"))
	if strings.Contains(raw, "<script") || strings.Contains(raw, "<img") {
		t.Error("junit.xml contains a raw hostile tag")
	}
	var j junitSuites
	if err := xml.Unmarshal([]byte(raw), &j); err != nil {
		t.Fatalf("junit.xml is not well-formed: %v", err)
	}
	if f := j.Suites[0].Cases[0].Failure; f == nil || !strings.Contains(f.Text, hostileScript) {
		t.Errorf("junit failure text lost the evidence: %+v", f)
	}
	if e := j.Suites[0].Cases[2].Error; e == nil || e.Message != hostileImg {
		t.Errorf("junit error = %+v, want message %q", e, hostileImg)
	}

	// Step summary: no raw HTML; table rows intact.
	md := readFile(t, filepath.Join(dir, "summary.md"))
	for _, bad := range []string{"<script", "<img", "<XSS>"} {
		if strings.Contains(md, bad) {
			t.Errorf("step summary contains %q", bad)
		}
	}
	for _, l := range strings.Split(md, "\n") {
		if strings.HasPrefix(l, "| thresholds") && strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") != 4 {
			t.Errorf("a hostile summary broke the table row: %s", l)
		}
	}
}

// The same hostile report in a real browser: no dialog, no error, no
// injected element.
func TestHostileReportInBrowser(t *testing.T) {
	browsertest.Chromium(t)
	dir, _ := hostileRun(t)
	p := browsertest.Open(t, filepath.Join(dir, "report.html"), 60*time.Second)
	if n := browsertest.Eval[int](t, p, `document.querySelectorAll("script").length`); n != 2 {
		t.Errorf("%d script elements in the DOM, want 2", n)
	}
	if n := browsertest.Eval[int](t, p, `document.querySelectorAll("img, xss").length`); n != 0 {
		t.Errorf("%d injected elements in the DOM", n)
	}
	if !browsertest.Eval[bool](t, p, `document.body.textContent.includes("<script>alert(1)</script>")`) {
		t.Error("the hostile text is not shown as text")
	}
	if errs := p.Errors(); len(errs) > 0 {
		t.Errorf("browser errors: %q", errs)
	}
	if reqs := p.Requests(); len(reqs) > 0 {
		t.Errorf("the report made requests: %q", reqs)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Fatal(err)
	}
}
