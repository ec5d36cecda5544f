package reports

import (
	"encoding/xml"
	"fmt"
	"strings"

	"github.com/faultline/faultline/checkers"
)

// JUnit mapping. One <testsuite> (inside a <testsuites> root, which every
// common consumer accepts) named after the scenario, one <testcase> per
// checker:
//
//   - valid   -> a passing test case;
//   - invalid -> <failure type="invalid"> (type="threshold" for a
//     performance threshold), its text the summary, the explanation and the
//     first anomalies;
//   - unknown -> <error type="unknown">, not <skipped>: an inconclusive check
//     must not read as green or as "not run" in a CI dashboard; the error
//     says why it could not decide and what to do;
//   - not_applicable -> <skipped> with the reason (what the history lacks);
//     the stats entry, figures rather than a verdict (Result.Figures), is a
//     skipped case too, never a green one.
//
// A run that was itself invalid (exit 4) gets one more test case, "run",
// with <error type="invalid-run">, and so does a run that did not finish
// (Results.Stopped: <error type="infrastructure"> for exit 70,
// type="interrupted" for 130), so that the JUnit view is never green when
// the exit code is not. Properties carry the seed, the scenario and the
// other replay facts; each case's <system-out> holds its summary line.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"` // escaped (not CDATA: some JUnit viewers paste CDATA into HTML as is)
}

// JUnit returns junit.xml for r (see the mapping above). The output depends
// only on r.
func JUnit(r *Results) ([]byte, error) {
	class := "faultline." + r.Scenario
	s := junitSuite{Name: class, Time: junitSeconds(wallSeconds(r))}
	if len(r.Start) >= 19 {
		s.Timestamp = r.Start[:19] // ISO 8601 without zone, as the schema wants (UTC)
	}
	prop := func(k, v string) {
		if v != "" {
			s.Properties = append(s.Properties, junitProperty{k, v})
		}
	}
	prop("scenario", r.Scenario)
	prop("seed", fmt.Sprint(r.Seed))
	prop("verdict", r.Verdict)
	prop("exit_code", fmt.Sprint(r.ExitCode))
	prop("exit_reason", r.ExitReason)
	prop("system", r.System)
	prop("nodes", strings.Join(r.Nodes, ","))
	prop("runtime", r.Runtime)
	prop("bugs", strings.Join(r.Bugs, ","))
	prop("faults_injected", fmt.Sprint(len(r.Faults)))
	prop("faultline", r.Faultline)
	prop("run_dir", r.RunDir)

	for _, c := range r.Checkers {
		tc := junitCase{Name: c.Name, Classname: class, Time: junitSeconds(c.Elapsed.Seconds()), SystemOut: c.Summary}
		switch {
		case c.Figures:
			tc.Skipped = &junitSkipped{Message: xmlSafe(figuresPrefix + summaryText(c))}
			s.Skipped++
		case c.Verdict == checkers.NotApplicable:
			tc.Skipped = &junitSkipped{Message: xmlSafe("not applicable: " + firstNonEmpty(c.Summary, "the history lacks what this checker needs"))}
			s.Skipped++
		case c.Verdict == checkers.Valid:
		case c.Verdict == checkers.Invalid:
			typ := "invalid"
			if c.Threshold {
				typ = "threshold"
			}
			tc.Failure = &junitProblem{Message: c.Summary, Type: typ, Text: xmlSafe(problemText(r, c))}
			s.Failures++
		default:
			tc.Error = &junitProblem{Message: firstNonEmpty(c.Summary, "the checker could not decide"), Type: "unknown", Text: xmlSafe(problemText(r, c))}
			s.Errors++
		}
		s.Cases = append(s.Cases, tc)
	}
	switch {
	case r.Stopped != nil:
		typ := "infrastructure"
		switch r.Stopped.ExitCode {
		case 130:
			typ = "interrupted"
		case 64:
			typ = "usage"
		}
		text := fmt.Sprintf("The run stopped during the %s phase (exit %d): %s", r.Stopped.Phase, r.Stopped.ExitCode, r.Stopped.Reason)
		if r.RunInvalid != "" {
			text += "\n\n" + r.RunInvalid
		}
		s.Cases = append(s.Cases, junitCase{Name: "run", Classname: class, Time: junitSeconds(0),
			Error: &junitProblem{Message: "the run did not finish (exit " + fmt.Sprint(r.Stopped.ExitCode) + ")", Type: typ, Text: xmlSafe(text)}})
		s.Errors++
	case r.RunInvalid != "":
		s.Cases = append(s.Cases, junitCase{Name: "run", Classname: class, Time: junitSeconds(0),
			Error: &junitProblem{Message: "the run itself was invalid", Type: "invalid-run", Text: xmlSafe(r.RunInvalid)}})
		s.Errors++
	}
	s.Tests = len(s.Cases)
	var out strings.Builder
	fmt.Fprintf(&out, "verdict %s (exit %d: %s); seed %d", r.Verdict, r.ExitCode, r.ExitReason, r.Seed)
	if r.RunDir != "" {
		fmt.Fprintf(&out, "; report %s/report.html", strings.TrimRight(r.RunDir, "/"))
	}
	s.SystemOut = out.String()

	root := junitSuites{Name: "faultline", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Skipped: s.Skipped, Time: s.Time, Suites: []junitSuite{s}}
	b, err := xml.MarshalIndent(root, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}

// problemText is the body of a failure or error: what, why, evidence.
func problemText(r *Results, c checkers.Result) string {
	var b strings.Builder
	b.WriteString(c.Summary)
	if c.Explanation != "" {
		b.WriteString("\n\n")
		b.WriteString(c.Explanation)
	}
	if len(c.Anomalies) > 0 {
		b.WriteString("\n\nEvidence (history lines as FILE:LINE):")
		shown := min(len(c.Anomalies), AnomalySample)
		for _, a := range c.Anomalies[:shown] {
			b.WriteString("\n  - " + anomalyText(a))
		}
		if rest := restOfAnomalies(r, c, shown); rest != "" {
			b.WriteString("\n  " + rest)
		}
	}
	b.WriteString("\n\nOpen report.html in the run directory for the timeline, faults and evidence.")
	return b.String()
}

func wallSeconds(r *Results) float64 {
	if s, e, ok := parseSpan(r.Start, r.End); ok {
		return e.Sub(s).Seconds()
	}
	return r.Stats.Duration
}

// xmlSafe drops what XML 1.0 cannot hold (control characters other than
// tab and newline, invalid UTF-8), which
// encoding/xml would turn into U+FFFD.
func xmlSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r == '\r':
			return '\n'
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func junitSeconds(s float64) string { return fmt.Sprintf("%.3f", s) }
