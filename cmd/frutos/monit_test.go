package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/testutil/controltest"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/logs"
	"github.com/frutos/frutos/tui"
)

// fakeControl serves a fixed status on a home's control socket.
func fakeControl(t *testing.T, st control.Status) (home string) {
	t.Helper()
	return controltest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method+" "+r.URL.Path != string(control.RouteStatus) {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	}))
}

func runMonitCmd(home string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "FRUTOS_HOME" {
			return home
		}
		return env[k]
	}
	code = run(append([]string{"monit"}, args...), &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, getenv)
	return code, out.String(), errOut.String()
}

func TestMonitPrintsOneSnapshotWhenStdoutIsNotATerminal(t *testing.T) {
	st := control.Status{App: "frutos", Env: "development", Host: "127.0.0.1", Port: 3000,
		Daemon: control.Daemon{PID: 10, UptimeSec: 90},
		Redis:  control.Redis{URL: "redis://:***@127.0.0.1:6379", Up: true, LatencyMs: 0.3},
		Workers: []control.Worker{
			{ID: 0, PID: 11, Status: "online", Ready: true, CPU: 1.5, Memory: 40 << 20, Connections: 7, EventsPerS: 3},
			{ID: 1, PID: 12, Status: "online", Ready: true, CPU: 2.5, Memory: 42 << 20, Connections: 5, EventsPerS: 4},
			{ID: 2, Status: "errored", Restarts: 3, LastExit: "exit status 1"},
		}}
	home := fakeControl(t, st)

	code, out, errOut := runMonitCmd(home, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"frutos (development) · 127.0.0.1:3000 · 3 workers",
		"redis redis://:***@127.0.0.1:6379 · up · 0.30 ms",
		"0         11  online", "2          -  errored", "exit status 1",
		"all           2/3 up                 3    4.0%   82.0 MiB      12",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("snapshot lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape codes in a snapshot: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2+1+3+1 {
		t.Errorf("%d lines, want header 2, table head, 3 workers, totals:\n%s", len(lines), out)
	}

	_, narrow, _ := runMonitCmd(home, map[string]string{"COLUMNS": "60"})
	for _, l := range strings.Split(narrow, "\n") {
		if n := len([]rune(l)); n > 60 {
			t.Errorf("COLUMNS=60 but a line of %d: %q", n, l)
		}
	}
}

func TestMonitWithNoDaemon(t *testing.T) {
	home := t.TempDir()
	code, out, errOut := runMonitCmd(home, nil)
	if code != exitDaemon || out != "" || !strings.Contains(errOut, "not running") || !strings.Contains(errOut, "frutos start") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestMonitRejectsABadInterval(t *testing.T) {
	for _, iv := range []string{"0s", "10ms", "soon"} {
		code, _, errOut := runMonitCmd(t.TempDir(), nil, "--interval", iv)
		if code != exitUsage {
			t.Errorf("--interval %s: exit %d, %s", iv, code, errOut)
		}
	}
}

// The screen against a real daemon with real workers: the numbers it shows
// are the daemon's, + adds a worker, and a stopped daemon is said so.
func TestMonitTUIAgainstARealDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a daemon and workers")
	}
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	c.ok("start", "--instances", "2", "--port", strconv.Itoa(redistest.FreePort(t)))
	st := c.waitStatus("2 online", 30*time.Second, online(2))

	m := tui.New(tui.Options{Daemon: control.NewClient(c.home), Interval: 200 * time.Millisecond})
	defer m.Close()
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	see := func(what string, cond func(string) bool) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return cond(string(b)) },
			teatest.WithDuration(30*time.Second), teatest.WithCheckInterval(50*time.Millisecond))
	}
	see("the workers' pids", func(s string) bool {
		return strings.Contains(s, strconv.Itoa(st.Workers[0].PID)) && strings.Contains(s, strconv.Itoa(st.Workers[1].PID))
	})

	tm.Type("+")
	see("a third worker", func(s string) bool { return strings.Contains(s, "3 workers") })
	c.waitStatus("3 online", 30*time.Second, online(3))

	c.ok("kill")
	see("the daemon gone", func(s string) bool { return strings.Contains(s, "DAEMON NOT RUNNING") })
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// monit's log follower reads a worker's files as frutos logs does: the
// last lines of out then err, then new lines of either, err not written
// yet followed from when it appears.
func TestMonitFollowsAWorkersLogs(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 2, logs.Out, "old 1\nold 2\nold 3\n")
	h.write(t, 1, logs.Out, "another worker\n")
	ctx, cancel := context.WithCancel(context.Background())
	past := make(chan []tui.LogLine, 1)
	live := make(chan tui.LogLine, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		followWorkerLogs(ctx, tui.LogTarget{Dir: h.dir, App: "frutos", ID: 2}, 2,
			func(l []tui.LogLine) { past <- l }, func(l tui.LogLine) { live <- l })
	}()
	defer func() {
		cancel()
		<-done
	}()
	if got := <-past; len(got) != 2 || got[0].Text != "old 2" || got[1].Text != "old 3" || got[0].Err {
		t.Fatalf("past %+v, want the last 2 lines of out", got)
	}
	h.write(t, 2, logs.Out, "new out\n")
	if got := receiveLine(t, live); got != (tui.LogLine{Text: "new out"}) {
		t.Fatalf("got %+v", got)
	}
	h.write(t, 2, logs.Err, "new err\n")
	if got := receiveLine(t, live); got != (tui.LogLine{Err: true, Text: "new err"}) {
		t.Fatalf("got %+v", got)
	}
}

// Bug: monit read the log files with the default date format whatever
// logs.date_format said, so with another format the times stayed in the
// text and out and err were not interleaved.
func TestMonitReadsLogsWithTheirDateFormat(t *testing.T) {
	h := newLogsHome(t)
	const layout = "2006/01/02 15:04:05.000"
	at := func(s int) string { return time.Date(2026, 11, 27, 10, 0, s, 0, time.Local).Format(layout) }
	h.write(t, 0, logs.Out, at(1)+" out one\n"+at(3)+" out three\n")
	h.write(t, 0, logs.Err, at(2)+" err two\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var past []tui.LogLine
	followWorkerLogs(ctx, tui.LogTarget{Dir: h.dir, App: "frutos", DateFormat: layout, ID: 0}, 10,
		func(l []tui.LogLine) { past = l; cancel() }, func(tui.LogLine) {})
	if len(past) != 3 {
		t.Fatalf("past %+v", past)
	}
	for i, want := range []struct {
		text string
		s    int
	}{{"out one", 1}, {"out three", 3}, {"err two", 2}} {
		if past[i].Text != want.text || past[i].Time.Second() != want.s {
			t.Errorf("line %d = %+v, want %q at second %d", i, past[i], want.text, want.s)
		}
	}
}

func receiveLine(t *testing.T, ch <-chan tui.LogLine) tui.LogLine {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10s")
	}
	return tui.LogLine{}
}
