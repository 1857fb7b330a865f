package tui

import (
	"bytes"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/frutos/frutos/control"
)

// The whole program, as Bubble Tea runs it: polls, keys, an action, quit.
func TestTUIProgram(t *testing.T) {
	d := &fakeDaemon{status: fourWorkers()}
	d.status.LogsDir = t.TempDir()
	m := New(Options{Daemon: d, Interval: 20 * time.Millisecond})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	waitFor(t, tm, "4 workers")

	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("j")})
	waitFor(t, tm, "logs of worker 1")

	tm.Type("+")
	waitFor(t, tm, "done scale")
	if got := d.sent(); len(got) != 1 || got[0].body != (control.ScaleRequest{Mode: "add", N: 1}) {
		t.Fatalf("sent %+v", got)
	}

	// The daemon goes away, and comes back.
	d.mu.Lock()
	d.err = control.ErrNotRunning
	d.mu.Unlock()
	waitFor(t, tm, "DAEMON NOT RUNNING")
	d.mu.Lock()
	d.err = nil
	d.mu.Unlock()
	waitFor(t, tm, "4 workers")

	tm.Type("q")
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	final.Close()
}

func waitFor(t *testing.T, tm *teatest.TestModel, s string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(s)) },
		teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(10*time.Millisecond))
}
