package reports

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/faultline/faultline/checkers"
)

// Summary writes the short end-of-run summary: the verdict of each checker,
// the load figures, the latency percentiles, and where the results are.
// It is plain text (no colour, no cursor control) so it reads the same on a
// terminal and in a CI log.
func Summary(w io.Writer, r *Results) {
	head := fmt.Sprintf("faultline %s", r.Scenario)
	if r.Seed != 0 {
		head += fmt.Sprintf("  seed %d", r.Seed)
	}
	if r.Runtime != "" {
		head += "  runtime " + r.Runtime
	}
	if r.System != "" {
		head += fmt.Sprintf("  %s x%d", r.System, len(r.Nodes))
	}
	if len(r.Bugs) > 0 {
		head += "  bugs " + strings.Join(r.Bugs, ",")
	}
	fmt.Fprintln(w, head)
	if l := ShardLine(r); l != "" {
		fmt.Fprintln(w, "  "+oneLine(l, 2000))
	}
	width := 0
	for _, c := range r.Checkers {
		if len(c.Name) > width {
			width = len(c.Name)
		}
	}
	for _, c := range r.Checkers {
		label := verdictLabel(c)
		if c.Verdict == checkers.NotApplicable && !c.Figures {
			label = "n/a"
		}
		text := summaryText(c)
		switch {
		case c.Advisory && c.Gates != "":
			text = "(on the expected model: " + string(c.Gates) + ") " + text
		case c.Advisory:
			text = "(reported only: beyond the expected model) " + text
		}
		fmt.Fprintf(w, "  %-*s  %-7s  %s\n", width, c.Name, label, text)
		if (c.Verdict == checkers.Invalid || c.Verdict == checkers.Unknown) && !c.Figures && c.Explanation != "" {
			// The explanation without the anomalies it repeats: they
			// follow, each with its history lines.
			for _, line := range firstLines(withoutAnomalies(c), 6) {
				fmt.Fprintf(w, "  %*s    %s\n", width, "", oneLine(line, 300))
			}
		}
		shown := min(len(c.Anomalies), summaryAnomalies)
		for _, a := range c.Anomalies[:shown] {
			fmt.Fprintf(w, "  %*s    - %s\n", width, "", oneLine(anomalyLine(a), 300))
		}
		if rest := restOfAnomalies(r, c, shown); rest != "" {
			fmt.Fprintf(w, "  %*s    %s\n", width, "", rest)
		}
	}
	if l := r.Consistency; l != nil {
		ladderLines(w, l)
	}
	if len(r.Faults) > 0 {
		fmt.Fprintf(w, "  faults: %d injected (%s)\n", len(r.Faults), faultNames(r.Faults))
	}
	s := r.Stats
	if s.Ops > 0 {
		// The workload's own figures: the ops it sent in the main phase
		// (the stats checker above counts the history's, final reads
		// included), and their latency from the intended start.
		line := fmt.Sprintf("  load: %d ops sent in the main phase (ok %d, fail %d, mismatch %d, info %d)", s.Ops, s.OK, s.Fail, s.Mismatch, s.Info)
		if s.AchievedRate > 0 {
			line += fmt.Sprintf("  %.1f ops/s", s.AchievedRate)
			if s.TargetRate > 0 {
				line += fmt.Sprintf(" (target %.0f, %.1f%%)", s.TargetRate, 100*s.AchievedRate/s.TargetRate)
			} else {
				line += " (closed loop)"
			}
		}
		if s.Missed > 0 {
			line += fmt.Sprintf("  missed %d", s.Missed)
		}
		fmt.Fprintln(w, line)
		l := s.Latency
		fmt.Fprintf(w, "  %s p50 %s  p99 %s  p99.9 %s  max %s\n", loadLatencyLabel(s), us(l.P50), us(l.P99), us(l.P999), us(l.Max))
	}
	if r.RunInvalid != "" {
		fmt.Fprintf(w, "  run invalid: %s\n", r.RunInvalid)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", warn)
	}
	if st := r.Stopped; st != nil {
		fmt.Fprintf(w, "  stopped during the %s phase (exit %d): %s\n", st.Phase, st.ExitCode, st.Reason)
	}
	fmt.Fprintf(w, "verdict: %s (exit %d: %s)\n", strings.ToUpper(r.Verdict), r.ExitCode, r.ExitReason)
	if r.RunDir != "" {
		for _, name := range []string{"report.html", "results.json"} {
			p := filepath.Join(r.RunDir, name)
			if fileExists(p) {
				fmt.Fprintf(w, "%-8s %s\n", strings.TrimSuffix(name, filepath.Ext(name))+":", p)
				break
			}
		}
	}
}

// loadLatencyLabel says what the workload's latency figures measure:
// from each op's intended start in open loop (its wait for a worker
// counted), from its send in closed loop; over every op sent, whatever
// its outcome.
func loadLatencyLabel(s Stats) string {
	if s.TargetRate > 0 {
		return "latency of the load, from the intended start:"
	}
	return "latency of the load, from the send (closed loop):"
}

// ladderLines writes the consistency ladder: the strongest model that
// held, then one line per model.
func ladderLines(w io.Writer, l *checkers.Ladder) {
	head := "  consistency: strongest model that held: "
	if l.Strongest == "" {
		head += "none"
	} else {
		head += l.Strongest
	}
	if l.Expect != "" {
		head += "  (expect: " + l.Expect + ")"
	}
	fmt.Fprintln(w, head)
	for _, rg := range l.Rungs {
		v := string(rg.Verdict)
		if rg.Verdict == checkers.NotApplicable {
			v = "n/a"
		}
		var notes []string
		if rg.Note != "" {
			notes = append(notes, rg.Note)
		} else if rg.Implied {
			notes = append(notes, "implied")
		}
		if l.Expect != "" && !rg.Gating {
			notes = append(notes, "reported only")
		}
		if rg.Anomalies > 0 {
			notes = append(notes, fmt.Sprintf("%d anomalies, %s", rg.Anomalies, rg.Checker))
		}
		line := fmt.Sprintf("    %-20s %-7s", rg.Model, v)
		if len(notes) > 0 {
			line += " " + strings.Join(notes, "; ")
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// summaryAnomalies is how many anomalies of each checker the terminal
// summary shows.
const summaryAnomalies = 5

// withoutAnomalies is c's explanation without the lines that are one of
// its anomalies' messages or count the rest of them, and without runs of
// blank lines.
func withoutAnomalies(c checkers.Result) string {
	msgs := map[string]bool{}
	for _, a := range c.Anomalies {
		msgs[strings.TrimSpace(a.Message)] = true
	}
	var out []string
	for _, line := range strings.Split(c.Explanation, "\n") {
		t := strings.TrimSpace(line)
		if msgs[t] || t == "" && (len(out) == 0 || out[len(out)-1] == "") {
			continue
		}
		if len(c.Anomalies) > 0 && (strings.HasPrefix(t, "... and ") || strings.HasPrefix(t, "… and ")) {
			continue // the summary says how many more, and where
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// anomalyLine is one anomaly in the terminal: kind, key, the answering
// node, its history lines (the operation in question first; at most three
// named) and the message.
func anomalyLine(a checkers.Anomaly) string {
	var b strings.Builder
	b.WriteString(a.Kind)
	if a.Key != "" {
		b.WriteString(" on key " + a.Key)
	}
	if a.Node != "" {
		b.WriteString(", node " + a.Node)
	}
	if n := len(a.Refs); n > 0 {
		b.WriteString(" [" + strings.Join(a.Refs[:min(n, 3)], ", "))
		if n > 3 {
			fmt.Fprintf(&b, " +%d", n-3)
		}
		b.WriteString("]")
	}
	b.WriteString(": " + a.Message)
	return b.String()
}

// oneLine puts s on one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func firstLines(s string, n int) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines in results.json)", len(lines)-n))
	}
	return lines
}

func faultNames(fs []Fault) string {
	seen := map[string]int{}
	var order []string
	for _, f := range fs {
		if seen[f.Name] == 0 {
			order = append(order, f.Name)
		}
		seen[f.Name]++
	}
	var parts []string
	for _, n := range order {
		if seen[n] > 1 {
			parts = append(parts, fmt.Sprintf("%s x%d", n, seen[n]))
		} else {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, ", ")
}

// us formats microseconds for people.
func us(v float64) string {
	d := time.Duration(v * float64(time.Microsecond))
	switch {
	case d == 0:
		return "0"
	case v < 1:
		return fmt.Sprintf("%.0fns", v*1e3)
	case v < 10:
		return fmt.Sprintf("%.1fµs", v)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", v)
	case d < time.Second:
		return fmt.Sprintf("%.2fms", v/1e3)
	}
	return fmt.Sprintf("%.2fs", v/1e6)
}
