package tui

import (
	"reflect"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/frutos/frutos/control"
)

func selected(t *testing.T, m Model) int {
	t.Helper()
	id, ok := m.table.selectedID()
	if !ok {
		t.Fatal("nothing selected")
	}
	return id
}

func TestTUISelectionMoves(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers()))
	steps := []struct {
		key  string
		want int
	}{
		{"down", 1}, {"j", 2}, {"j", 3}, {"j", 3}, {"up", 2}, {"k", 1}, {"k", 0}, {"k", 0}, {"G", 3}, {"g", 0}, {"end", 3},
	}
	for _, s := range steps {
		m = keys(m, s.key)
		if got := selected(t, m); got != s.want {
			t.Fatalf("after %q: worker %d selected, want %d", s.key, got, s.want)
		}
	}
}

func TestTUIKeysArrivingTogetherEachCount(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers()))
	m = send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("jjj")})
	if got := selected(t, m); got != 3 {
		t.Fatalf("after \"jjj\" in one message: worker %d selected, want 3", got)
	}
	// A paste is not typed keys.
	m = send(m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("kkk"), Paste: true})
	if got := selected(t, m); got != 3 {
		t.Fatalf("a paste moved the selection to %d", got)
	}
}

func TestTUISelectionFollowsTheWorkerAcrossRefreshes(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers()))
	m = keys(m, "j", "j") // worker 2
	st := fourWorkers()
	st.Workers = []control.Worker{st.Workers[0], st.Workers[2], st.Workers[3]} // 1 went away
	m = send(m, StatusMsg{Status: st, At: t0})
	if got := selected(t, m); got != 2 {
		t.Fatalf("worker %d selected, want 2 still", got)
	}
	st.Workers = st.Workers[:1] // 2 and 3 went away
	m = send(m, StatusMsg{Status: st, At: t0})
	if got := selected(t, m); got != 0 {
		t.Fatalf("worker %d selected, want 0 (the one left)", got)
	}
	st.Workers = nil
	m = send(m, StatusMsg{Status: st, At: t0})
	if _, ok := m.table.selectedID(); ok {
		t.Fatal("a worker is selected with none left")
	}
}

// run executes cmd (and a batch's commands) and returns the messages.
func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, run(c)...)
		}
		return out
	}
	return []tea.Msg{msg}
}

func press(m Model, k string) (Model, tea.Cmd) {
	next, cmd := m.Update(keyMsg(k))
	return next.(Model), cmd
}

func TestTUIDestructiveKeysAskThenSendTheRequest(t *testing.T) {
	tests := []struct {
		keys   []string // before the confirmed key
		key    string
		prompt string
		want   call
	}{
		{[]string{"j", "j"}, "r", "Restart worker 2 (pid 4203)?", call{"restart", control.Target{ID: 2}}},
		{nil, "R", "Reload all 4 workers", call{"reload", control.ReloadRequest{}}},
		{nil, "-", "Remove worker 3 (the highest id)?", call{"scale", control.ScaleRequest{Mode: "sub", N: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			d := &fakeDaemon{}
			m := samples(screen(t, 80, 24, Options{Daemon: d}), 1, rising(fourWorkers()))
			m = keys(m, tt.keys...)

			// n (or any other key) says no.
			m, cmd := press(m, tt.key)
			if cmd != nil || !strings.Contains(m.View(), tt.prompt) || !strings.Contains(m.View(), "[y/N]") {
				t.Fatalf("no question after %q:\n%s", tt.key, m.View())
			}
			m, cmd = press(m, "n")
			run(cmd)
			if len(d.sent()) != 0 || strings.Contains(m.View(), "[y/N]") || !strings.Contains(m.View(), "cancelled") {
				t.Fatalf("n did not cancel: sent %v\n%s", d.sent(), m.View())
			}

			// y says yes: one request, then its answer on screen.
			m, _ = press(m, tt.key)
			m, cmd = press(m, "y")
			if !strings.Contains(m.View(), "… ") {
				t.Errorf("no progress shown while the action runs:\n%s", m.View())
			}
			msgs := run(cmd)
			if got := d.sent(); len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Fatalf("sent %+v, want %+v", got, tt.want)
			}
			m = send(m, msgs...)
			if !strings.Contains(m.View(), "✓ done "+tt.want.op) {
				t.Fatalf("the daemon's answer is not shown:\n%s", m.View())
			}
		})
	}
}

func TestTUIScaleUpNeedsNoConfirmation(t *testing.T) {
	d := &fakeDaemon{}
	m := samples(screen(t, 80, 24, Options{Daemon: d}), 1, rising(fourWorkers()))
	m, cmd := press(m, "+")
	run(cmd)
	want := []call{{"scale", control.ScaleRequest{Mode: "add", N: 1}}}
	if got := d.sent(); !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %+v, want %+v", got, want)
	}
	_ = m
}

func TestTUIRefusesWhatCannotBeDone(t *testing.T) {
	one := fourWorkers()
	one.Workers = one.Workers[:1]
	none := fourWorkers()
	none.Workers = nil
	tests := []struct {
		name string
		m    func(Model) Model
		key  string
		says string
	}{
		{"remove the last worker", func(m Model) Model { return samples(m, 1, rising(one)) }, "-", "cannot remove the last worker"},
		{"restart with no workers", func(m Model) Model { return samples(m, 1, rising(none)) }, "r", "no worker selected"},
		{"reload with no workers", func(m Model) Model { return samples(m, 1, rising(none)) }, "R", "no workers to reload"},
		{"act while the daemon is down", func(m Model) Model {
			return send(samples(m, 1, rising(fourWorkers())), ErrMsg{Err: control.ErrNotRunning, At: t0})
		}, "+", "the daemon is not answering"},
		{"a second action while one runs", func(m Model) Model {
			m = keys(samples(m, 1, rising(fourWorkers())), "R", "y")
			return m
		}, "+", "still reloading all workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{}
			m := tt.m(screen(t, 80, 24, Options{Daemon: d}))
			m, cmd := press(m, tt.key)
			if cmd != nil || !strings.Contains(m.View(), tt.says) {
				t.Fatalf("cmd %v; screen:\n%s", cmd != nil, m.View())
			}
		})
	}
}

func TestTUIActionErrorIsShown(t *testing.T) {
	d := &fakeDaemon{answer: func(string) (control.Result, error) {
		return control.Result{}, &control.Error{Code: control.CodeBadRequest, Message: "scale -1 would leave 0 workers"}
	}}
	m := samples(screen(t, 80, 24, Options{Daemon: d}), 1, rising(fourWorkers()))
	m = keys(m, "-")
	m, cmd := press(m, "y")
	m = send(m, run(cmd)...)
	if !strings.Contains(m.View(), "✗ removing worker 3: scale -1 would leave 0 workers") {
		t.Fatal(m.View())
	}
}

func TestTUIQuit(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers()))
	for _, k := range []string{"q", "ctrl+c"} {
		if _, cmd := press(m, k); !isQuit(cmd) {
			t.Errorf("%q does not quit", k)
		}
	}
	// With an action in flight, q asks first; ctrl+c does not.
	m = keys(m, "R", "y")
	m, cmd := press(m, "q")
	if isQuit(cmd) || !strings.Contains(m.View(), "Quit while still reloading all workers?") {
		t.Fatalf("q quit during a reload without asking:\n%s", m.View())
	}
	if _, cmd := press(m, "y"); !isQuit(cmd) {
		t.Error("y does not quit")
	}
	if _, cmd := press(m, "ctrl+c"); !isQuit(cmd) {
		t.Error("ctrl+c does not quit")
	}
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func TestTUIReconnects(t *testing.T) {
	d := &fakeDaemon{status: fourWorkers()}
	m := samples(screen(t, 80, 24, Options{Daemon: d}), 2, rising(fourWorkers()))
	next, cmd := m.Update(ErrMsg{Err: control.ErrNotRunning, At: t0.Add(5e9)})
	m = next.(Model)
	if cmd == nil {
		t.Fatal("no next poll after a failure")
	}
	if !strings.Contains(m.View(), "DAEMON NOT RUNNING") {
		t.Fatal(m.View())
	}
	// The poll after the interval asks again, and the daemon is back.
	next, cmd = m.Update(pollMsg{})
	msgs := run(cmd)
	if len(msgs) != 1 {
		t.Fatalf("poll returned %v", msgs)
	}
	if _, ok := msgs[0].(StatusMsg); !ok {
		t.Fatalf("poll returned %T, want StatusMsg", msgs[0])
	}
	m = send(next.(Model), msgs...)
	if v := m.View(); strings.Contains(v, "NOT RUNNING") || !strings.Contains(v, "4 workers") {
		t.Fatalf("not back after the daemon returned:\n%s", v)
	}
}

func TestTUIStaleLogLinesAreDropped(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers()))
	old := m.logs.gen
	m = keys(m, "j")
	if m.logs.gen == old || m.logs.target.ID != 1 {
		t.Fatalf("moving did not retarget the log pane: gen %d→%d, target %+v", old, m.logs.gen, m.logs.target)
	}
	m = send(m, LogLinesMsg{Gen: old, Lines: []LogLine{{Text: "from worker 0"}}})
	if strings.Contains(m.View(), "from worker 0") {
		t.Fatal("a line of the worker no longer selected was shown")
	}
	m = keys(m, "l")
	if m.logs.target != (LogTarget{}) || strings.Contains(m.View(), "logs of worker") {
		t.Fatalf("hiding the logs did not stop the follow:\n%s", m.View())
	}
}
