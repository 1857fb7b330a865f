package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

// The hosts view (key h): every host of the fleet, as the registry in
// Redis has them, refreshed every Interval while it is on screen. It
// replaces the worker table, charts and logs until h is pressed again.

// FleetMsg is a fresh read of the fleet registry, or why it failed.
type FleetMsg struct {
	Fleet control.Fleet
	Err   error
	At    time.Time
	gen   int // the hostsView.gen it was asked for
}

// fleetPollMsg asks for the next read, if the view of gen is still on.
type fleetPollMsg struct{ gen int }

// hostsView is the fleet table and how reading it goes.
type hostsView struct {
	shown bool
	gen   int // bumps at every toggle, so a hidden view's reads stop
	fleet control.Fleet
	seen  bool // a read succeeded since the view was opened
	err   error
}

// toggleHosts shows or hides the hosts view; shown, it asks for the fleet
// at once.
func (m Model) toggleHosts() (Model, tea.Cmd) {
	if m.opts.Fleet == nil {
		return m.refuse("no fleet view here: it needs a Redis URL")
	}
	m.hosts.gen++
	m.hosts.shown = !m.hosts.shown
	if !m.hosts.shown {
		return m, nil
	}
	m.hosts.seen, m.hosts.err = false, nil
	return m, fetchFleet(m.life, m.opts.Fleet, m.hosts.gen, m.opts.Now)
}

// fleetUpdate handles the view's messages; stale ones are dropped.
func (m Model) fleetUpdate(msg tea.Msg) (Model, tea.Cmd) {
	switch msg := msg.(type) {
	case FleetMsg:
		if msg.gen != m.hosts.gen || !m.hosts.shown {
			return m, nil
		}
		m.hosts.err = msg.Err
		if msg.Err == nil {
			m.hosts.fleet, m.hosts.seen = msg.Fleet, true
		}
		gen := m.hosts.gen
		return m, tea.Tick(m.opts.Interval, func(time.Time) tea.Msg { return fleetPollMsg{gen: gen} })
	case fleetPollMsg:
		if msg.gen == m.hosts.gen && m.hosts.shown {
			return m, fetchFleet(m.life, m.opts.Fleet, m.hosts.gen, m.opts.Now)
		}
	}
	return m, nil
}

// fetchFleet is the Cmd that reads the fleet once.
func fetchFleet(life *lifetime, read func(context.Context) (control.Fleet, error), gen int, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(life.ctx, statusTimeout)
		defer cancel()
		f, err := read(ctx)
		if life.ctx.Err() != nil {
			return nil // quitting
		}
		return FleetMsg{Fleet: f, Err: err, At: now(), gen: gen}
	}
}

var hostColumns = []column[control.Host]{
	{title: "HOST", width: 12, cell: func(h control.Host) string { return h.Name },
		total: func([]control.Host) string { return "all" }},
	{title: "STATE", width: 8, cell: func(h control.Host) string { return h.State },
		total: func(hs []control.Host) string { return fmt.Sprintf("%d/%d up", len(upHosts(hs)), len(hs)) }},
	{title: "SEEN", width: 6, right: true, cell: func(h control.Host) string { return FormatDuration(h.LastSeenSec) }},
	{title: "ADDRESS", width: 21, drop: 1, cell: func(h control.Host) string { return h.Address }},
	{title: "WORKERS", width: 7, right: true, cell: func(h control.Host) string { return fmt.Sprintf("%d/%d", h.WorkersOnline, h.Workers) }},
	{title: "CONNS", width: 6, right: true, cell: func(h control.Host) string { return strconv.Itoa(h.Connections) },
		total: func(hs []control.Host) string {
			n := 0
			for _, h := range upHosts(hs) {
				n += h.Connections
			}
			return strconv.Itoa(n)
		}},
	{title: "CPU", width: 6, right: true, drop: 2, cell: func(h control.Host) string { return cpuText(h.CPU) },
		total: func(hs []control.Host) string {
			var c float64
			for _, h := range upHosts(hs) {
				c += h.CPU
			}
			return cpuText(c)
		}},
	{title: "MEMORY", width: 9, right: true, drop: 3, cell: func(h control.Host) string { return FormatBytes(h.Memory) },
		total: func(hs []control.Host) string {
			var b uint64
			for _, h := range upHosts(hs) {
				b += h.Memory
			}
			return FormatBytes(b)
		}},
	{title: "REDIS", width: 8, right: true, drop: 4, cell: func(h control.Host) string {
		return orDash(h.State == control.HostUp && h.RedisLatencyMs > 0, fmt.Sprintf("%.2f ms", h.RedisLatencyMs)) // 0: not measured yet
	}},
	{title: "VERSION", width: 10, drop: 5, cell: func(h control.Host) string { return h.Version }},
}

// upHosts are the hosts heartbeating: the totals count only them (a gone
// host's figures are its last words).
func upHosts(hs []control.Host) []control.Host {
	var up []control.Host
	for _, h := range hs {
		if h.State == control.HostUp {
			up = append(up, h)
		}
	}
	return up
}

// view draws the fleet in w cells and at most h lines.
func (v hostsView) view(w, h int, every time.Duration, st styles) []string {
	hs := v.fleet.Hosts
	up := len(upHosts(hs))
	title := st.title.Render("fleet")
	if v.seen {
		title = segments(w, title, fmt.Sprintf("%s, %d up", plural.Count(len(hs), "host", "hosts"), up), "redis "+v.fleet.Redis, v.fleet.Key)
	}
	lines := []string{title}
	switch {
	case v.err != nil:
		lines = append(lines, st.bad.Render("  cannot read the fleet: "+oneLine(v.err.Error())),
			st.dim.Render(fmt.Sprintf("  retrying every %s", every)))
		if !v.seen {
			return lines
		}
	case !v.seen:
		return append(lines, "", "  reading the fleet registry in Redis…")
	case len(hs) == 0:
		return append(lines, "", "  no host registered: a daemon registers once `frutos start` has started its app")
	}

	cols := layout(hostColumns, w-markerWidth)
	gap := strings.Repeat(" ", colGap)
	row := func(cell func(column[control.Host]) string) string {
		cells := make([]string, len(cols))
		for j, c := range cols {
			cells[j] = pad(cell(c), c.width, c.right)
		}
		return "  " + strings.Join(cells, gap)
	}
	lines = append(lines, st.dim.Render(row(func(c column[control.Host]) string { return c.title })))
	rows := max(h-len(lines)-1, 1) // less the totals
	shown := hs
	if len(hs) > rows {
		shown = hs[:max(rows-1, 0)]
	}
	for _, host := range shown {
		line := row(func(c column[control.Host]) string { return c.cell(host) })
		switch host.State {
		case control.HostGone:
			line = st.bad.Render(line)
		case control.HostStopped:
			line = st.dim.Render(line)
		}
		lines = append(lines, line)
	}
	if len(shown) < len(hs) {
		lines = append(lines, st.dim.Render(fmt.Sprintf("  ↓ %d more", len(hs)-len(shown))))
	}
	total := row(func(c column[control.Host]) string {
		if c.total == nil {
			return ""
		}
		return c.total(hs)
	})
	return append(lines, st.title.Render(total))
}
