package logs

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"time"
)

// The end of a set of files, then what is added to them: what `frutos
// logs` prints and monit's log pane shows. TailFiles reads the last lines
// of each file; FollowFiles follows each from there, with one Watcher for
// all of them.

// WorkerFiles are the files of worker id of app in dir, one per stream
// (out and err when none is given), whether they exist yet or not.
func WorkerFiles(dir, app string, id int, streams ...Stream) []File {
	if len(streams) == 0 {
		streams = []Stream{Out, Err}
	}
	files := make([]File, len(streams))
	for i, s := range streams {
		files[i] = File{App: app, ID: id, Stream: s, Path: Path(dir, app, id, s)}
	}
	return files
}

// Tailed is one file as TailFiles read it: its last lines, and where to
// follow it from.
type Tailed struct {
	File  File
	Lines []Line
	From  Offset
	// Absent says the file is not written yet: it has no lines, and is
	// followed from its start when it appears.
	Absent bool
	// Err is why the file could not be read; FollowFiles leaves it out.
	Err error
}

// TailFiles reads the last n lines of each file, in the order given.
func (r Reader) TailFiles(files []File, n int) []Tailed {
	tails := make([]Tailed, len(files))
	for i, f := range files {
		lines, from, err := r.Tail(f.Path, n)
		t := Tailed{File: f, Lines: lines, From: from, Err: err}
		if errors.Is(err, fs.ErrNotExist) {
			t = Tailed{File: f, Absent: true} // the zero Offset: from its start
		}
		tails[i] = t
	}
	return tails
}

// Following says what FollowFiles does with what it reads.
type Following struct {
	// Line gets each new line of each file, from one goroutine per file.
	Line func(File, Line)
	// Failed, when set, gets a file that cannot be followed any more, and
	// the others go on. When nil, the first such failure ends FollowFiles,
	// which returns it.
	Failed func(File, error)
	// More, when set, is asked every Rescan (1s when 0) for the files to
	// follow: those not followed yet (a new worker's) are followed from
	// their start. An error skips that look.
	More   func() ([]File, error)
	Rescan time.Duration
}

// FollowFiles follows each tail without an Err from where it ended, and the
// files More finds, until ctx ends (then it returns nil) or, with no
// Failed, a file fails.
func (r Reader) FollowFiles(ctx context.Context, tails []Tailed, f Following) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// One inotify instance for every file, so new lines show at once (and
	// a burst that rotates a file many times is read while it happens);
	// without it the followers poll.
	if r.Watcher == nil && !r.pollOnly {
		if w, err := NewWatcher(); err == nil {
			defer w.Close()
			r.Watcher = w
		}
	}
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	following := map[string]bool{}
	start := func(file File, from Offset) {
		following[file.Path] = true
		wg.Go(func() {
			err := r.Follow(ctx, file.Path, from, func(l Line) { f.Line(file, l) })
			if err == nil || ctx.Err() != nil {
				return
			}
			if f.Failed != nil {
				f.Failed(file, err)
				return
			}
			once.Do(func() { failed = err })
			cancel()
		})
	}
	for _, t := range tails {
		if t.Err == nil {
			start(t.File, t.From)
		}
	}
	if f.More != nil {
		rescan := f.Rescan
		if rescan <= 0 {
			rescan = time.Second
		}
		tick := time.NewTicker(rescan)
		defer tick.Stop()
	look:
		for {
			select {
			case <-ctx.Done():
				break look
			case <-tick.C:
			}
			files, err := f.More()
			if err != nil {
				continue // a passing problem; the files already followed go on
			}
			for _, file := range files {
				if !following[file.Path] {
					start(file, Offset{})
				}
			}
		}
	}
	<-ctx.Done()
	wg.Wait()
	return failed
}
