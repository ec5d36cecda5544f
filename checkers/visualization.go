package checkers

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"

	"github.com/faultline/faultline/internal/atomicfile"
)

// vizPage is what faultline adds to Porcupine's visualization
// (linearizability.html): a title naming the scenario, the client lanes
// labelled with the history's process ids, labels that stay in view while
// the page scrolls sideways, and a page that opens at the first violation.
type vizPage struct {
	// Title is the page's <title>.
	Title string
	// Processes maps a Porcupine client id (a lane: register.go's dense
	// row) to the history's process id drawn in it.
	Processes map[int]string
}

// vizTitle is linearizability.html's title: the scenario the history
// names in its header, else the history's file name.
func vizTitle(in Input) string {
	name := ""
	if in.Header != nil {
		name = in.Header.Scenario
	}
	if name == "" {
		name = filepath.Base(in.File)
		if in.File == "" {
			name = "history.jsonl"
		}
	}
	return "linearizability: " + name + " (faultline)"
}

// vizScript runs after Porcupine's render(data). It relabels the client
// lanes ("p" and the process id, as the tooltips and the checker's
// explanation name them), moves the lane labels into a group on top of the
// drawing that follows horizontal scrolling (SVG elements cannot be
// position: sticky), and scrolls the first violation (the leftmost
// invalid linearization point shown, the one "jump to first error" goes
// to) into the middle of the window, without selecting anything. It sets
// data-fl-ready on <html> when done. internal/e2e's TestExamples checks
// all of this in Chromium on a real run's page (browseRun).
const vizScript = `
;(function () {
  'use strict'
  const svg = document.querySelector('#canvas svg')
  if (!svg) return
  const bg = svg.querySelector(':scope > g')
  const labels = bg ? Array.from(bg.querySelectorAll(':scope > text')) : []
  for (const t of labels) {
    const p = FL_PROCESSES[t.textContent]
    if (p !== undefined) t.textContent = 'p' + p
  }
  // The lanes' labels on top, over a band as wide as the label column.
  const divider = bg && bg.querySelector(':scope > line.divider')
  const width = divider ? Number(divider.getAttribute('x1')) : 0
  const sticky = document.createElementNS('http://www.w3.org/2000/svg', 'g')
  sticky.setAttribute('class', 'fl-labels')
  sticky.setAttribute('pointer-events', 'none')
  const band = document.createElementNS('http://www.w3.org/2000/svg', 'rect')
  band.setAttribute('x', 0)
  band.setAttribute('y', 0)
  band.setAttribute('width', width)
  band.setAttribute('height', svg.getAttribute('height'))
  band.setAttribute('class', 'fl-label-band')
  sticky.appendChild(band)
  for (const t of labels) sticky.appendChild(t)
  svg.appendChild(sticky)
  const follow = () => {
    const left = svg.getBoundingClientRect().left
    sticky.setAttribute('transform', 'translate(' + Math.max(0, -left) + ',0)')
  }
  window.addEventListener('scroll', follow, {passive: true})
  window.addEventListener('resize', follow)
  // Open at the first violation.
  let first = null
  for (const pt of svg.querySelectorAll('line.linearization-invalid.linearization-point')) {
    if (pt.parentElement.classList.contains('hidden')) continue
    if (first === null || Number(pt.getAttribute('x1')) < Number(first.getAttribute('x1'))) first = pt
  }
  if (first !== null) {
    first.classList.add('fl-first-violation')
    first.scrollIntoView({inline: 'center', block: 'center'})
  }
  follow()
  document.documentElement.dataset.flReady = first === null ? 'no-violation' : 'at-first-violation'
})()
`

// vizStyle styles the band behind the lane labels.
const vizStyle = `
.fl-label-band { fill: rgba(255, 255, 255, 0.9); }
.fl-labels text { font-family: Menlo, Courier New, monospace; font-size: 0.8rem; }
`

// decorate adds faultline's title, style and script to the page
// Porcupine wrote.
func (v vizPage) decorate(page []byte) []byte {
	s := string(page)
	title := "<title>" + html.EscapeString(v.Title) + "</title>"
	if strings.Contains(s, "<title>Porcupine</title>") {
		s = strings.Replace(s, "<title>Porcupine</title>", title, 1)
	} else {
		s = strings.Replace(s, "<head>", "<head>\n    "+title, 1)
	}
	s = strings.Replace(s, "</head>", "    <style>"+vizStyle+"    </style>\n  </head>", 1)
	procs := make(map[string]string, len(v.Processes))
	for row, p := range v.Processes {
		procs[strconv.Itoa(row)] = p
	}
	// json.Marshal escapes <, > and &: the object cannot close the script.
	js, _ := json.Marshal(procs)
	script := "<script>\nconst FL_PROCESSES = " + string(js) + ";\n" + vizScript + "</script>\n"
	if i := strings.LastIndex(s, "</body>"); i >= 0 {
		s = s[:i] + script + s[i:]
	} else {
		s += script
	}
	return []byte(s)
}

// writeVisualization writes Porcupine's page for info, decorated, to path:
// to a temporary file beside it, renamed into place, mode 0644 like the
// run's other files.
func writeVisualization(model porcupine.Model, info porcupine.LinearizationInfo, path string, page vizPage) error {
	var b bytes.Buffer
	if err := porcupine.Visualize(model, info, &b); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := w.Write(page.decorate(b.Bytes()))
		return err
	})
}
