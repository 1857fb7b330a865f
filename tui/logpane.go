package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/frutos/frutos/logs"
)

// LogLine is one line of a worker's out or err log.
type LogLine struct {
	Stream logs.Stream
	Text   string
	Time   time.Time // zero when the file has no timestamps
}

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

// logTarget is what the pane follows: one worker's files.
type logTarget struct {
	dir, app string
	id       int
}

// logPane shows the last lines of the selected worker's out and err logs.
// The follow itself (a goroutine per file) is owned by a logFollow; the
// pane only holds the lines and which follow they belong to.
type logPane struct {
	hidden bool
	target logTarget
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
// start the new one.
func (p logPane) retarget(life *lifetime, t logTarget, backlog int) (logPane, tea.Cmd) {
	if p.hidden || t.dir == "" {
		t = logTarget{}
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
	if t.dir == "" {
		return p, nil
	}
	p.follow = newLogFollow(life, t, p.gen, backlog)
	return p, tea.Batch(p.follow.start, p.follow.next)
}

func (p logPane) view(width, height int, st styles) []string {
	if height <= 0 {
		return nil
	}
	title := "logs"
	if p.target.dir != "" {
		title = fmt.Sprintf("logs of worker %d (out and err)", p.target.id)
	}
	lines := []string{st.title.Render(fit("── "+title+" ", width)) + st.dim.Render(dashes(width-len([]rune("── "+title+" "))))}
	shown := p.lines[max(len(p.lines)-(height-1), 0):]
	if p.target.dir != "" && len(shown) == 0 {
		lines = append(lines, st.dim.Render("(nothing logged yet)"))
	}
	for _, l := range shown {
		text := printable(l.Text)
		if l.Stream == logs.Err {
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
	target  logTarget
	gen     int
	backlog int
	ch      chan LogLine
	ctx     context.Context
	cancel  context.CancelFunc
}

func newLogFollow(life *lifetime, t logTarget, gen, backlog int) *logFollow {
	ctx, cancel := context.WithCancel(life.ctx)
	return &logFollow{life: life, target: t, gen: gen, backlog: backlog, ch: make(chan LogLine, 256), ctx: ctx, cancel: cancel}
}

func (f *logFollow) stop() { f.cancel() }

// start is the Cmd that starts the follow's goroutine. It returns no
// message: lines come through next.
func (f *logFollow) start() tea.Msg {
	f.life.Go(func() { followWorker(f.ctx, f.target, f.backlog, f.ch) })
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
// either, until ctx ends. A file not written yet is followed from when it
// appears; a file that cannot be read is reported as a line.
func followWorker(ctx context.Context, t logTarget, backlog int, ch chan<- LogLine) {
	send := func(l LogLine) bool {
		select {
		case ch <- l:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var reader logs.Reader
	streams := []logs.Stream{logs.Out, logs.Err}
	offsets := make([]logs.Offset, len(streams))
	var past []LogLine
	for i, s := range streams {
		path := logs.Path(t.dir, t.app, t.id, s)
		lines, off, err := reader.Tail(path, backlog)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			past = append(past, LogLine{Stream: logs.Err, Text: fmt.Sprintf("(monit: %v)", err)})
			continue
		}
		offsets[i] = off
		for _, l := range lines {
			past = append(past, LogLine{Stream: s, Text: l.Text, Time: l.Time})
		}
	}
	// Interleave out and err by time when every line has one; otherwise
	// out's lines, then err's.
	if !slices.ContainsFunc(past, func(l LogLine) bool { return l.Time.IsZero() }) {
		slices.SortStableFunc(past, func(a, b LogLine) int { return a.Time.Compare(b.Time) })
	}
	for _, l := range past[max(len(past)-backlog, 0):] {
		if !send(l) {
			return
		}
	}
	var wg sync.WaitGroup
	for i, s := range streams {
		path := logs.Path(t.dir, t.app, t.id, s)
		wg.Go(func() {
			err := reader.Follow(ctx, path, offsets[i], func(l logs.Line) {
				send(LogLine{Stream: s, Text: l.Text, Time: l.Time})
			})
			if err != nil && ctx.Err() == nil {
				send(LogLine{Stream: logs.Err, Text: fmt.Sprintf("(monit: stopped following %s: %v)", path, err)})
			}
		})
	}
	wg.Wait()
}
