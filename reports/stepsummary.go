package reports

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// StepSummary writes r as GitHub-flavoured Markdown for a job's step
// summary: the verdict, a table of checkers, explanations of the ones that
// are not valid, the load, the faults, and where the report is. dir is the
// run directory as the reader should find it ("" to use r.RunDir). Every
// string that may come from the target is escaped for Markdown and HTML.
func StepSummary(w io.Writer, r *Results, dir string) error {
	icon := map[string]string{"valid": "✅", "invalid": "❌"}
	ic := func(v string) string {
		if s, ok := icon[v]; ok {
			return s
		}
		return "⚠️"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s faultline %s: %s\n\n", ic(r.Verdict), md(r.Scenario), strings.ToUpper(md(firstNonEmpty(r.Verdict, "unknown"))))
	line := []string{fmt.Sprintf("exit %d: %s", r.ExitCode, md(r.ExitReason)), fmt.Sprintf("seed `%d`", r.Seed)}
	if r.System != "" {
		line = append(line, fmt.Sprintf("%s ×%d", md(r.System), len(r.Nodes)))
	}
	if r.Runtime != "" {
		line = append(line, "runtime "+md(r.Runtime))
	}
	if len(r.Bugs) > 0 {
		line = append(line, "bugs "+md(strings.Join(r.Bugs, ", ")))
	}
	b.WriteString(strings.Join(line, " · ") + "\n\n")
	if st := r.Stopped; st != nil {
		fmt.Fprintf(&b, "> **The run did not finish:** it stopped during the %s phase (exit %d): %s\n\n", md(st.Phase), st.ExitCode, md(st.Reason))
	}
	if r.RunInvalid != "" {
		fmt.Fprintf(&b, "> **The run itself was invalid:** %s\n\n", md(r.RunInvalid))
	}
	if len(r.Checkers) > 0 {
		b.WriteString("| checker | verdict | summary |\n| --- | --- | --- |\n")
		for _, c := range r.Checkers {
			v := verdictLabel(c)
			if c.Threshold {
				v += " (threshold)"
			}
			icv := ic(string(c.Verdict))
			if checkerClass(c) == "na" {
				icv = "➖"
			}
			fmt.Fprintf(&b, "| %s | %s %s | %s |\n", md(c.Name), icv, md(v), md(summaryText(c)))
		}
		b.WriteString("\n")
	}
	for _, c := range r.Checkers {
		if string(c.Verdict) == "valid" || checkerClass(c) == "na" || (c.Explanation == "" && len(c.Anomalies) == 0) {
			continue
		}
		fmt.Fprintf(&b, "<details><summary>%s: %s</summary>\n\n<pre>", htmlText(c.Name), htmlText(string(c.Verdict)))
		b.WriteString(htmlText(c.Explanation))
		shown := min(len(c.Anomalies), 10)
		for _, a := range c.Anomalies[:shown] {
			b.WriteString(htmlText("\n- " + anomalyText(a)))
		}
		if rest := restOfAnomalies(r, c, shown); rest != "" {
			b.WriteString(htmlText("\n" + rest))
		}
		b.WriteString("</pre>\n\n</details>\n\n")
	}
	if s := r.Stats; s.Ops > 0 {
		load := fmt.Sprintf("**Load** %d ops (ok %d, fail %d, mismatch %d, info %d)", s.Ops, s.OK, s.Fail, s.Mismatch, s.Info)
		if s.TargetRate > 0 {
			load += fmt.Sprintf(", %.1f ops/s of %.0f targeted", s.AchievedRate, s.TargetRate)
		} else if s.AchievedRate > 0 {
			load += fmt.Sprintf(", %.1f ops/s (closed loop)", s.AchievedRate)
		}
		l := s.Latency
		fmt.Fprintf(&b, "%s · **latency** p50 %s, p99 %s, p99.9 %s, max %s\n\n", load, us(l.P50), us(l.P99), us(l.P999), us(l.Max))
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(&b, "**Faults** %d injected: %s\n\n", len(r.Faults), md(faultNames(r.Faults)))
	} else {
		b.WriteString("**Faults** none injected\n\n")
	}
	if dir == "" {
		dir = r.RunDir
	}
	if dir != "" {
		fmt.Fprintf(&b, "**Report** `%s` (self-contained; upload the run directory as an artifact to open it)\n", codeSpan(strings.TrimRight(dir, "/")+"/report.html"))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// AppendStepSummary appends StepSummary to the file at path (GitHub's
// $GITHUB_STEP_SUMMARY), creating it if needed.
func AppendStepSummary(path string, r *Results, dir string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := StepSummary(f, r, dir); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// htmlText escapes text for HTML (GitHub renders the HTML in step summaries).
func htmlText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(xmlSafe(s))
}

var mdEscaper = strings.NewReplacer(
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"#", `\#`, "~", `\~`, "\r", " ", "\n", " ",
)

// md escapes text for one line of Markdown (a table cell or a paragraph).
func md(s string) string { return mdEscaper.Replace(xmlSafe(s)) }

// codeSpan makes s safe inside a single-backtick code span.
func codeSpan(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s)
}
