package logs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestTailFilesReadsEachFileInOrder(t *testing.T) {
	dir := t.TempDir()
	files := WorkerFiles(dir, "app", 3)
	if len(files) != 2 || files[0].Stream != Out || files[1].Stream != Err || files[1].Path != Path(dir, "app", 3, Err) {
		t.Fatalf("WorkerFiles = %+v", files)
	}
	write(t, mustOpen(t, files[0].Path, Options{}), "a\nb\nc\n")
	broken := File{App: "app", ID: 4, Stream: Out, Path: filepath.Join(dir, "a-directory")}
	if err := os.Mkdir(broken.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	tails := fastReader.TailFiles(append(files, broken), 2)
	if got := tails[0]; got.Err != nil || got.Absent || len(got.Lines) != 2 || got.Lines[1].Text != "c" {
		t.Errorf("out: %+v", got)
	}
	if got := tails[1]; got.Err != nil || !got.Absent || len(got.Lines) != 0 {
		t.Errorf("err, not written yet: %+v", got)
	}
	if got := tails[2]; got.Err == nil || got.Absent {
		t.Errorf("a file that cannot be read: %+v", got)
	}
}

// collectFiles gathers the lines FollowFiles hands out, by file.
func collectFiles(c *collector) func(File, Line) {
	return func(f File, l Line) { c.add(Line{Text: string(f.Stream) + " " + l.Text}) }
}

func TestFollowFilesGoesOnFromTheTailsAndPicksUpNewFiles(t *testing.T) {
	dir := t.TempDir()
	files := WorkerFiles(dir, "app", 0)
	out := mustOpen(t, files[0].Path, Options{})
	write(t, out, "past\n")
	tails := fastReader.TailFiles(files, 10)
	c := newCollector()
	later := WorkerFiles(dir, "app", 1, Out)[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fastReader.FollowFiles(ctx, tails, Following{
			Line:   collectFiles(c),
			More:   func() ([]File, error) { return List(dir, "app") },
			Rescan: 5 * time.Millisecond,
		})
	}()
	write(t, out, "new out\n")
	c.waitLen(t, 1, 5*time.Second)
	write(t, mustOpen(t, files[1].Path, Options{}), "new err\n") // appears after the tail
	c.waitLen(t, 2, 5*time.Second)
	write(t, mustOpen(t, later.Path, Options{}), "a new worker\n")
	c.waitLen(t, 3, 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowFiles: %v", err)
	}
	if got := c.texts(); !slices.Equal(got, []string{"out new out", "err new err", "out a new worker"}) {
		t.Fatalf("lines %q", got)
	}
}

// A file that cannot be followed: with Failed the others go on; without,
// it ends FollowFiles.
func TestFollowFilesFailures(t *testing.T) {
	dir := t.TempDir()
	good := WorkerFiles(dir, "app", 0, Out)[0]
	bad := WorkerFiles(dir, "app", 1, Out)[0]
	w := mustOpen(t, good.Path, Options{})
	if err := os.Mkdir(bad.Path, 0o755); err != nil { // it cannot be read
		t.Fatal(err)
	}
	tails := []Tailed{{File: good}, {File: bad}}

	err := fastReader.FollowFiles(context.Background(), tails, Following{Line: func(File, Line) {}})
	if err == nil {
		t.Fatal("a failed file did not end FollowFiles")
	}

	c := newCollector()
	failed := make(chan File, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- fastReader.FollowFiles(ctx, tails, Following{Line: collectFiles(c), Failed: func(f File, _ error) { failed <- f }})
	}()
	if f := <-failed; f.Path != bad.Path {
		t.Fatalf("failed %+v", f)
	}
	write(t, w, "still followed\n")
	c.waitLen(t, 1, 5*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowFiles: %v", err)
	}
}
