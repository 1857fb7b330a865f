package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/syncbuf"
	"github.com/frutos/frutos/logs"
)

// logsHome is a state home with log files, for the logs and flush commands.
type logsHome struct {
	home, dir string
}

func newLogsHome(t *testing.T) logsHome {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return logsHome{home: home, dir: dir}
}

func (h logsHome) write(t *testing.T, id int, s logs.Stream, content string) string {
	t.Helper()
	path := logs.Path(h.dir, "frutos", id, s)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return path
}

func (h logsHome) getenv(k string) string {
	if k == "FRUTOS_HOME" {
		return h.home
	}
	return ""
}

// runFrutos runs a command line the way main does.
func (h logsHome) run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, h.getenv)
	return code, out.String(), errOut.String()
}

func TestLogsNoStreamShowsTheLastLinesOfEachFile(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 0, logs.Out, "a\nb\nc\n")
	h.write(t, 0, logs.Err, "oops\n")
	h.write(t, 1, logs.Out, "2026-11-27T10:00:00.000Z hello\n")
	h.write(t, 12, logs.Out, "twelve\n")

	code, out, errOut := h.run("logs", "--nostream", "--lines", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "" +
		"0|frutos   | b\n" +
		"0|frutos   | c\n" +
		"0|frutos   | oops\n" +
		"1|frutos   | hello\n" +
		"12|frutos  | twelve\n"
	if out != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if !strings.Contains(errOut, "frutos-out-0.log last 2 lines:") {
		t.Fatalf("stderr: %s", errOut)
	}
}

func TestLogsOfOneWorkerAndOneStream(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 0, logs.Out, "zero out\n")
	h.write(t, 1, logs.Out, "one out\n")
	h.write(t, 1, logs.Err, "one err\n")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"1"}, "1|frutos  | one out\n1|frutos  | one err\n"},
		{[]string{"1", "--err"}, "1|frutos  | one err\n"},
		{[]string{"--out"}, "0|frutos  | zero out\n1|frutos  | one out\n"},
		{[]string{"all", "--err"}, "1|frutos  | one err\n"},
		{[]string{"0", "--err"}, ""}, // worker 0 has no err file yet
	} {
		code, out, errOut := h.run(append([]string{"logs", "--nostream"}, tt.args...)...)
		if code != 0 || out != tt.want {
			t.Errorf("logs %q: exit %d, stdout %q, want %q; stderr %s", tt.args, code, out, tt.want, errOut)
		}
	}
}

func TestLogsTimestampAndJSON(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 0, logs.Out, "2026-11-27T10:00:00.000Z stored time\nno time\n")
	h.write(t, 0, logs.Err, `2026-11-27T10:00:01.500Z {"err": "<bad>"}`+"\n")

	code, out, _ := h.run("logs", "--nostream", "--timestamp")
	want := "" +
		"0|frutos  | 2026-11-27T10:00:00.000Z stored time\n" +
		"0|frutos  | no time\n" +
		"0|frutos  | 2026-11-27T10:00:01.500Z {\"err\": \"<bad>\"}\n"
	if code != 0 || out != want {
		t.Fatalf("--timestamp: exit %d\n%s\nwant\n%s", code, out, want)
	}

	code, out, errOut := h.run("logs", "--nostream", "--json")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	if errOut != "" {
		t.Fatalf("--json wrote to stderr: %s", errOut)
	}
	want = `{"worker":0,"stream":"out","time":"2026-11-27T10:00:00Z","line":"stored time"}
{"worker":0,"stream":"out","time":null,"line":"no time"}
{"worker":0,"stream":"err","time":"2026-11-27T10:00:01.5Z","line":"{\"err\": \"<bad>\"}"}
`
	if out != want {
		t.Fatalf("--json:\n%s\nwant\n%s", out, want)
	}
}

func TestLogsUnknownWorkerListsThePresentOnes(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 0, logs.Out, "x\n")
	h.write(t, 3, logs.Err, "y\n")
	code, out, errOut := h.run("logs", "7", "--nostream")
	if code != exitUsage || out != "" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	if !strings.Contains(errOut, "no logs for worker 7") || !strings.Contains(errOut, "workers with logs: 0, 3") {
		t.Fatalf("stderr: %s", errOut)
	}
}

func TestLogsBadArguments(t *testing.T) {
	h := newLogsHome(t)
	for _, args := range [][]string{
		{"logs", "x"},
		{"logs", "-1"},
		{"logs", "--err", "--out"},
		{"logs", "--lines", "-3"},
		{"logs", "1", "2"},
	} {
		if code, _, errOut := h.run(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d; stderr %s", args, code, exitUsage, errOut)
		}
	}
}

func TestLogsWithNoFiles(t *testing.T) {
	h := newLogsHome(t)
	code, out, errOut := h.run("logs", "--nostream")
	if code != 0 || out != "" || !strings.Contains(errOut, "no logs in "+h.dir) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestLogsHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"logs", "flush"} {
		code, out, _ := newLogsHome(t).run(cmd, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "frutos "+cmd) {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out)
		}
	}
}

// waitFor waits until cond holds, or fails the test at the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventlog.WaitFor(t, 10*time.Second, what, cond)
}

// followLogsCmd runs frutos logs with args, following until the test stops
// it; it returns the output so far and a stop function.
func followLogsCmd(t *testing.T, h logsHome, now func() time.Time, args ...string) (out *syncbuf.Buffer, stop func() error) {
	t.Helper()
	out, _, stop = followLogs(t, h, now, nil, args...)
	return out, stop
}

// followLogs is followLogsCmd with its stderr, and with locate, when not
// nil, in place of asking the daemon where the files are.
func followLogs(t *testing.T, h logsHome, now func() time.Time, locate func() (logLocation, error), args ...string) (out, errOut *syncbuf.Buffer, stop func() error) {
	t.Helper()
	out, errOut = &syncbuf.Buffer{}, &syncbuf.Buffer{}
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: out, ErrOut: errOut}, h.getenv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := newCmdLogs(f, func(o *logsOptions) error {
		o.Ctx, o.Poll, o.Rescan, o.Now = ctx, 2*time.Millisecond, 5*time.Millisecond, now
		if locate != nil {
			o.Locate = locate
		}
		go func() { done <- runLogs(o) }()
		return nil
	})
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { stop() })
	return out, errOut, stop
}

// Friction (issue 17): with no daemon, `frutos logs` printed "no logs yet"
// and blocked without a word. It says that no daemon runs and which files
// it follows, or that there are none, and follows them all the same.
func TestLogsWithNoDaemonSaysWhatItFollows(t *testing.T) {
	h := newLogsHome(t)
	_, errOut, stop := followLogs(t, h, time.Now, nil)
	waitFor(t, "the note", func() bool { return strings.Contains(errOut.String(), "Ctrl-C") })
	want := "no daemon runs for " + h.home + " and there are no log files in " + h.dir
	if !strings.HasPrefix(errOut.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", errOut.String(), want)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	outPath := h.write(t, 0, logs.Out, "before\n")
	errPath := h.write(t, 0, logs.Err, "oops\n")
	out, errOut, stop := followLogs(t, h, time.Now, nil)
	waitFor(t, "the note", func() bool { return strings.Contains(errOut.String(), "Ctrl-C") })
	for _, want := range []string{"no daemon runs for " + h.home + ": following the 2 log files of its last workers (Ctrl-C to stop):\n",
		"\n  " + outPath + "\n", "\n  " + errPath + "\n"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q, want %q", errOut.String(), want)
		}
	}
	h.write(t, 0, logs.Out, "after\n")
	waitFor(t, "a line written while following", func() bool { return strings.Contains(out.String(), "after") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Friction (issue 17): `frutos logs` kept showing the workers that scale
// removed (their files stay). With a daemon running the app, only its
// workers' past lines show; a removed worker's file is followed quietly,
// in case its id comes back with a later scale.
func TestLogsLeaveOutWorkersRemovedByScale(t *testing.T) {
	h := newLogsHome(t)
	h.write(t, 0, logs.Out, "zero\n")
	h.write(t, 1, logs.Out, "one, removed by scale\n")
	h.write(t, 1, logs.Err, "one's error, removed by scale\n")
	live := func() (logLocation, error) {
		return logLocation{Dir: h.dir, App: "frutos", Live: true, Workers: []int{0}}, nil
	}
	out, errOut, stop := followLogs(t, h, time.Now, live)
	waitFor(t, "worker 0's past line", func() bool { return strings.Contains(out.String(), "zero") })
	h.write(t, 1, logs.Out, "one is back\n")
	waitFor(t, "the new worker 1's line", func() bool { return strings.Contains(out.String(), "one is back") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); strings.Contains(s, "removed by scale") {
		t.Errorf("a removed worker's past lines are shown:\n%s", s)
	}
	if s := errOut.String(); strings.Contains(s, "frutos-out-1.log") || strings.Contains(s, "following") {
		t.Errorf("stderr names a removed worker's file, or the idle note:\n%s", s)
	}
}

func TestLogsFollowsAcrossRotationAndNewWorkers(t *testing.T) {
	h := newLogsHome(t)
	outPath := h.write(t, 0, logs.Out, "old 1\nold 2\n")
	// Every rotated file kept: the writer below runs flat out, and could
	// otherwise delete files before the follower reads them.
	w, err := logs.Open(outPath, logs.Options{MaxSize: 200, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	out, stop := followLogsCmd(t, h, time.Now, "--lines", "1")
	waitFor(t, "the last past line", func() bool { return strings.Contains(out.String(), "old 2") })
	const n = 300 // about 14 rotations
	for i := range n {
		fmt.Fprintf(w, "live %03d\n", i)
	}
	// A worker started after frutos logs: its lines show up too.
	h.write(t, 1, logs.Err, "new worker says hi\n")
	waitFor(t, "every line", func() bool {
		s := out.String()
		return strings.Contains(s, fmt.Sprintf("live %03d", n-1)) && strings.Contains(s, "hi")
	})
	if err := stop(); err != nil {
		t.Fatalf("Ctrl-C should end frutos logs cleanly: %v", err)
	}

	var want strings.Builder
	want.WriteString("0|frutos  | old 2\n")
	for i := range n {
		fmt.Fprintf(&want, "0|frutos  | live %03d\n", i)
	}
	got := strings.Replace(out.String(), "1|frutos  | new worker says hi\n", "", 1)
	if got != want.String() {
		t.Fatalf("lines lost, repeated or mangled:\n%s", got)
	}
}

func TestLogsFollowTimestampsLiveLinesWithTheirReadTime(t *testing.T) {
	h := newLogsHome(t)
	path := h.write(t, 0, logs.Out, "past\n")
	readAt := time.Date(2026, 11, 27, 10, 0, 5, 0, time.UTC)
	out, stop := followLogsCmd(t, h, func() time.Time { return readAt }, "0", "--timestamp", "--json", "--out")
	waitFor(t, "the past line", func() bool { return strings.Contains(out.String(), "past") })
	h.write(t, 0, logs.Out, "live\n2026-11-27T09:00:00.000Z stored\n")
	waitFor(t, "the live lines", func() bool { return strings.Contains(out.String(), "stored") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []logLineJSON
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var j logLineJSON
		if err := json.Unmarshal([]byte(l), &j); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		got = append(got, j)
	}
	if len(got) != 3 {
		t.Fatalf("got %+v", got)
	}
	if got[0].Time != nil {
		t.Errorf("a past line without a timestamp has no time: %v", got[0].Time)
	}
	if got[1].Time == nil || !got[1].Time.Equal(readAt) {
		t.Errorf("a live line without a timestamp gets its read time: %v", got[1].Time)
	}
	if got[2].Time == nil || got[2].Time.Hour() != 9 {
		t.Errorf("a stored timestamp wins: %v", got[2].Time)
	}
	_ = path
}
