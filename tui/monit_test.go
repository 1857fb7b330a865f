package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/frutos/frutos/control"
)

// The golden files are testdata/<test name>.golden; regenerate them with
//
//	go test ./tui -run TUI -update

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// fakeDaemon records the actions the screen sends and answers them.
type fakeDaemon struct {
	mu     sync.Mutex
	status control.Status
	err    error
	calls  []call
	answer func(op string) (control.Result, error)
}

// call is an operation the screen sent: "restart", "reload" or "scale",
// and its request.
type call struct {
	op   string
	body any
}

func (f *fakeDaemon) Status(context.Context) (control.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status, f.err
}

func (f *fakeDaemon) Restart(_ context.Context, t control.Target) (control.Result, error) {
	return f.do("restart", t)
}

func (f *fakeDaemon) Reload(_ context.Context, req control.ReloadRequest) (control.Result, error) {
	return f.do("reload", req)
}

func (f *fakeDaemon) Scale(_ context.Context, req control.ScaleRequest) (control.Result, error) {
	return f.do("scale", req)
}

func (f *fakeDaemon) do(op string, body any) (control.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{op: op, body: body})
	if f.answer != nil {
		return f.answer(op)
	}
	return control.Result{Message: "done " + op}, nil
}

func (f *fakeDaemon) sent() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// fourWorkers is a healthy cluster under some load.
func fourWorkers() control.Status {
	st := control.Status{
		App: "frutos", Env: "production", Host: "0.0.0.0", Port: 3000, Instances: 4,
		// The model only names this directory to its log follower, a Cmd
		// that these tests never run: they send the lines themselves.
		LogsDir: "/var/log/frutos",
		Daemon:  control.Daemon{PID: 4100, Memory: 21 << 20, CPU: 0.4, UptimeSec: 7980, Version: "1.0.0", Home: "/var/lib/frutos"},
		Redis:   control.Redis{URL: "redis://:***@10.0.0.5:6379/0", Up: true, LatencyMs: 0.42},
	}
	for i := range 4 {
		st.Workers = append(st.Workers, control.Worker{
			ID: i, PID: 4201 + i, Status: control.StatusOnline, Restarts: i % 2, UptimeSec: 7975 / float64(1+i*i),
			CPU: 3.5 + float64(i)*2.25, Memory: uint64(48+i*3) << 20, Connections: 1200 + i*37,
			Transports: map[string]int{"websocket": 1190 + i*37, "polling": 10}, Delivered: uint64(90000 + i*1234),
			EventsPerS: 310 + float64(i)*12.5, Ready: true, Redis: "up", Generation: 1 + i%2,
		})
	}
	return st
}

// screen is a model at a size with a fixed clock.
func screen(t *testing.T, w, h int, opts Options) Model {
	t.Helper()
	if opts.Daemon == nil {
		opts.Daemon = &fakeDaemon{}
	}
	opts.Now = func() time.Time { return t0 }
	m := New(opts)
	t.Cleanup(m.Close)
	return send(m, tea.WindowSizeMsg{Width: w, Height: h})
}

// send feeds msgs to m and ignores the Cmds (no I/O in these tests).
func send(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

// samples feeds n statuses one second apart, the load rising, so the
// charts have a history.
func samples(m Model, n int, st func(i int) control.Status) Model {
	for i := range n {
		m = send(m, StatusMsg{Status: st(i), At: t0.Add(time.Duration(i) * time.Second)})
	}
	return m
}

func rising(base control.Status) func(int) control.Status {
	return func(i int) control.Status {
		st := base
		st.Workers = append([]control.Worker(nil), base.Workers...)
		for j := range st.Workers {
			w := &st.Workers[j]
			if w.PID == 0 {
				continue
			}
			w.CPU = w.CPU * float64(1+i%7) / 4
			w.Memory += uint64(i) << 18
			w.Connections += i * (j + 1)
		}
		return st
	}
}

func keys(m Model, ks ...string) Model {
	for _, k := range ks {
		m = send(m, keyMsg(k))
	}
	return m
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "home":
		return tea.KeyMsg{Type: tea.KeyHome}
	case "end":
		return tea.KeyMsg{Type: tea.KeyEnd}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func someLogs(m Model) Model {
	lines := []LogLine{
		{Text: "worker 1 listening on fd 3 (slot 1)"},
		{Text: "redis adapter subscribed to socket.io#/#"},
		{Err: true, Text: "auth: token expired for sid Zk3x (user 812)"},
		{Text: "\x1b[32mcoloured\x1b[0m line\twith a tab"},
	}
	return send(m, LogLinesMsg{Gen: m.logs.gen, Lines: lines})
}

func view(t *testing.T, m Model) {
	t.Helper()
	v := m.View()
	w, h := m.width, m.height
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("view has %d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if n := len([]rune(l)); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i+1, n, w, l)
		}
	}
	golden.RequireEqual(t, []byte(v+"\n"))
}

func TestTUIGolden(t *testing.T) {
	tests := []struct {
		name string
		w, h int
		make func(m Model) Model
	}{
		{"four_workers_80x24", 80, 24, func(m Model) Model {
			m = samples(m, 30, rising(fourWorkers()))
			return someLogs(keys(m, "j"))
		}},
		{"zero_workers", 80, 24, func(m Model) Model {
			st := fourWorkers()
			st.Workers = nil
			return samples(m, 3, func(int) control.Status { return st })
		}},
		{"no_app", 80, 24, func(m Model) Model {
			return send(m, StatusMsg{Status: control.Status{Daemon: control.Daemon{PID: 4100, UptimeSec: 65}}, At: t0})
		}},
		{"errored_worker", 80, 24, func(m Model) Model {
			st := fourWorkers()
			w := &st.Workers[2]
			w.Status, w.PID, w.CPU, w.Memory, w.Connections, w.EventsPerS, w.Ready = control.StatusErrored, 0, 0, 0, 0, 0, false
			w.Restarts, w.LastExit = 3, "exit status 2"
			st.Redis = control.Redis{URL: "redis://10.0.0.5:6379", Up: false, Error: "dial tcp 10.0.0.5:6379: connect: connection refused"}
			m = samples(m, 10, rising(st))
			return keys(m, "j", "j")
		}},
		{"daemon_gone", 80, 24, func(m Model) Model {
			m = samples(m, 10, rising(fourWorkers()))
			m = someLogs(m)
			for i := range 7 {
				m = send(m, ErrMsg{Err: control.ErrNotRunning, At: t0.Add(time.Duration(10+i) * time.Second)})
			}
			return m
		}},
		{"daemon_not_answering", 80, 24, func(m Model) Model {
			m = samples(m, 3, rising(fourWorkers()))
			err := fmt.Errorf("the daemon did not answer GET /v1/status in time: %w", context.DeadlineExceeded)
			return send(m, ErrMsg{Err: err, At: t0.Add(8 * time.Second)})
		}},
		{"connecting", 80, 24, func(m Model) Model { return m }},
		{"narrow_60x20", 60, 20, func(m Model) Model {
			m = samples(m, 30, rising(fourWorkers()))
			return someLogs(m)
		}},
		{"tiny_40x10", 40, 10, func(m Model) Model {
			return samples(m, 5, rising(fourWorkers()))
		}},
		{"wide_200x50", 200, 50, func(m Model) Model {
			st := fourWorkers()
			st.Workers[3].LastExit = "signal: killed"
			m = samples(m, 120, rising(st))
			return someLogs(keys(m, "G"))
		}},
		{"logs_hidden", 80, 24, func(m Model) Model {
			return keys(samples(m, 5, rising(fourWorkers())), "l")
		}},
		{"many_workers_scrolled", 80, 24, func(m Model) Model {
			st := fourWorkers()
			for i := 4; i < 16; i++ {
				w := st.Workers[i%4]
				w.ID, w.PID = i, 4201+i
				st.Workers = append(st.Workers, w)
			}
			return keys(samples(m, 3, rising(st)), "G", "k")
		}},
		{"confirm_restart", 80, 24, func(m Model) Model {
			return keys(samples(m, 3, rising(fourWorkers())), "j", "r")
		}},
		{"action_failed", 80, 24, func(m Model) Model {
			m = samples(m, 3, rising(fourWorkers()))
			return send(m, ActionDoneMsg{Doing: "removing worker 3", Err: &control.Error{Code: control.CodeFailed, Message: "worker 3 did not drain in 30s"}, At: t0})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			view(t, tt.make(screen(t, tt.w, tt.h, Options{Socket: "/var/lib/frutos/daemon.sock"})))
		})
	}
}

func TestTUIResize(t *testing.T) {
	m := samples(screen(t, 80, 24, Options{}), 5, rising(fourWorkers()))
	for _, size := range [][2]int{{200, 50}, {60, 20}, {80, 24}, {30, 8}, {120, 40}} {
		m = send(m, tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		lines := strings.Split(m.View(), "\n")
		if len(lines) != size[1] {
			t.Errorf("%dx%d: %d lines", size[0], size[1], len(lines))
		}
		for _, l := range lines {
			if n := len([]rune(l)); n > size[0] {
				t.Errorf("%dx%d: line of %d cells: %q", size[0], size[1], n, l)
			}
		}
	}
}

func TestTUINoColor(t *testing.T) {
	plain := samples(screen(t, 80, 24, Options{}), 5, rising(fourWorkers()))
	plain = someLogs(plain)
	if v := plain.View(); strings.Contains(v, "\x1b") {
		t.Fatalf("escape codes without colour:\n%q", v)
	}
	coloured := samples(screen(t, 80, 24, Options{Color: true}), 5, rising(fourWorkers()))
	if v := coloured.View(); !strings.Contains(v, "\x1b[") {
		t.Fatalf("no colour with Color: %q", v)
	}
}

func TestTUIErrMsgDoesNotCrashBeforeFirstStatus(t *testing.T) {
	m := screen(t, 80, 24, Options{})
	m = send(m, ErrMsg{Err: errors.New("boom"), At: t0})
	if v := m.View(); !strings.Contains(v, "did not answer.") || !strings.Contains(v, "  boom\n") {
		t.Fatal(m.View())
	}
}
