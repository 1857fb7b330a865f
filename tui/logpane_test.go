package tui

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/frutos/frutos/logs"
)

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

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

func TestTUILogFollowTailsThenFollowsBothFiles(t *testing.T) {
	dir := t.TempDir()
	target := logTarget{dir: dir, app: "frutos", id: 2}
	out := logs.Path(dir, "frutos", 2, logs.Out)
	errPath := logs.Path(dir, "frutos", 2, logs.Err)
	appendFile(t, out, "old 1\nold 2\nold 3\n")
	appendFile(t, logs.Path(dir, "frutos", 1, logs.Out), "another worker\n")
	// err is not written yet: it is followed from when it appears.

	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan LogLine, 16)
	done := make(chan struct{})
	go func() { followWorker(ctx, target, 2, ch); close(done) }()
	defer func() {
		cancel()
		<-done
	}()

	got := receive(t, ch, 2)
	if got[0].Text != "old 2" || got[1].Text != "old 3" {
		t.Fatalf("backlog %+v, want the last 2 lines", got)
	}
	appendFile(t, out, "new out\n")
	got = receive(t, ch, 1)
	if got[0] != (LogLine{Stream: logs.Out, Text: "new out"}) {
		t.Fatalf("got %+v", got)
	}
	appendFile(t, errPath, "new err\n")
	got = receive(t, ch, 1)
	if got[0] != (LogLine{Stream: logs.Err, Text: "new err"}) {
		t.Fatalf("got %+v", got)
	}
}

func TestTUILogFollowInterleavesTimestampedBacklog(t *testing.T) {
	dir := t.TempDir()
	ts := func(s int) string {
		return t0.Add(time.Duration(s) * time.Second).In(time.Local).Format(logs.DefaultDateFormat)
	}
	appendFile(t, logs.Path(dir, "a", 0, logs.Out), ts(1)+" out one\n"+ts(3)+" out three\n")
	appendFile(t, logs.Path(dir, "a", 0, logs.Err), ts(2)+" err two\n")
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan LogLine, 16)
	done := make(chan struct{})
	go func() { followWorker(ctx, logTarget{dir: dir, app: "a", id: 0}, 10, ch); close(done) }()
	defer func() {
		cancel()
		<-done
	}()
	got := receive(t, ch, 3)
	for i, want := range []string{"out one", "err two", "out three"} {
		if got[i].Text != want {
			t.Fatalf("line %d = %+v, want %q (all: %+v)", i, got[i], want, got)
		}
	}
}

// The model's follow: lines come back as LogLinesMsg through the re-armed
// Cmd, and Close stops the goroutines.
func TestTUILogFollowThroughTheModel(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, logs.Path(dir, "frutos", 0, logs.Out), "hello from worker 0\n")
	st := fourWorkers()
	st.LogsDir = dir
	m := New(Options{Daemon: &fakeDaemon{}, Now: func() time.Time { return t0 }})
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
}
