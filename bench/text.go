package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// WriteText prints the report as the final table of `frutos bench`.
func WriteText(w io.Writer, rep Report) error {
	var b strings.Builder
	q := rep.Requested
	fmt.Fprintf(&b, "frutos bench %s (%s): %s connections at %s/s for %s", rep.URL, rep.Transport,
		Thousands(int64(q.Conns)), Thousands(int64(q.Rate)), time.Duration(q.DurationSec*float64(time.Second)))
	if q.EmitRate > 0 {
		fmt.Fprintf(&b, ", %s emits/s", Thousands(int64(q.EmitRate)))
	}
	fmt.Fprintf(&b, ", users %s", q.Users)
	if q.Sources > 0 {
		fmt.Fprintf(&b, ", %d source addresses", q.Sources)
	}
	b.WriteString("\n\n")

	c := rep.Connections
	row := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "  %-14s %s\n", name, fmt.Sprintf(format, args...))
	}
	b.WriteString("connections\n")
	row("established", "%s of %s attempted (%s failed, %s dropped; %s held at the end)",
		Thousands(c.Established), Thousands(c.Attempted), Thousands(c.Failed), Thousands(c.Dropped), Thousands(c.HeldAtEnd))
	if c.RampSec > 0 {
		row("connect rate", "%s/s over %.1fs", Thousands(int64(c.ConnectRate)), c.RampSec)
	}
	if c.ConnectMS.Count > 0 {
		row("connect time", "p50 %s  p99 %s  max %s", ms(c.ConnectMS.P50), ms(c.ConnectMS.P99), ms(c.ConnectMS.Max))
	}
	for _, k := range sortedKeys(c.FailedBy) {
		row("failed", "%s  %s", Thousands(c.FailedBy[k]), k)
	}
	for _, k := range sortedKeys(c.DroppedBy) {
		row("dropped", "%s  %s", Thousands(c.DroppedBy[k]), k)
	}

	br := rep.Broadcast
	if br.Sent {
		b.WriteString("broadcast (one emit to all, through Redis)\n")
		row("received", "%s of %s connected (%s missed, %s duplicates)", Thousands(br.Received), Thousands(br.Expected), Thousands(br.Missed), Thousands(br.Duplicates))
		if br.FanOutMS != nil {
			row("fan-out", "%s until every client had it", ms(*br.FanOutMS))
		} else {
			row("fan-out", "not complete: %s clients never got it", Thousands(br.Missed))
		}
		if br.LatencyMS.Count > 0 {
			row("latency", "p50 %s  p90 %s  p99 %s  max %s", ms(br.LatencyMS.P50), ms(br.LatencyMS.P90), ms(br.LatencyMS.P99), ms(br.LatencyMS.Max))
		}
	}

	e := rep.Events
	if q.EmitRate > 0 {
		fmt.Fprintf(&b, "targeted emits (to user:<id> through Redis, %s/s requested)\n", Thousands(int64(q.EmitRate)))
		row("sent", "%s (%s/s), %s emit errors", Thousands(e.Sent), Thousands(int64(e.SendRate)), Thousands(e.EmitErrors))
		row("delivered", "%s of %s expected, %s duplicates", Thousands(e.Delivered), Thousands(e.Expected), Thousands(e.Duplicates))
		row("lost", "%s (not delivered by the end of the grace), %s more on connections that dropped",
			Thousands(e.Lost), Thousands(e.LostOnDropped))
		if e.Unexpected > 0 {
			row("unexpected", "%s deliveries of sequences never sent to that connection", Thousands(e.Unexpected))
		}
		if e.LatencyMS.Count > 0 {
			row("latency", "p50 %s  p90 %s  p99 %s  max %s", ms(e.LatencyMS.P50), ms(e.LatencyMS.P90), ms(e.LatencyMS.P99), ms(e.LatencyMS.Max))
		}
	}

	t := rep.LoadTool
	b.WriteString("load tool\n")
	procs := "process"
	if t.Procs != 1 {
		procs = "processes"
	}
	row("itself", "%d %s (up to %s connections each), CPU %.1fs (%.2f ms per connection), max RSS %.0f MiB",
		t.Procs, procs, Thousands(int64(t.ConnsPerProc)), t.CPUSec, t.CPUMSPerConn, t.MaxRSSMiB)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteProgress prints one live progress line (no newline: the caller
// redraws it with \r on a terminal, or ends it with \n in a log).
func WriteProgress(w io.Writer, p Progress) {
	fmt.Fprintf(w, "%6.1fs  conns %s held of %s attempted (failed %s, dropped %s)",
		p.Elapsed.Seconds(), Thousands(p.Held), Thousands(p.Attempted), Thousands(p.Failed), Thousands(p.Dropped))
	if p.BcastRecv > 0 {
		fmt.Fprintf(w, " | broadcast %s", Thousands(p.BcastRecv))
	}
	if p.Sent > 0 {
		fmt.Fprintf(w, " | emits %s sent, %s delivered, %s in flight, p99 %s", Thousands(p.Sent), Thousands(p.Delivered), Thousands(p.Pending), ms(p.LatencyP99))
	}
}

func ms(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// Thousands writes n with thousands separators (12,345).
func Thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	return keys
}
