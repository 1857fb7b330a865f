// Package tui is `frutos monit`: a live screen of the cluster (worker
// table with totals, CPU/RSS/connection history, the selected worker's
// logs, Redis health, and the fleet of hosts on the same Redis) and the
// keys to restart, reload and scale.
//
// The screen is a Bubble Tea model built from small parts (workerTable,
// history, logPane), each fed by messages and drawn by a pure View. All
// I/O happens in Cmds: a status poll every Interval that returns a
// StatusMsg or an ErrMsg, the operator's actions, and a log follow that
// returns LogLinesMsg and is re-armed after each one. Tests drive the model
// with those messages and compare View with golden files.
//
// The screen reads the world only through what Options hands it: Daemon
// (the control API's typed client, or a fake), Fleet (the fleet registry)
// and Logs (a worker's log files). The command wires them; tui imports
// neither daemon nor logs.
package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/frutos/frutos/control"
)

// Options configure the screen.
type Options struct {
	// Daemon answers status requests and actions; required.
	Daemon Daemon
	// Interval is how often the daemon is asked for its status (1s).
	Interval time.Duration
	// Color allows colours; false (NO_COLOR, or no terminal) draws plain
	// text with no escape codes at all.
	Color bool
	// Socket is the daemon's control socket, named when nothing answers.
	Socket string
	// LogLines is how many past lines of a worker's logs to show at first
	// (100).
	LogLines int
	// Now is the clock (time.Now).
	Now func() time.Time
	// Fleet reads every host of the fleet registry, for the hosts view
	// (key h); nil leaves the view out.
	Fleet func(ctx context.Context) (control.Fleet, error)
	// Logs follows the selected worker's log files, for the log pane; nil
	// shows none.
	Logs LogFollower
}

// Model is the monit screen.
type Model struct {
	opts Options
	st   styles
	life *lifetime

	width, height int

	conn   connState
	status control.Status // the last status that arrived
	table  workerTable
	hist   history
	logs   logPane
	hosts  hostsView

	confirm *confirmation // a question waiting for y or n
	running string        // the action in flight ("reloading all workers")
	flash   flash         // the outcome of the last action
}

// connState is how talking to the daemon goes.
type connState struct {
	seen     bool      // a status arrived at least once
	down     bool      // the last request failed
	err      error     // why
	since    time.Time // the first failure of this outage
	attempts int       // failed requests in this outage
	lastOK   time.Time
	now      time.Time // when the last answer (or failure) came
}

// confirmation is a destructive action (or a quit that would cut one
// short) waiting for y.
type confirmation struct {
	prompt string
	act    *action // nil: the question is whether to quit
}

// flash is the one-line outcome of the last action.
type flash struct {
	text string
	bad  bool
	at   time.Time
}

// flashFor is how long an outcome stays on screen.
const flashFor = 15 * time.Second

// New returns the screen for opts.
func New(opts Options) Model {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.LogLines <= 0 {
		opts.LogLines = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return Model{opts: opts, st: newStyles(opts.Color), life: newLifetime(), width: 80, height: 24}
}

// Close stops what the screen started in the background (log followers,
// requests in flight) and waits for it. Call it after the program ends.
func (m Model) Close() { m.life.close() }

// Init asks for the first status right away.
func (m Model) Init() tea.Cmd {
	return fetchStatus(m.life, m.opts.Daemon, m.opts.Now)
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case pollMsg:
		return m, fetchStatus(m.life, m.opts.Daemon, m.opts.Now)
	case StatusMsg:
		m.conn = connState{seen: true, lastOK: msg.At, now: msg.At}
		m.status = msg.Status
		m.table = m.table.setWorkers(msg.Status.Workers)
		m.hist = m.hist.add(msg.Status.Workers)
		var follow tea.Cmd
		m, follow = m.followSelected()
		return m, tea.Batch(pollAfter(m.opts.Interval), follow)
	case ErrMsg:
		if !m.conn.down {
			m.conn.since, m.conn.attempts = msg.At, 0
		}
		m.conn.down, m.conn.err, m.conn.now = true, msg.Err, msg.At
		m.conn.attempts++
		return m, pollAfter(m.opts.Interval)
	case ActionDoneMsg:
		m.running = ""
		if msg.Err != nil {
			m.flash = flash{text: "✗ " + msg.Doing + ": " + msg.Err.Error(), bad: true, at: msg.At}
		} else {
			m.flash = flash{text: "✓ " + msg.Result.Message, at: msg.At}
		}
	case LogLinesMsg:
		m.logs = m.logs.add(msg)
		if msg.Gen == m.logs.gen && m.logs.follow != nil {
			return m, m.logs.follow.next
		}
	case FleetMsg, fleetPollMsg:
		return m.fleetUpdate(msg)
	case tea.KeyMsg:
		return m.keys(msg)
	}
	return m, nil
}

// keys handles a key press. Keys typed faster than the screen reads them
// (key repeat, a slow ssh link) can arrive as one message of several
// runes: each counts.
func (m Model) keys(k tea.KeyMsg) (Model, tea.Cmd) {
	if k.Type != tea.KeyRunes || len(k.Runes) < 2 || k.Paste {
		return m.key(k)
	}
	var cmds []tea.Cmd
	for _, r := range k.Runes {
		var cmd tea.Cmd
		m, cmd = m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

// followSelected points the log pane at the selected worker.
func (m Model) followSelected() (Model, tea.Cmd) {
	var t LogTarget
	if w, ok := m.table.selectedWorker(); ok && m.status.LogsDir != "" {
		t = LogTarget{Dir: m.status.LogsDir, App: m.status.App, DateFormat: m.status.LogDateFormat, ID: w.ID}
	}
	var cmd tea.Cmd
	m.logs, cmd = m.logs.retarget(m.life, m.opts.Logs, t, m.opts.LogLines)
	return m, cmd
}

func (m Model) key(k tea.KeyMsg) (Model, tea.Cmd) {
	if k.String() == "ctrl+c" {
		return m, tea.Quit
	}
	if c := m.confirm; c != nil {
		m.confirm = nil
		switch k.String() {
		case "y", "Y":
			if c.act == nil {
				return m, tea.Quit
			}
			return m.start(*c.act)
		}
		m.flash = flash{text: "cancelled", at: m.conn.now}
		return m, nil
	}
	switch k.String() {
	case "h":
		return m.toggleHosts()
	case "q", "Q":
		if m.running != "" {
			m.confirm = &confirmation{prompt: fmt.Sprintf("Quit while still %s? The daemon may stop it halfway.", m.running)}
			return m, nil
		}
		return m, tea.Quit
	}
	if m.hosts.shown {
		return m, nil // the worker keys act on rows that are not on screen
	}
	switch k.String() {
	case "up", "k":
		m.table = m.table.move(-1)
		return m.followSelected()
	case "down", "j":
		m.table = m.table.move(1)
		return m.followSelected()
	case "home", "g":
		m.table = m.table.move(-len(m.table.workers))
		return m.followSelected()
	case "end", "G":
		m.table = m.table.move(len(m.table.workers))
		return m.followSelected()
	case "l":
		m.logs.hidden = !m.logs.hidden
		return m.followSelected()
	case "r":
		w, ok := m.table.selectedWorker()
		if !ok {
			return m.refuse("no worker selected")
		}
		return m.ask(restartAction(w))
	case "R":
		if len(m.table.workers) == 0 {
			return m.refuse("no workers to reload")
		}
		return m.ask(reloadAction(len(m.table.workers)))
	case "+", "=":
		if m.status.App == "" && !m.conn.down {
			return m.refuse("no app started: run `frutos start` first")
		}
		return m.ask(scaleUpAction())
	case "-", "_":
		ws := m.table.workers
		if len(ws) <= 1 {
			return m.refuse("cannot remove the last worker here (use `frutos scale 0`)")
		}
		highest := ws[0].ID
		for _, w := range ws {
			highest = max(highest, w.ID)
		}
		return m.ask(scaleDownAction(highest))
	}
	return m, nil
}

// ask starts a, after a confirmation when it is destructive.
func (m Model) ask(a action) (Model, tea.Cmd) {
	switch {
	case m.conn.down:
		return m.refuse("the daemon is not answering: try again when it is back")
	case m.running != "":
		return m.refuse(fmt.Sprintf("still %s: wait for it to finish", m.running))
	case a.prompt != "":
		m.confirm = &confirmation{prompt: a.prompt, act: &a}
		return m, nil
	}
	return m.start(a)
}

func (m Model) start(a action) (Model, tea.Cmd) {
	m.running, m.flash = a.doing, flash{}
	return m, runAction(m.life, m.opts.Daemon, a, m.opts.Now)
}

func (m Model) refuse(why string) (Model, tea.Cmd) {
	m.flash = flash{text: "✗ " + why, bad: true, at: m.conn.now}
	return m, nil
}

// View draws the screen: header, table, charts, logs, help.
func (m Model) View() string {
	w, h := max(m.width, 20), max(m.height, 5)
	top := m.headerView(w)
	bottom := m.footerView(w)
	body := m.bodyView(w, h-len(top)-len(bottom))

	lines := make([]string, 0, h)
	lines = append(lines, top...)
	lines = append(lines, body...)
	for len(lines) < h-len(bottom) {
		lines = append(lines, "")
	}
	lines = append(lines[:h-len(bottom)], bottom...)
	for i, l := range lines {
		lines[i] = strings.TrimRight(fit(l, w), " ")
	}
	return strings.Join(lines, "\n")
}

func (m Model) bodyView(w, h int) []string {
	if h <= 0 {
		return nil
	}
	if m.hosts.shown {
		return m.hosts.view(w, h, m.opts.Interval, m.st)
	}
	if m.conn.down || !m.conn.seen {
		msg := m.outageView(w)
		return append(msg, m.logs.view(w, h-len(msg), m.st)...)
	}
	ws := m.table.workers
	tableWant := len(ws) + 2
	if len(ws) == 0 {
		tableWant = 2
	}
	const tableMin, chartH, logMin = 3, 4, 4
	chart, logH := chartH, 0
	if !m.logs.hidden {
		logH = logMin
	}
	if h < tableMin+chart+logH {
		chart = 0 // the charts go first on a short terminal
	}
	if h < tableMin+chart+logH {
		logH = 0
	}
	tableH := min(tableWant, h-chart-logH)
	if !m.logs.hidden && logH > 0 {
		logH = h - tableH - chart
	}

	lines := m.table.view(w, tableH, true, m.st)
	if chart > 0 {
		lines = append(lines, m.chartView(w)...)
	}
	return append(lines, m.logs.view(w, logH, m.st)...)
}

func (m Model) chartView(w int) []string {
	title := [2]string{"no worker selected", "cluster (" + workerCount(m.table.workers) + ")"}
	var s [2]series
	if sel, ok := m.table.selectedWorker(); ok {
		title[0] = fmt.Sprintf("worker %d · %s", sel.ID, statusWord(sel))
		if sel.LastExit != "" {
			title[0] += " · " + sel.LastExit
		}
		s[0] = m.hist.workers[sel.ID]
	}
	s[1] = m.hist.cluster
	return chartView(w, title, s, m.st)
}
