package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

// headerView is two lines: the app and the daemon, then Redis.
func (m Model) headerView(w int) []string {
	if m.conn.down || !m.conn.seen {
		state := m.st.warn.Render("connecting to the daemon…")
		if m.conn.down {
			state = m.st.bad.Render(strings.ToUpper(outageTitle(m.conn.err)))
		}
		return []string{
			segments(w, m.st.title.Render("frutos monit"), state, fmt.Sprintf("retrying every %s", m.opts.Interval)),
			m.st.dim.Render("redis: unknown while the daemon does not answer"),
		}
	}
	st := m.status
	d := fmt.Sprintf("daemon up %s", FormatDuration(st.Daemon.UptimeSec))
	pid := fmt.Sprintf("pid %d", st.Daemon.PID)
	if st.App == "" {
		return []string{
			segments(w, m.st.title.Render("frutos monit"), m.st.warn.Render("no app started"), d, pid),
			m.st.dim.Render("redis: not connected (no app started)"),
		}
	}
	app := m.st.title.Render(st.App)
	if st.Env != "" {
		app += " (" + st.Env + ")"
	}
	self := fmt.Sprintf("%s cpu, %s", cpuText(st.Daemon.CPU), FormatBytes(st.Daemon.Memory))
	version := ""
	if st.Daemon.Version != "" {
		version = "frutos " + st.Daemon.Version
	}
	return []string{
		segments(w, app, fmt.Sprintf("%s:%d", st.Host, st.Port), workerCount(st.Workers), d, pid, self, version),
		redisLine(st.Redis, m.st),
	}
}

func workerCount(ws []control.Worker) string {
	return plural.Count(len(ws), "worker", "workers")
}

func redisLine(r control.Redis, st styles) string {
	if r.URL == "" {
		return st.dim.Render("redis: not checked yet")
	}
	url := r.URL
	if r.Embedded {
		url += " (embedded)"
	}
	if !r.Up {
		why := r.Error
		if why == "" {
			why = "no answer"
		}
		return "redis " + url + " · " + st.bad.Render("DOWN: "+why)
	}
	return "redis " + url + " · " + st.good.Render("up") + fmt.Sprintf(" · %.2f ms", r.LatencyMs)
}

// segments joins parts with " · ", dropping parts from the end (the least
// needed are last) until the line fits w.
func segments(w int, parts ...string) string {
	parts = slices.DeleteFunc(parts, func(p string) bool { return p == "" })
	for n := len(parts); n > 1; n-- {
		line := strings.Join(parts[:n], " · ")
		if ansi.StringWidth(line) <= w {
			return line
		}
	}
	return parts[0]
}

func outageTitle(err error) string {
	if notRunning(err) {
		return "daemon not running"
	}
	return "daemon not answering"
}

// outageView says what is wrong with the daemon, what the monitor does
// about it, and what was last seen.
func (m Model) outageView(w int) []string {
	c := m.conn
	if !c.down {
		return []string{"", "  asking the daemon for its status…"}
	}
	lines := []string{""}
	if notRunning(c.err) {
		where := "its control socket"
		if m.opts.Socket != "" {
			where = m.opts.Socket
		}
		lines = append(lines, m.st.bad.Render("  The frutos daemon is not running."), "  Nothing answers on "+where+".")
	} else {
		lines = append(lines, m.st.bad.Render("  The frutos daemon did not answer."), "  "+oneLine(c.err.Error()))
	}
	lines = append(lines,
		fmt.Sprintf("  Retrying every %s since %s (%s); the screen comes back by itself.",
			m.opts.Interval, c.since.Format("15:04:05"), plural.Count(c.attempts, "try", "tries")),
		"  Start it with `frutos start`, or `frutos resurrect` for the saved workers.")
	if c.seen {
		lines = append(lines, "", m.st.dim.Render(fmt.Sprintf("  Last seen %s ago: %s, %s.",
			FormatDuration(c.now.Sub(c.lastOK).Seconds()), workerCount(m.table.workers),
			plural.Count(clusterConns(m.table.workers), "connection", "connections"))))
	}
	return append(lines, "")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// footerView is the help line, or the question waiting for y/n, with the
// outcome of the last action above it.
func (m Model) footerView(w int) []string {
	var lines []string
	switch {
	case m.flash.text != "" && m.conn.now.Sub(m.flash.at) < flashFor:
		style := m.st.good
		if m.flash.bad {
			style = m.st.bad
		}
		lines = append(lines, style.Render(m.flash.text))
	case m.running != "":
		lines = append(lines, m.st.warn.Render("… "+m.running))
	}
	if m.confirm != nil {
		const yn = " [y/N]"
		return append(lines, m.st.warn.Render(fit(m.confirm.prompt, w-len(yn))+yn))
	}
	return append(lines, m.st.dim.Render(m.help(w)))
}

// help is the key line, the longest form that fits w.
func (m Model) help(w int) string {
	forms := []string{
		"↑↓/jk select  r restart  R reload all  +/- scale  l logs  h hosts  q quit",
		"jk move  r restart  R reload  +/- scale  l logs  h hosts  q quit",
		"jk move r restart R reload +/- scale l logs h hosts q quit",
	}
	if m.hosts.shown {
		forms = []string{"h back to the workers  q quit"}
	}
	for _, f := range forms {
		if ansi.StringWidth(f) <= w {
			return f
		}
	}
	return forms[len(forms)-1]
}
