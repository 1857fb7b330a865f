package tui

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/frutos/frutos/control"
)

// historyLen is how many samples a series keeps: five minutes at the
// default interval, more than the widest chart shows.
const historyLen = 300

// series is the recent CPU, RSS and connections of a worker or of the
// whole cluster, oldest first.
type series struct {
	cpu, rss, conns []float64
}

func (s series) add(cpu float64, rss uint64, conns int) series {
	return series{cpu: push(s.cpu, cpu), rss: push(s.rss, float64(rss)), conns: push(s.conns, float64(conns))}
}

// push appends v, dropping the oldest sample past historyLen. It never
// writes into a slice an older model may still hold.
func push(xs []float64, v float64) []float64 {
	if len(xs) >= historyLen {
		xs = xs[len(xs)-historyLen+1:]
	}
	out := make([]float64, len(xs), len(xs)+1)
	copy(out, xs)
	return append(out, v)
}

// history keeps a series per worker id (a restarted worker keeps its
// history: the drop is worth seeing) and one for the cluster.
type history struct {
	cluster series
	workers map[int]series
}

// add records one status sample. A process the daemon has not measured
// yet (just started: RSS 0) keeps its last RSS, so a restart does not
// draw a false drop to zero.
func (h history) add(ws []control.Worker) history {
	next := history{workers: make(map[int]series, len(ws))}
	var cpu float64
	var rss uint64
	for _, w := range ws {
		prev := h.workers[w.ID]
		mem := w.Memory
		if w.PID > 0 && mem == 0 && len(prev.rss) > 0 {
			mem = uint64(prev.rss[len(prev.rss)-1])
		}
		if w.PID > 0 {
			cpu += w.CPU
			rss += mem
		}
		next.workers[w.ID] = prev.add(w.CPU, mem, w.Connections)
	}
	next.cluster = h.cluster.add(cpu, rss, clusterConns(ws))
	return next
}

// sparkBars are the eight heights of a sparkline.
var sparkBars = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last width samples of xs, right-aligned (the
// newest at the right edge). The bars span from base (or the lowest sample,
// when base is negative) to the highest sample, and at least minSpan, so
// that noise on a steady value stays flat at the bottom.
func sparkline(xs []float64, width int, base, minSpan float64) string {
	if width <= 0 {
		return ""
	}
	if len(xs) > width {
		xs = xs[len(xs)-width:]
	}
	lo, hi := base, 0.0
	if len(xs) > 0 {
		hi = slices.Max(xs)
		if base < 0 {
			lo = slices.Min(xs)
		}
	}
	span := max(hi-lo, minSpan)
	var b strings.Builder
	b.WriteString(strings.Repeat(" ", width-len(xs)))
	for _, x := range xs {
		i := int(math.Round((x - lo) / span * float64(len(sparkBars)-1)))
		b.WriteRune(sparkBars[min(max(i, 0), len(sparkBars)-1)])
	}
	return b.String()
}

// chartLabelWidth is the "conns " before each chart row.
const chartLabelWidth = 6

// chartView draws the worker's and the cluster's charts side by side: a
// title line, then one line each for CPU, RSS and connections.
func chartView(width int, title [2]string, s [2]series, st styles) []string {
	panel := (width - chartLabelWidth - colGap) / 2
	const valueWidth = 10
	spark := max(panel-valueWidth-1, 0)
	lines := []string{
		strings.Repeat(" ", chartLabelWidth) + st.title.Render(pad(title[0], panel, false)) +
			strings.Repeat(" ", colGap) + st.title.Render(pad(title[1], panel, false)),
	}
	// CPU from 0; RSS and connections from their lowest, to show a trend
	// (a leak, clients moving after a restart) that is small next to the
	// total.
	rows := []struct {
		label         string
		pick          func(series) []float64
		text          func(float64) string
		base, minSpan float64
	}{
		{"cpu", func(s series) []float64 { return s.cpu }, cpuText, 0, 10},
		{"rss", func(s series) []float64 { return s.rss }, func(v float64) string { return FormatBytes(uint64(v)) }, -1, 4 << 20},
		{"conns", func(s series) []float64 { return s.conns }, func(v float64) string { return strconv.Itoa(int(v)) }, -1, 10},
	}
	for _, r := range rows {
		line := st.dim.Render(pad(r.label, chartLabelWidth, false))
		for i, one := range s {
			xs := r.pick(one)
			val := "-"
			if len(xs) > 0 {
				val = r.text(xs[len(xs)-1])
			}
			if i > 0 {
				line += strings.Repeat(" ", colGap)
			}
			line += st.spark.Render(sparkline(xs, spark, r.base, r.minSpan)) + " " + pad(val, valueWidth, true)
		}
		lines = append(lines, line)
	}
	return lines
}
