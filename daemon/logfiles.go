package daemon

import (
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/logs"
)

// workerLogs writes the workers' out and err files with the app's log
// settings, and keeps the writers so flush can empty them in place.
type workerLogs struct {
	dir, app string
	opts     logs.Options

	mu      sync.Mutex
	writers map[int][2]*logs.Writer
}

// WorkerLogs is the default LogFiles: PM2-style files in cfg's logs dir.
func WorkerLogs(cfg *configs.Config) (LogFiles, error) {
	return &workerLogs{dir: cfg.LogsDir(), app: cfg.App, opts: logs.FromConfig(cfg.Logs), writers: map[int][2]*logs.Writer{}}, nil
}

func (l *workerLogs) Open(id int) (io.WriteCloser, io.WriteCloser, error) {
	out, errw, err := logs.OpenWorker(l.dir, l.app, id, l.opts)
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	l.writers[id] = [2]*logs.Writer{out, errw}
	l.mu.Unlock()
	return closer{out, func() { l.forget(id, out) }}, errw, nil
}

func (l *workerLogs) forget(id int, out *logs.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w, ok := l.writers[id]; ok && w[0] == out {
		delete(l.writers, id)
	}
}

// Truncate empties the files of worker id (all when nil): through the open
// writers, and directly for files of workers no longer running.
func (l *workerLogs) Truncate(id *int) ([]string, error) {
	l.mu.Lock()
	var ws []*logs.Writer
	var open []int
	for wid, pair := range l.writers {
		if id == nil || *id == wid {
			ws = append(ws, pair[0], pair[1])
			open = append(open, wid)
		}
	}
	l.mu.Unlock()
	var emptied []string
	var errs []error
	for _, w := range ws {
		if err := w.Truncate(); err != nil {
			errs = append(errs, err)
			continue
		}
		emptied = append(emptied, w.Path())
	}
	files, err := logs.List(l.dir, l.app)
	if err != nil {
		return emptied, errors.Join(append(errs, err)...)
	}
	for _, f := range files {
		if slices.Contains(open, f.ID) || (id != nil && *id != f.ID) {
			continue
		}
		if err := logs.TruncateFile(f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		emptied = append(emptied, f.Path)
	}
	return emptied, errors.Join(errs...)
}

// closer closes a writer and runs a hook.
type closer struct {
	*logs.Writer
	after func()
}

func (c closer) Close() error {
	err := c.Writer.Close()
	c.after()
	return err
}
