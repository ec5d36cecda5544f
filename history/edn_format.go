package history

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Format is how a history file is written.
type Format string

// History formats.
const (
	// FormatAuto detects the format from the file (DetectFormat).
	FormatAuto Format = ""
	// FormatJSONL is faultline's history.jsonl: one JSON object per line.
	FormatJSONL Format = "jsonl"
	// FormatEDN is Jepsen's history.edn of the register workload (ReadEDN).
	FormatEDN Format = "edn"
)

// ParseFormat reads a --format value: "edn", "jsonl", or "" or "auto" for
// FormatAuto. Anything else is an error saying what is accepted.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return FormatAuto, nil
	case "jsonl":
		return FormatJSONL, nil
	case "edn":
		return FormatEDN, nil
	}
	return FormatAuto, fmt.Errorf("--format %q: want edn, jsonl or auto (detect it from the file)", s)
}

// sniffBytes is how much of a file DetectFormat may look at.
const sniffBytes = 64 << 10

// DetectFormat tells the format of a history from the first bytes of the
// file (head; up to 64 KiB is looked at) and, when they do not tell, from
// its name. After blank space (and EDN's commas and ; comments), "[" (a
// vector of ops), ";" (a comment), "#" or "{" followed by ":" (a map with
// keyword keys) is EDN; "{" followed by anything else is JSON Lines.
// Otherwise (an empty file, or one that starts with neither) a name ending
// in .edn is EDN and any other name JSON Lines, whose reader then says
// what is wrong with the first line.
func DetectFormat(name string, head []byte) Format {
	if len(head) > sniffBytes {
		head = head[:sniffBytes]
	}
	head = trimBOM(head)
	i := skipBlank(head, 0)
	if i < len(head) {
		switch head[i] {
		case '[', ';', '#':
			return FormatEDN
		case '{':
			if j := skipBlank(head, i+1); j < len(head) {
				if head[j] == ':' {
					return FormatEDN
				}
				return FormatJSONL
			}
		}
	}
	if strings.EqualFold(filepath.Ext(name), ".edn") {
		return FormatEDN
	}
	return FormatJSONL
}

func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}

// skipBlank returns the index of the first byte of b at or after i that is
// not blank: whitespace or a comma (both blank in EDN).
func skipBlank(b []byte, i int) int {
	for i < len(b) && isEDNSpace(b[i]) {
		i++
	}
	return i
}

// ReadFileFormat reads the history file at path written in format f
// (FormatAuto: DetectFormat decides) and returns its header (JSON Lines
// only; an EDN history has none), its events, and the format it was read
// as. Errors and a *CutError are as ReadFile's for JSON Lines and
// ReadEDN's for EDN; on an error the events read before it come with it.
func ReadFileFormat(path string, f Format) (*HeaderLine, []Event, Format, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, nil, f, err
	}
	defer file.Close()
	return ReadFormat(file, path, f)
}

// ReadFormat reads a history from r as ReadFileFormat reads a file; name
// is used in error messages and, for FormatAuto, to detect the format.
func ReadFormat(r io.Reader, name string, f Format) (*HeaderLine, []Event, Format, error) {
	br := bufio.NewReaderSize(r, sniffBytes)
	switch f {
	case FormatAuto:
		head, _ := br.Peek(sniffBytes) // short at the end of the input: fine
		f = DetectFormat(name, head)
	case FormatJSONL, FormatEDN:
	default:
		return nil, nil, f, fmt.Errorf("%s: unknown history format %q: want edn or jsonl", name, f)
	}
	if f == FormatEDN {
		evs, err := ReadEDN(br, name)
		return nil, evs, f, err
	}
	h, evs, err := readAll(br, name, sizeHint(r)) // sized from the file, if r is one
	return h, evs, f, err
}
