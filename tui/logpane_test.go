package tui

import (
	"context"
	"sync"
	"testing"
	"time"
)

func receive(t *testing.T, ch <-chan LogLine, n int) []LogLine {
	t.Helper()
	var got []LogLine
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case l := <-ch:
			got = append(got, l)
		case <-timeout:
			t.Fatalf("got %d lines, want %d: %+v", len(got), n, got)
		}
	}
	return got
}

// fakeLogs is a LogFollower: it hands out past, then whatever the test
// sends on live, until the follow ends.
type fakeLogs struct {
	past []LogLine
	live chan LogLine

	mu      sync.Mutex
	targets []LogTarget
	asked   []int // n of each follow
}

func newFakeLogs(past ...LogLine) *fakeLogs { return &fakeLogs{past: past, live: make(chan LogLine)} }

func (f *fakeLogs) follow(ctx context.Context, t LogTarget, n int, past func([]LogLine), live func(LogLine)) {
	f.mu.Lock()
	f.targets, f.asked = append(f.targets, t), append(f.asked, n)
	f.mu.Unlock()
	past(f.past)
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-f.live:
			live(l)
		}
	}
}

func (f *fakeLogs) followed() []LogTarget {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]LogTarget(nil), f.targets...)
}

func followForTest(t *testing.T, f *fakeLogs, backlog int) <-chan LogLine {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan LogLine, 16)
	done := make(chan struct{})
	go func() {
		followWorker(ctx, f.follow, LogTarget{Dir: "/logs", App: "frutos", ID: 2}, backlog, ch)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ch
}

func TestTUILogFollowSendsTheLastLinesThenNewOnes(t *testing.T) {
	f := newFakeLogs(LogLine{Text: "old 1"}, LogLine{Text: "old 2"}, LogLine{Text: "old 3"}, LogLine{Err: true, Text: "old err"})
	ch := followForTest(t, f, 2)
	got := receive(t, ch, 2)
	if got[0].Text != "old 3" || got[1] != (LogLine{Err: true, Text: "old err"}) {
		t.Fatalf("backlog %+v, want the last 2 lines, out's then err's", got)
	}
	f.live <- LogLine{Text: "new out"}
	if got := receive(t, ch, 1); got[0] != (LogLine{Text: "new out"}) {
		t.Fatalf("got %+v", got)
	}
	f.live <- LogLine{Err: true, Text: "new err"}
	if got := receive(t, ch, 1); got[0] != (LogLine{Err: true, Text: "new err"}) {
		t.Fatalf("got %+v", got)
	}
	if n := f.asked[0]; n != 2 {
		t.Fatalf("the follower was asked for %d past lines, want 2", n)
	}
}

func TestTUILogFollowInterleavesTimestampedBacklog(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	f := newFakeLogs(LogLine{Text: "out one", Time: at(1)}, LogLine{Text: "out three", Time: at(3)},
		LogLine{Err: true, Text: "err two", Time: at(2)})
	got := receive(t, followForTest(t, f, 10), 3)
	for i, want := range []string{"out one", "err two", "out three"} {
		if got[i].Text != want {
			t.Fatalf("line %d = %+v, want %q (all: %+v)", i, got[i], want, got)
		}
	}

	// one line without a time: the files' order stays
	past := []LogLine{{Text: "out one", Time: at(1)}, {Text: "out three"}, {Err: true, Text: "err two", Time: at(2)}}
	if got := lastInOrder(past, 10); got[1].Text != "out three" || got[2].Text != "err two" {
		t.Fatalf("reordered lines without times: %+v", got)
	}
}

// The model's follow: it follows the selected worker where the status
// says its files are (with their date format), and lines come back as
// LogLinesMsg through the re-armed Cmd; Close stops the goroutines.
func TestTUILogFollowThroughTheModel(t *testing.T) {
	f := newFakeLogs(LogLine{Text: "hello from worker 0"})
	st := fourWorkers()
	st.LogsDir, st.LogDateFormat = "/var/log/frutos", "2006/01/02 15:04:05"
	m := New(Options{Daemon: &fakeDaemon{}, Logs: f.follow, Now: func() time.Time { return t0 }})
	defer m.Close()
	next, cmd := m.Update(StatusMsg{Status: st, At: t0})
	m = next.(Model)
	// The StatusMsg's Cmds are the next poll (a tick) and the follow; run
	// the follow's start and its first wait, not the tick.
	if cmd == nil || m.logs.follow == nil {
		t.Fatal("no follow started")
	}
	m.logs.follow.start()
	msg := m.logs.follow.next()
	m = send(m, msg)
	if got := m.logs.lines; len(got) != 1 || got[0].Text != "hello from worker 0" {
		t.Fatalf("lines %+v", got)
	}
	want := LogTarget{Dir: "/var/log/frutos", App: st.App, DateFormat: "2006/01/02 15:04:05", ID: 0}
	if got := f.followed(); len(got) != 1 || got[0] != want {
		t.Fatalf("followed %+v, want %+v", got, want)
	}
}

// Without a follower the pane names the worker and shows no lines.
func TestTUILogPaneWithoutAFollower(t *testing.T) {
	st := fourWorkers()
	st.LogsDir = "/var/log/frutos"
	m := send(New(Options{Daemon: &fakeDaemon{}, Now: func() time.Time { return t0 }}), StatusMsg{Status: st, At: t0})
	defer m.Close()
	if m.logs.follow != nil || m.logs.target.ID != 0 || m.logs.target.Dir == "" {
		t.Fatalf("pane %+v", m.logs)
	}
}
