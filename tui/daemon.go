package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/frutos/frutos/control"
)

// Daemon is the part of the control client the monitor uses;
// *control.Client is one, and tests pass a fake.
type Daemon interface {
	Status(ctx context.Context) (control.Status, error)
	Restart(ctx context.Context, t control.Target) (control.Result, error)
	Reload(ctx context.Context, req control.ReloadRequest) (control.Result, error)
	Scale(ctx context.Context, req control.ScaleRequest) (control.Result, error)
}

// StatusMsg is a fresh status from the daemon.
type StatusMsg struct {
	Status control.Status
	At     time.Time
}

// ErrMsg is a status request that failed: the daemon is gone
// (control.ErrNotRunning) or did not answer.
type ErrMsg struct {
	Err error
	At  time.Time
}

// pollMsg asks for the next status request.
type pollMsg struct{}

// statusTimeout bounds one status request: a daemon that does not answer
// in that time is shown as not answering.
const statusTimeout = 5 * time.Second

// fetchStatus is the Cmd that asks the daemon for its status once.
func fetchStatus(life *lifetime, d Daemon, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(life.ctx, statusTimeout)
		defer cancel()
		st, err := d.Status(ctx)
		if life.ctx.Err() != nil {
			return nil // quitting
		}
		if err != nil {
			return ErrMsg{Err: err, At: now()}
		}
		return StatusMsg{Status: st, At: now()}
	}
}

// pollAfter is the Cmd that waits one interval before the next request.
func pollAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return pollMsg{} })
}

// action is an operation the operator asked for with a key.
type action struct {
	run     func(context.Context, Daemon) (control.Result, error)
	prompt  string // the y/n question; empty for actions that need none
	doing   string // "restarting worker 2"
	destroy bool
}

func restartAction(w control.Worker) action {
	return action{
		run: func(ctx context.Context, d Daemon) (control.Result, error) {
			return d.Restart(ctx, control.Target{ID: w.ID})
		},
		destroy: true,
		prompt:  fmt.Sprintf("Restart worker %d (pid %d)? Its clients reconnect to the others.", w.ID, w.PID),
		doing:   fmt.Sprintf("restarting worker %d", w.ID),
	}
}

func reloadAction(n int) action {
	return action{
		run: func(ctx context.Context, d Daemon) (control.Result, error) {
			return d.Reload(ctx, control.ReloadRequest{})
		},
		destroy: true,
		prompt:  reloadPrompt(n),
		doing:   "reloading all workers",
	}
}

func scaleUpAction() action {
	return action{run: scaleByOne("add"), doing: "adding a worker"}
}

func scaleDownAction(highest int) action {
	return action{
		run:     scaleByOne("sub"),
		destroy: true,
		prompt:  fmt.Sprintf("Remove worker %d (the highest id)? It drains; its clients reconnect.", highest),
		doing:   fmt.Sprintf("removing worker %d", highest),
	}
}

// scaleByOne adds ("add") or removes ("sub") one worker.
func scaleByOne(mode string) func(context.Context, Daemon) (control.Result, error) {
	return func(ctx context.Context, d Daemon) (control.Result, error) {
		return d.Scale(ctx, control.ScaleRequest{Mode: mode, N: 1})
	}
}

// actionTimeout bounds an operation, as the CLI's: a reload of many
// workers takes a while.
const actionTimeout = 10 * time.Minute

// ActionDoneMsg is the daemon's answer to an action.
type ActionDoneMsg struct {
	Doing  string
	Result control.Result
	Err    error
	At     time.Time
}

// runAction is the Cmd that sends the action to the daemon.
func runAction(life *lifetime, d Daemon, a action, now func() time.Time) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(life.ctx, actionTimeout)
		defer cancel()
		res, err := a.run(ctx, d)
		if life.ctx.Err() != nil {
			return nil
		}
		return ActionDoneMsg{Doing: a.doing, Result: res, Err: err, At: now()}
	}
}

// lifetime owns what the screen starts in the background (the log
// followers) and the context of its requests: Close ends them all and
// waits.
type lifetime struct {
	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func newLifetime() *lifetime {
	ctx, cancel := context.WithCancel(context.Background())
	return &lifetime{ctx: ctx, cancel: cancel}
}

// Go runs fn in a goroutine that close waits for; after close it does
// nothing.
func (l *lifetime) Go(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.wg.Go(fn)
	}
}

func (l *lifetime) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
}

// notRunning reports whether err means no daemon is there.
func notRunning(err error) bool { return errors.Is(err, control.ErrNotRunning) }

// reloadPrompt asks before a reload of n workers.
func reloadPrompt(n int) string {
	if n == 1 {
		return "Reload the worker (zero downtime)?"
	}
	return fmt.Sprintf("Reload all %d workers, one at a time (zero downtime)?", n)
}
