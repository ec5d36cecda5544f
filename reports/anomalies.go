package reports

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/faultline/faultline/checkers"
	"github.com/faultline/faultline/internal/atomicfile"
)

// Every anomaly is kept: AnomaliesFile in the run directory holds every
// anomaly of every checker, one JSON object per line (AnomalyLine);
// results.json keeps the first AnomalySample of each checker with the
// checker's anomaly_count, and its "anomalies" entry (AnomalyLog) says
// where the rest are. The terminal, the step summary, junit.xml and
// report.html show the first ones, the count, and where the rest are.
const (
	AnomaliesFile = "anomalies.jsonl"
	AnomalySample = 20
)

// AnomalyLog is results.json's "anomalies": where every anomaly is.
type AnomalyLog struct {
	// File is the JSON Lines file with every anomaly, relative to the run
	// directory.
	File string `json:"file"`
	// Count is the number of lines in File: every anomaly of every checker.
	Count int `json:"count"`
	// Sample is how many anomalies of each checker results.json keeps.
	Sample int `json:"sample_per_checker"`
}

// AnomalyLine is one line of anomalies.jsonl: the checker's name and the
// anomaly (its kind, key, time, message, node, refs FILE:LINE, data).
type AnomalyLine struct {
	Checker string `json:"checker"`
	checkers.Anomaly
}

// anomalyCount is the number of anomalies c found: its AnomalyCount, or
// the anomalies it lists if that is more.
func anomalyCount(c checkers.Result) int {
	return max(c.AnomalyCount, len(c.Anomalies))
}

// WriteAnomalies writes every anomaly of rs to dir/anomalies.jsonl
// atomically, in checker order, and returns how many it wrote. With no
// anomaly it still writes the (empty) file, so a run directory's file
// never belongs to an earlier judgement.
func WriteAnomalies(dir string, rs []checkers.Result) (int, error) {
	n := 0
	err := atomicfile.Write(filepath.Join(dir, AnomaliesFile), func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, c := range rs {
			for _, a := range c.Anomalies {
				if err := enc.Encode(AnomalyLine{Checker: c.Name, Anomaly: a}); err != nil {
					return err
				}
				n++
			}
		}
		return bw.Flush()
	})
	return n, err
}

// ReadAnomalies reads dir/anomalies.jsonl.
func ReadAnomalies(dir string) ([]AnomalyLine, error) {
	f, err := os.Open(filepath.Join(dir, AnomaliesFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AnomalyLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var a AnomalyLine
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return out, fmt.Errorf("%s:%d: %w", AnomaliesFile, line, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// SampleAnomalies keeps the first AnomalySample anomalies of each checker
// of r, sets each checker's AnomalyCount to the number it found, and
// records in r.Anomalies that every one of them is in file (count in all).
// Call it after writing them there (WriteAnomalies).
func SampleAnomalies(r *Results, file string, count int) {
	for i := range r.Checkers {
		c := &r.Checkers[i]
		c.AnomalyCount = anomalyCount(*c)
		if len(c.Anomalies) > AnomalySample {
			c.Anomalies = c.Anomalies[:AnomalySample:AnomalySample]
		}
	}
	r.Anomalies = &AnomalyLog{File: file, Count: count, Sample: AnomalySample}
}

// Save writes what a run (or a re-judgement) leaves in its run directory
// dir: anomalies.jsonl with every anomaly, results.json with a sample of
// them (SampleAnomalies: r is changed so), and the reports (Build with
// opt). The first error is returned; later files are still attempted, so
// that as much as possible is on disk.
func Save(dir string, r *Results, opt BuildOptions) error {
	var errs []error
	if n, err := WriteAnomalies(dir, r.Checkers); err != nil {
		errs = append(errs, fmt.Errorf("writing %s: %w", AnomaliesFile, err))
	} else {
		SampleAnomalies(r, AnomaliesFile, n)
	}
	if err := WriteResults(dir, r); err != nil {
		return fmt.Errorf("writing results.json: %w", err)
	}
	if err := Build(dir, opt); err != nil {
		errs = append(errs, fmt.Errorf("writing report.html and junit.xml: %w", err))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// restOfAnomalies says how many anomalies of c are not among the ones
// shown (shown of them) and where they are: "... and 314 more in
// anomalies.jsonl". It is "" when every one is shown.
func restOfAnomalies(r *Results, c checkers.Result, shown int) string {
	more := anomalyCount(c) - shown
	if more <= 0 {
		return ""
	}
	var where string
	switch {
	case r.Anomalies != nil && r.Anomalies.File != "":
		where = "in " + r.Anomalies.File
	case c.AnomalyCount == 0 && shown < len(c.Anomalies):
		// results.json of an earlier faultline, which kept them there.
		where = "in results.json"
	default:
		where = "(not saved: faultline check --out DIR writes every one to DIR/" + AnomaliesFile + ")"
	}
	return fmt.Sprintf("... and %d more %s (%d in all)", more, where, anomalyCount(c))
}

// anomalyText is one anomaly on one line, the same in the terminal, the
// step summary and junit.xml: kind, key, time, the answering node, the
// history lines (FILE:LINE, the operation in question first) and the
// message.
func anomalyText(a checkers.Anomaly) string {
	var b strings.Builder
	b.WriteString(a.Kind)
	if a.Key != "" {
		b.WriteString(" on key " + a.Key)
	}
	if a.Time > 0 {
		fmt.Fprintf(&b, " at %.3fs", float64(a.Time)/1e9)
	}
	if a.Node != "" {
		b.WriteString(", node " + a.Node)
	}
	if len(a.Refs) > 0 {
		b.WriteString(" [" + strings.Join(a.Refs, ", ") + "]")
	}
	b.WriteString(": " + a.Message)
	return b.String()
}
