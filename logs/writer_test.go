package logs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestWriterWritesWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "app-out-0.log") // the dir is created
	w := mustOpen(t, path, Options{})

	write(t, w, "one\ntwo\nthr")
	if got := readLines(t, path); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("after a partial line: %q", got)
	}
	write(t, w, "ee")
	write(t, w, "\n\nfour")
	if got := readLines(t, path); !slices.Equal(got, []string{"one", "two", "three", ""}) {
		t.Fatalf("after the partial line ended: %q", got)
	}
	w.EndLine() // the pipe closed: "four" is a line of its own
	w.EndLine() // nothing pending: no empty line
	write(t, w, "five\nsix")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, path); !slices.Equal(got, []string{"one", "two", "three", "", "four", "five", "six"}) {
		t.Fatalf("after Close: %q", got)
	}
	if s := w.Stats(); s.Lines != 7 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWriterAppendsToAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, path, Options{})
	write(t, w, "new\n")
	if got := readLines(t, path); !slices.Equal(got, []string{"old", "new"}) {
		t.Fatalf("got %q", got)
	}
}

func TestWriterTimestamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	clock := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	w := mustOpen(t, path, Options{Timestamps: true, Now: now})

	write(t, w, "frutos worker ready\nhalf")           // 10:00:01 for both
	write(t, w, " a line\n")                           // "half a line" keeps 10:00:01
	write(t, w, "\n")                                  // an empty line, 10:00:03
	write(t, w, "spaces  and\ttabs 2026-01-01 kept\n") // 10:00:04
	want := []string{
		"2026-11-27T10:00:01.000Z frutos worker ready",
		"2026-11-27T10:00:01.000Z half a line",
		"2026-11-27T10:00:03.000Z ",
		"2026-11-27T10:00:04.000Z spaces  and\ttabs 2026-01-01 kept",
	}
	if got := readLines(t, path); !slices.Equal(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}

	// Read back, the prefix becomes the line's time.
	lines, err := Tail(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts := []string{"frutos worker ready", "half a line", "", "spaces  and\ttabs 2026-01-01 kept"}
	for i, l := range lines {
		if l.Text != wantTexts[i] {
			t.Errorf("line %d: text %q, want %q", i, l.Text, wantTexts[i])
		}
		if l.Time.IsZero() || l.Time.Second() == 0 {
			t.Errorf("line %d: time %v", i, l.Time)
		}
	}
	if !lines[1].Time.Equal(time.Date(2026, 11, 27, 10, 0, 1, 0, time.UTC)) {
		t.Errorf("a line's time is when it started: %v", lines[1].Time)
	}
}

func TestWriterTimestampsInOtherLayouts(t *testing.T) {
	at := time.Date(2026, 3, 5, 7, 8, 9, 0, time.Local)
	for _, layout := range []string{
		"2006-01-02 15:04:05",     // a space inside
		"Jan _2 15:04:05",         // "Mar  5": a padding space too
		time.RFC3339,              // what PM2 users often set
		"02/01/2006 15:04:05.000", // day first
	} {
		t.Run(layout, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app-out-0.log")
			w := mustOpen(t, path, Options{Timestamps: true, DateFormat: layout, Now: func() time.Time { return at }})
			write(t, w, "hello world\n")
			lines, _, err := Reader{DateFormat: layout}.Tail(path, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != 1 || lines[0].Text != "hello world" {
				t.Fatalf("got %+v from %q", lines, readLines(t, path))
			}
			want := at
			if !strings.Contains(layout, "2006") {
				want = time.Date(0, 3, 5, 7, 8, 9, 0, time.Local)
			}
			if !lines[0].Time.Equal(want) {
				t.Fatalf("time %v, want %v", lines[0].Time, want)
			}
		})
	}
}

func TestWriterSplitsLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	w := mustOpen(t, path, Options{})

	exact := strings.Repeat("e", MaxLine)
	write(t, w, exact[:100])
	write(t, w, exact[100:]+"\n") // exactly MaxLine: one line
	long := strings.Repeat("x", 2*MaxLine+10)
	for i := 0; i < len(long); i += 1000 { // arrives in small pieces
		write(t, w, long[i:min(i+1000, len(long))])
	}
	write(t, w, "\nafter\n")
	got := readLines(t, path)
	want := []string{exact, long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:], "after"}
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("line %d has %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
}

func TestWriterRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{MaxSize: 100, MaxFiles: 3})
	var all []string
	for i := range 100 {
		line := fmt.Sprintf("line %04d", i) // 10 bytes with the newline
		all = append(all, line)
		write(t, w, line+"\n")
	}
	// 10 lines per file: 100 lines make 10 files, of which the current
	// one and 3 rotated are kept.
	names := dirNames(t, dir)
	if want := []string{"app-out-0.log", "app-out-0.log.1", "app-out-0.log.2", "app-out-0.log.3"}; !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
	var kept []string
	for i := 3; i >= 0; i-- {
		name := rotatedName(path, i)
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 100 {
			t.Errorf("%s has %d bytes, more than max_size", name, fi.Size())
		}
		kept = append(kept, readLines(t, name)...)
	}
	if !slices.Equal(kept, all[60:]) {
		t.Fatalf("kept %q, want the last 40 lines in order", kept)
	}
	if s := w.Stats(); s.Rotations != 9 {
		t.Fatalf("%d rotations, want 9", s.Rotations)
	}
}

func TestWriterRotationKeepingNoFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{MaxSize: 20, MaxFiles: 0})
	for i := range 5 {
		write(t, w, fmt.Sprintf("line %04d\n", i))
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"app-out-0.log"}) {
		t.Fatalf("files %q", names)
	}
	if got := readLines(t, path); !slices.Equal(got, []string{"line 0004"}) {
		t.Fatalf("got %q", got)
	}
}

func TestWriterOpenDropsFilesBeyondMaxFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	for _, name := range []string{"app-out-0.log", "app-out-0.log.1", "app-out-0.log.2", "app-out-0.log.7", "app-out-0.log.x", "app-out-1.log.3"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustOpen(t, path, Options{MaxSize: 10, MaxFiles: 1}) // max_files lowered since
	want := []string{"app-out-0.log", "app-out-0.log.1", "app-out-0.log.x", "app-out-1.log.3"}
	if names := dirNames(t, dir); !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
}

func TestWriterTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{MaxSize: 20, MaxFiles: 5})
	for i := range 10 {
		write(t, w, fmt.Sprintf("line %04d\n", i))
	}
	write(t, w, "partial ")
	if len(dirNames(t, dir)) != 5 {
		t.Fatalf("expected rotated files, have %q", dirNames(t, dir))
	}
	if err := w.Truncate(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"app-out-0.log"}) {
		t.Fatalf("after Truncate: files %q", names)
	}
	if got := readLines(t, path); got != nil {
		t.Fatalf("after Truncate: %q", got)
	}
	write(t, w, "line\nnext\n")
	if got := readLines(t, path); !slices.Equal(got, []string{"partial line", "next"}) {
		t.Fatalf("writing after Truncate: %q", got)
	}
}

func TestWriterTruncateWhileWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{MaxSize: 2000, MaxFiles: 2})
	var wg sync.WaitGroup
	var written atomic.Int64
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				write(t, w, fmt.Sprintf("g%d line %05d\n", g, i))
				written.Add(1)
			}
		})
	}
	truncates := 0
	for written.Load() < 8000 {
		if err := w.Truncate(); err != nil {
			t.Fatal(err)
		}
		truncates++
	}
	wg.Wait()
	write(t, w, "last\n")
	// Whatever survived is whole lines, in order per writer, and the writer
	// is still writing.
	var lines []string
	for i := 2; i >= 0; i-- {
		if _, err := os.Stat(rotatedName(path, i)); err == nil {
			lines = append(lines, readLines(t, rotatedName(path, i))...)
		}
	}
	if len(lines) == 0 || lines[len(lines)-1] != "last" {
		t.Fatalf("the writer stopped writing after %d truncates: %q", truncates, lastTexts(lines, 3))
	}
	checkWholeOrderedLines(t, lines[:len(lines)-1], false)
	t.Logf("%d truncates during 8000 writes; %d lines survived", truncates, len(lines))
}

func TestWriterConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	const writers, each = 8, 2000
	w := mustOpen(t, path, Options{MaxSize: 4096, MaxFiles: 1000, Timestamps: true})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				write(t, w, fmt.Sprintf("g%d line %05d\n", g, i))
			}
		})
	}
	wg.Wait()
	idx, err := rotatedIndexes(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, i := range append(idx, 0) { // oldest first
		for _, raw := range readLines(t, rotatedName(path, i)) {
			l := Reader{}.Parse([]byte(raw))
			if l.Time.IsZero() {
				t.Fatalf("no timestamp on %q", raw)
			}
			lines = append(lines, l.Text)
		}
	}
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
	checkWholeOrderedLines(t, lines, true)
	if s := w.Stats(); s.Lines != writers*each || s.Rotations == 0 {
		t.Fatalf("stats %+v", s)
	}
}

// checkWholeOrderedLines checks lines like "g3 line 00042": each whole, each
// writer's in order with no repeats, and (when complete) none missing.
func checkWholeOrderedLines(t *testing.T, lines []string, complete bool) {
	t.Helper()
	next := map[int]int{}
	for _, l := range lines {
		var g, i int
		if n, err := fmt.Sscanf(l, "g%d line %05d", &g, &i); n != 2 || err != nil || len(l) != len("g0 line 00000") {
			t.Fatalf("mangled line %q", l)
		}
		if i < next[g] || (complete && i != next[g]) {
			t.Fatalf("writer %d: line %d after line %d", g, i, next[g]-1)
		}
		next[g] = i + 1
	}
}

func TestWriterAfterAnotherProcessEmptiedTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{MaxSize: 100, MaxFiles: 2})
	for i := range 9 {
		write(t, w, fmt.Sprintf("line %04d\n", i)) // 90 bytes
	}
	emptied, err := Flush(dir, "app")
	if err != nil || !slices.Equal(emptied, []string{path}) {
		t.Fatalf("Flush = %q, %v", emptied, err)
	}
	// The writer appends at the new end, and does not rotate a file that
	// is no longer full.
	for i := range 5 {
		write(t, w, fmt.Sprintf("more %04d\n", i))
	}
	if got := readLines(t, path); len(got) != 5 || got[0] != "more 0000" {
		t.Fatalf("got %q", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"app-out-0.log"}) {
		t.Fatalf("files %q", names)
	}
}

// fullDisk is a log file on a disk that fills up and frees space on
// command. A write on the full disk writes half the line, then fails.
type fullDisk struct {
	*os.File
	full *atomic.Bool
}

func (d fullDisk) Write(p []byte) (int, error) {
	if d.full.Load() {
		n, _ := d.File.Write(p[:len(p)/2])
		return n, &fs.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
	}
	return d.File.Write(p)
}

func TestWriterDiskFullDropsCountsReportsOnceAndRecovers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	var full atomic.Bool
	var events []Event
	var w *Writer
	o := Options{
		MaxSize: 1 << 20,
		Report: func(e Event) {
			events = append(events, e)
			// Reporting through the same writer (the daemon logging about
			// its own log) must not deadlock.
			fmt.Fprintf(w, "report: %v\n", e.Err)
		},
	}
	w, err := open(path, o, func(name string) (logFile, error) {
		f, err := openAppend(name)
		if err != nil {
			return nil, err
		}
		return fullDisk{File: f.(*os.File), full: &full}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	write(t, w, "before 1\nbefore 2\n")
	full.Store(true)
	for i := range 100 {
		write(t, w, fmt.Sprintf("lost %d\n", i)) // never an error: the pipe keeps flowing
	}
	if s := w.Stats(); s.Dropped != 101 || !s.Failing { // 100 lines and the report
		t.Fatalf("while full: stats %+v", s)
	}
	if len(events) != 1 || !errors.Is(events[0].Err, syscall.ENOSPC) {
		t.Fatalf("while full: events %v, want one ENOSPC", events)
	}
	if got := readLines(t, path); !slices.Equal(got, []string{"before 1", "before 2"}) {
		t.Fatalf("half-written lines were left in the file: %q", got)
	}

	full.Store(false)
	write(t, w, "after 1\nafter 2\n")
	if len(events) != 2 || events[1].Err != nil || events[1].Dropped != 101 {
		t.Fatalf("after space came back: events %v", events)
	}
	want := []string{"before 1", "before 2", "after 1", "after 2", "report: <nil>"}
	if got := readLines(t, path); !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestWriterAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	w := mustOpen(t, path, Options{})
	write(t, w, "a\nb")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, w, "c\nd\n") // dropped, not failed
	if s := w.Stats(); s.Dropped != 2 {
		t.Fatalf("stats %+v", s)
	}
	if err := w.Truncate(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Truncate after Close: %v", err)
	}
	if got := readLines(t, path); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("got %q", got)
	}
}

func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app-out-0.log")
	w := mustOpen(t, path, Options{})
	write(t, w, "one\n")
	if err := os.Rename(path, path+".moved"); err != nil { // an outside logrotate
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	write(t, w, "two\n")
	if got := readLines(t, path); !slices.Equal(got, []string{"two"}) {
		t.Fatalf("got %q", got)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.SortFunc(names, func(a, b string) int { return strings.Compare(naturalKey(a), naturalKey(b)) })
	return names
}

// naturalKey sorts "x.log.10" after "x.log.9".
func naturalKey(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		if n, err := strconv.Atoi(name[i+1:]); err == nil {
			return fmt.Sprintf("%s.%08d", name[:i], n)
		}
	}
	return name
}
