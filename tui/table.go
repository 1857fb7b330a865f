package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/frutos/frutos/control"
)

// workerTable is the process table: one row per worker, a totals row, and
// a selection that follows a worker id across refreshes.
type workerTable struct {
	workers  []control.Worker
	selected int // index into workers
}

// setWorkers replaces the rows, keeping the selected worker selected (or
// its neighbour, when it went away).
func (t workerTable) setWorkers(ws []control.Worker) workerTable {
	id, had := t.selectedID()
	t.workers = ws
	if had {
		for i, w := range ws {
			if w.ID == id {
				t.selected = i
				return t
			}
		}
	}
	t.selected = min(t.selected, max(len(ws)-1, 0))
	return t
}

func (t workerTable) move(delta int) workerTable {
	if len(t.workers) > 0 {
		t.selected = min(max(t.selected+delta, 0), len(t.workers)-1)
	}
	return t
}

func (t workerTable) selectedWorker() (control.Worker, bool) {
	if t.selected < len(t.workers) {
		return t.workers[t.selected], true
	}
	return control.Worker{}, false
}

func (t workerTable) selectedID() (int, bool) {
	w, ok := t.selectedWorker()
	return w.ID, ok
}

// column is one column of a table of T (workers, hosts). Columns with a
// higher drop number go first when the terminal is narrow; the last one may
// stretch.
type column[T any] struct {
	title string
	width int
	right bool
	drop  int
	cell  func(T) string
	total func([]T) string
}

const colGap = 2

var columns = []column[control.Worker]{
	{title: "ID", width: 3, cell: func(w control.Worker) string { return strconv.Itoa(w.ID) },
		total: func([]control.Worker) string { return "all" }},
	{title: "PID", width: 7, right: true, drop: 4, cell: func(w control.Worker) string { return orDash(w.PID > 0, strconv.Itoa(w.PID)) }},
	{title: "STATUS", width: 9, cell: statusWord, total: func(ws []control.Worker) string {
		return fmt.Sprintf("%d/%d up", Totals(ws).Online, len(ws))
	}},
	{title: "UPTIME", width: 7, right: true, drop: 3, cell: func(w control.Worker) string { return orDash(w.PID > 0, FormatDuration(w.UptimeSec)) }},
	{title: "↺", width: 4, right: true, drop: 2, cell: func(w control.Worker) string { return strconv.Itoa(w.Restarts) },
		total: func(ws []control.Worker) string { return strconv.Itoa(Totals(ws).Restarts) }},
	{title: "CPU", width: 6, right: true, cell: func(w control.Worker) string { return orDash(w.PID > 0, cpuText(w.CPU)) },
		total: func(ws []control.Worker) string { return cpuText(clusterCPU(ws)) }},
	{title: "RSS", width: 9, right: true, cell: func(w control.Worker) string {
		return orDash(w.PID > 0 && w.Memory > 0, FormatBytes(w.Memory)) // 0: not measured yet
	},
		total: func(ws []control.Worker) string { return FormatBytes(clusterRSS(ws)) }},
	{title: "CONNS", width: 6, right: true, cell: func(w control.Worker) string { return strconv.Itoa(w.Connections) },
		total: func(ws []control.Worker) string { return strconv.Itoa(clusterConns(ws)) }},
	{title: "EV/S", width: 7, right: true, drop: 1, cell: func(w control.Worker) string { return rateText(w.EventsPerS) },
		total: func(ws []control.Worker) string { return rateText(Totals(ws).EventsPerS) }},
	// Wide terminals only.
	{title: "DELIVERED", width: 10, right: true, drop: 9, cell: func(w control.Worker) string { return strconv.FormatUint(w.Delivered, 10) },
		total: func(ws []control.Worker) string { return strconv.FormatUint(Totals(ws).Delivered, 10) }},
	{title: "WS/POLL", width: 9, right: true, drop: 8, cell: func(w control.Worker) string {
		return fmt.Sprintf("%d/%d", w.Transports["websocket"], w.Transports["polling"])
	}},
	{title: "REDIS", width: 10, drop: 7, cell: func(w control.Worker) string { return orDash(w.Redis != "", w.Redis) }},
	{title: "GEN", width: 4, right: true, drop: 6, cell: func(w control.Worker) string { return strconv.Itoa(w.Generation) }},
	{title: "LAST EXIT", width: 14, drop: 5, cell: func(w control.Worker) string { return orDash(w.LastExit != "", w.LastExit) }},
}

// statusWord is the worker's status, with what "online" hides: a worker
// draining its clients, one not ready for new sessions yet, or one this
// daemon adopted from an earlier one (online).
func statusWord(w control.Worker) string {
	switch {
	case w.Status == control.StatusOnline && w.Draining:
		return "draining"
	case w.Status == control.StatusOnline && !w.Ready:
		return "starting"
	case w.Status == control.StatusOnline && w.Adopted:
		return "adopted"
	}
	return w.Status
}

func orDash(ok bool, s string) string {
	if ok {
		return s
	}
	return "-"
}

// Total is the cluster's row of the process table: what monit's totals
// row and frutos status's "all" row show.
type Total struct {
	Online      int     // workers online
	Restarts    int     // restarts of every worker
	CPU         float64 // percent of one core, workers with a process
	Memory      uint64  // RSS bytes, workers with a process
	Connections int
	EventsPerS  float64
	Delivered   uint64
}

// Totals adds up the workers. CPU and memory count the workers that have
// a process, as the table shows them.
func Totals(ws []control.Worker) Total {
	var t Total
	for _, w := range ws {
		if w.Status == control.StatusOnline {
			t.Online++
		}
		if w.PID > 0 {
			t.CPU += w.CPU
			t.Memory += w.Memory
		}
		t.Restarts += w.Restarts
		t.Connections += w.Connections
		t.EventsPerS += w.EventsPerS
		t.Delivered += w.Delivered
	}
	return t
}

func clusterCPU(ws []control.Worker) float64 { return Totals(ws).CPU }

func clusterRSS(ws []control.Worker) uint64 { return Totals(ws).Memory }

func clusterConns(ws []control.Worker) int { return Totals(ws).Connections }

// layout picks the columns of all that fit width (after the selection
// marker), dropping the least needed first, and gives the last one the
// spare room.
func layout[T any](all []column[T], width int) []column[T] {
	cols := append([]column[T](nil), all...)
	for used(cols) > width {
		worst := -1
		for i, c := range cols {
			if c.drop > 0 && (worst < 0 || c.drop > cols[worst].drop) {
				worst = i
			}
		}
		if worst < 0 {
			break // the essential columns; fit() cuts the lines
		}
		cols = append(cols[:worst], cols[worst+1:]...)
	}
	if last := &cols[len(cols)-1]; !last.right {
		last.width += width - used(cols)
	}
	return cols
}

func used[T any](cols []column[T]) int {
	n := 0
	for _, c := range cols {
		n += c.width
	}
	return n + colGap*(len(cols)-1)
}

// markerWidth is the "> " before the selected row.
const markerWidth = 2

// view draws the table in width cells and at most height lines (header,
// rows, totals). selectable adds the selection marker column.
func (t workerTable) view(width, height int, selectable bool, st styles) []string {
	inner := width
	if selectable {
		inner -= markerWidth
	}
	cols := layout(columns, inner)
	marker := func(s string) string {
		if selectable {
			return s
		}
		return ""
	}
	var head []string
	for _, c := range cols {
		head = append(head, pad(c.title, c.width, c.right))
	}
	lines := []string{st.dim.Render(marker("  ") + strings.Join(head, strings.Repeat(" ", colGap)))}
	if len(t.workers) == 0 {
		return append(lines, marker("  ")+"no workers")
	}

	first, last := t.window(max(height-2, 1)) // less the header and totals
	if first > 0 {
		lines = append(lines, st.dim.Render(marker("  ")+fmt.Sprintf("↑ %d more", first)))
	}
	for i := first; i < last; i++ {
		w := t.workers[i]
		sel := selectable && i == t.selected
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = pad(c.cell(w), c.width, c.right)
			if c.title == "STATUS" && !sel {
				cells[j] = st.status(w.Status).Render(cells[j])
			}
		}
		line := strings.Join(cells, strings.Repeat(" ", colGap))
		if sel {
			lines = append(lines, "> "+st.selected.Render(line))
		} else {
			lines = append(lines, marker("  ")+line)
		}
	}
	if last < len(t.workers) {
		lines = append(lines, st.dim.Render(marker("  ")+fmt.Sprintf("↓ %d more", len(t.workers)-last)))
	}

	cells := make([]string, len(cols))
	for j, c := range cols {
		if c.total != nil {
			cells[j] = pad(c.total(t.workers), c.width, c.right)
		} else {
			cells[j] = strings.Repeat(" ", c.width)
		}
	}
	total := marker("  ") + strings.Join(cells, strings.Repeat(" ", colGap))
	return append(lines, st.title.Render(total))
}

// window is the rows [first, last) to draw in rows lines: all of them when
// they fit, else a page that holds the selection, with a line for "↑ N
// more" and/or "↓ N more" taken from it.
func (t workerTable) window(rows int) (first, last int) {
	n := len(t.workers)
	if n <= rows {
		return 0, n
	}
	page := func(k int) (int, int) {
		k = max(k, 1)
		f := min(max(t.selected-k+1, 0), n-k)
		return f, f + k
	}
	first, last = page(rows - 1)
	if first > 0 && last < n {
		first, last = page(rows - 2)
	}
	return first, last
}
