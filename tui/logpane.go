package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// LogLine is one line of a worker's out or err log.
type LogLine struct {
	Err  bool // from the error stream
	Text string
	Time time.Time // zero when the file has no timestamps
}

// LogTarget is one worker's log files, where the daemon's status says they
// are.
type LogTarget struct {
	Dir, App   string
	DateFormat string // logs.date_format, to read the lines' times
	ID         int
}

// LogFollower follows a worker's out and err logs for the log pane: it
// calls past once with the last n lines of each file (out's, then err's; a
// file it cannot read as an Err line saying so), then live with each new
// line of either, until ctx ends. The command wires one that reads the
// files as `frutos logs` does; tests pass a fake.
type LogFollower func(ctx context.Context, t LogTarget, n int, past func([]LogLine), live func(LogLine))

// LogLinesMsg carries lines read from the followed worker's files. Gen
// tells which follow they came from: lines of a worker no longer selected
// are dropped.
type LogLinesMsg struct {
	Gen   int
	Lines []LogLine
}

// logKeep is how many lines the pane remembers (more than any terminal
// shows).
const logKeep = 500

// logPane shows the last lines of the selected worker's out and err logs.
// The follow itself (a goroutine per file) is owned by a logFollow; the
// pane only holds the lines and which follow they belong to.
type logPane struct {
	hidden bool
	target LogTarget
	gen    int // bumps with every new follow
	follow *logFollow
	lines  []LogLine
}

// add appends the lines of follow gen, keeping the last logKeep.
func (p logPane) add(msg LogLinesMsg) logPane {
	if msg.Gen != p.gen {
		return p
	}
	lines := slices.Concat(p.lines, msg.Lines)
	if len(lines) > logKeep {
		lines = lines[len(lines)-logKeep:]
	}
	p.lines = lines
	return p
}

// retarget switches the pane to t (or to nothing when t is zero or the
// pane is hidden): it stops the old follow and returns the Cmds that
// start the new one with follow (none when follow is nil).
func (p logPane) retarget(life *lifetime, follow LogFollower, t LogTarget, backlog int) (logPane, tea.Cmd) {
	if p.hidden || t.Dir == "" {
		t = LogTarget{}
	}
	if t == p.target {
		return p, nil
	}
	if p.follow != nil {
		p.follow.stop()
		p.follow = nil
	}
	p.target, p.lines = t, nil
	p.gen++
	if t.Dir == "" || follow == nil {
		return p, nil
	}
	p.follow = newLogFollow(life, follow, t, p.gen, backlog)
	return p, tea.Batch(p.follow.start, p.follow.next)
}

func (p logPane) view(width, height int, st styles) []string {
	if height <= 0 {
		return nil
	}
	title := "logs"
	if p.target.Dir != "" {
		title = fmt.Sprintf("logs of worker %d (out and err)", p.target.ID)
	}
	lines := []string{st.title.Render(fit("── "+title+" ", width)) + st.dim.Render(dashes(width-len([]rune("── "+title+" "))))}
	shown := p.lines[max(len(p.lines)-(height-1), 0):]
	if p.target.Dir != "" && len(shown) == 0 {
		lines = append(lines, st.dim.Render("(nothing logged yet)"))
	}
	for _, l := range shown {
		text := printable(l.Text)
		if l.Err {
			lines = append(lines, st.bad.Render("err ")+fit(text, width-4))
		} else {
			lines = append(lines, fit(text, width))
		}
	}
	return lines
}

func dashes(n int) string {
	if n <= 0 {
		return ""
	}
	b := make([]rune, n)
	for i := range b {
		b[i] = '─'
	}
	return string(b)
}

// logFollow follows one worker's two files: its goroutines send lines into
// ch until stop. The screen re-arms next after every LogLinesMsg.
type logFollow struct {
	life    *lifetime
	source  LogFollower
	target  LogTarget
	gen     int
	backlog int
	ch      chan LogLine
	ctx     context.Context
	cancel  context.CancelFunc
}

func newLogFollow(life *lifetime, source LogFollower, t LogTarget, gen, backlog int) *logFollow {
	ctx, cancel := context.WithCancel(life.ctx)
	return &logFollow{life: life, source: source, target: t, gen: gen, backlog: backlog,
		ch: make(chan LogLine, 256), ctx: ctx, cancel: cancel}
}

func (f *logFollow) stop() { f.cancel() }

// start is the Cmd that starts the follow's goroutine. It returns no
// message: lines come through next.
func (f *logFollow) start() tea.Msg {
	f.life.Go(func() { followWorker(f.ctx, f.source, f.target, f.backlog, f.ch) })
	return nil
}

// next is the Cmd that waits for the next lines: it returns the first one
// with whatever else is already waiting.
func (f *logFollow) next() tea.Msg {
	var lines []LogLine
	select {
	case <-f.ctx.Done():
		return nil
	case l := <-f.ch:
		lines = append(lines, l)
	}
	for len(lines) < logKeep {
		select {
		case l := <-f.ch:
			lines = append(lines, l)
		default:
			return LogLinesMsg{Gen: f.gen, Lines: lines}
		}
	}
	return LogLinesMsg{Gen: f.gen, Lines: lines}
}

// followWorker sends the last backlog lines of the worker's out and err
// files (in time order when they have timestamps), then every new line of
// either, until ctx ends.
func followWorker(ctx context.Context, follow LogFollower, t LogTarget, backlog int, ch chan<- LogLine) {
	send := func(l LogLine) bool {
		select {
		case ch <- l:
			return true
		case <-ctx.Done():
			return false
		}
	}
	follow(ctx, t, backlog, func(past []LogLine) {
		for _, l := range lastInOrder(past, backlog) {
			if !send(l) {
				return
			}
		}
	}, func(l LogLine) { send(l) })
}

// lastInOrder is the last n of the past lines of both files: interleaved
// by time when every line has one; otherwise out's lines, then err's.
func lastInOrder(past []LogLine, n int) []LogLine {
	if !slices.ContainsFunc(past, func(l LogLine) bool { return l.Time.IsZero() }) {
		past = slices.Clone(past)
		slices.SortStableFunc(past, func(a, b LogLine) int { return a.Time.Compare(b.Time) })
	}
	return past[max(len(past)-n, 0):]
}
