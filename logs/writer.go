package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/plural"
)

// MaxLine is the longest line the Writer keeps whole. A longer line is
// written as several lines of at most MaxLine bytes (each with its own
// timestamp), so a worker printing without newlines cannot make the daemon
// buffer without bound.
const MaxLine = 64 << 10

// DefaultDateFormat is the timestamp layout when Options.DateFormat or
// Reader.DateFormat is empty (configs' default logs.date_format).
const DefaultDateFormat = "2006-01-02T15:04:05.000Z07:00"

// Options are the settings of a Writer.
type Options struct {
	// MaxSize rotates the file before a line would take it past this many
	// bytes; 0 never rotates. A single line longer than MaxSize still goes
	// into one file.
	MaxSize int64
	// MaxFiles is how many rotated files are kept (<name>.1 ... <name>.N);
	// with 0 a full file is dropped when a new one starts.
	MaxFiles int
	// Timestamps prefixes every line with the time it started, in
	// DateFormat, and a space.
	Timestamps bool
	// DateFormat is a Go time layout; "" means DefaultDateFormat.
	DateFormat string
	// Report, when set, hears about trouble writing the file: once when
	// writing starts to fail (Event.Err set), not for each line dropped
	// after that, and once when it works again (Event.Err nil, with the
	// number of lines dropped meanwhile). It is called without the Writer's
	// lock held, so it may log through another Writer, or this one.
	Report func(Event)
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// FromConfig returns the Writer options for the logs section of the config.
func FromConfig(c configs.Logs) Options {
	return Options{
		MaxSize:    int64(c.MaxSize),
		MaxFiles:   c.MaxFiles,
		Timestamps: c.Timestamps,
		DateFormat: c.DateFormat,
	}
}

// Event is a change in a Writer's health, for Options.Report.
type Event struct {
	Path string
	// Err is why writing failed; nil when writing works again.
	Err error
	// Dropped is the number of lines lost while writing failed (set when
	// Err is nil).
	Dropped uint64
}

func (e Event) String() string {
	if e.Err != nil {
		return fmt.Sprintf("log %s: %v; dropping lines until it works again", e.Path, e.Err)
	}
	return fmt.Sprintf("log %s: writing again after dropping %s", e.Path, plural.Count(e.Dropped, "line", "lines"))
}

// Stats are a Writer's counters since Open.
type Stats struct {
	Lines        uint64 // lines written
	Bytes        uint64 // bytes written, timestamps included
	Dropped      uint64 // lines lost to write errors or written after Close
	DroppedBytes uint64
	Rotations    uint64
	// Failing says the last write failed.
	Failing bool
}

// Writer writes one log file, a line at a time.
//
// A partial line waits (in memory, up to MaxLine bytes) for its newline, so
// lines from a worker never mix with the daemon's own notes or get split by
// a rotation. Write never fails and never blocks on anything but the write to
// the file: an error writing the file (a full disk, say) drops the line,
// counts it in Stats and is reported once through Options.Report; the next
// line tries again. That way the copy from a worker's pipe never stops, and
// the worker never blocks on a full pipe or dies of a broken one.
//
// A Writer is safe for concurrent use; a Write of whole lines is never
// interleaved with another, but partial lines written from several
// goroutines join each other.
type Writer struct {
	path     string
	opt      Options
	openFile func(path string) (logFile, error) // os.OpenFile; tests inject failures

	mu            sync.Mutex
	f             logFile // nil when (re)opening failed; the next line retries
	size          int64   // bytes in f, as far as we know (see rotateIfFull)
	pending       []byte  // a partial line waiting for its newline
	pendingAt     time.Time
	line          []byte // scratch for one formatted line
	closed        bool
	broken        bool      // a failed write left part of a line in the file
	streak        uint64    // Stats.Dropped when the current failure began
	retryAt       time.Time // no rotation before then (one just failed)
	rotateFailing bool
	stats         Stats
	events        []Event // to report once the lock is released
}

// logFile is what the Writer needs of an *os.File.
type logFile interface {
	io.WriteCloser
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
}

func openAppend(path string) (logFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

// Open opens (creating it and its directory if needed) the log file at path
// for appending. Rotated files beyond o.MaxFiles, left by an earlier setting,
// are removed.
func Open(path string, o Options) (*Writer, error) {
	return open(path, o, openAppend)
}

func open(path string, o Options, openFile func(string) (logFile, error)) (*Writer, error) {
	if o.DateFormat == "" {
		o.DateFormat = DefaultDateFormat
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSize < 0 || o.MaxFiles < 0 {
		return nil, fmt.Errorf("open log %s: max size and max files must not be negative", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if err := removeRotated(path, o.MaxFiles); err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	w := &Writer{path: path, opt: o, openFile: openFile}
	if err := w.reopen(); err != nil {
		return nil, err
	}
	return w, nil
}

// OpenWorker opens the out and err Writers of worker id of app in dir.
func OpenWorker(dir, app string, id int, o Options) (out, errw *Writer, err error) {
	outPath, errPath := Paths(dir, app, id)
	if out, err = Open(outPath, o); err != nil {
		return nil, nil, err
	}
	if errw, err = Open(errPath, o); err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, errw, nil
}

// Path is the file the Writer writes.
func (w *Writer) Path() string { return w.path }

// Stats returns the Writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Write writes the complete lines in p and keeps a trailing partial line for
// the next Write. It always returns len(p), nil (see Writer).
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	w.mu.Lock()
	if w.closed {
		w.stats.Dropped += uint64(bytes.Count(p, []byte{'\n'}))
		w.stats.DroppedBytes += uint64(n)
		w.mu.Unlock()
		return n, nil
	}
	var now time.Time
	if w.opt.Timestamps {
		now = w.opt.Now()
	}
	for len(p) > 0 {
		room := MaxLine - len(w.pending)
		i := bytes.IndexByte(p, '\n')
		switch {
		case i >= 0 && i <= room:
			// A line ends here.
			at := now
			if len(w.pending) > 0 {
				at = w.pendingAt
			}
			w.writeLine(at, w.pending, p[:i])
			w.pending = w.pending[:0]
			p = p[i+1:]
		case i < 0 && len(p) <= room:
			// A partial line: keep it.
			if len(w.pending) == 0 {
				w.pendingAt = now
			}
			w.pending = append(w.pending, p...)
			p = nil
		default:
			// Too long for one line: write MaxLine bytes of it as a line.
			at := now
			if len(w.pending) > 0 {
				at = w.pendingAt
			}
			w.writeLine(at, w.pending, p[:room])
			w.pending = w.pending[:0]
			p = p[room:]
		}
	}
	if cap(w.pending) > 2*MaxLine {
		w.pending = nil
	}
	w.unlockAndReport()
	return n, nil
}

// EndLine writes a pending partial line, if any, as a line of its own. Call
// it when the pipe feeding the Writer closes (the worker exited), so the
// next worker's first line starts on a line of its own.
func (w *Writer) EndLine() {
	w.mu.Lock()
	w.endLine()
	w.unlockAndReport()
}

func (w *Writer) endLine() {
	if len(w.pending) > 0 && !w.closed {
		w.writeLine(w.pendingAt, w.pending, nil)
		w.pending = w.pending[:0]
	}
}

// Truncate empties the log: it removes the rotated files (oldest first),
// then replaces the file with a new, empty one and goes on writing there. A
// reader following the old file finishes it before moving to the new one
// (see Follow). A pending partial line is kept.
func (w *Writer) Truncate() error {
	w.mu.Lock()
	defer w.unlockAndReport()
	if w.closed {
		return fmt.Errorf("empty log %s: %w", w.path, os.ErrClosed)
	}
	if err := removeRotated(w.path, 0); err != nil {
		return fmt.Errorf("empty log %s: %w", w.path, err)
	}
	if err := os.Remove(w.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("empty log: %w", err)
	}
	old := w.f
	w.f = nil
	if old != nil {
		old.Close()
	}
	w.broken = false
	if err := w.reopen(); err != nil {
		return err // the next line tries again
	}
	return nil
}

// Reopen closes the file and opens path again, for when something outside
// moved or removed it (an external logrotate without copytruncate).
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.unlockAndReport()
	if w.closed {
		return fmt.Errorf("reopen log %s: %w", w.path, os.ErrClosed)
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	return w.reopen()
}

// Close writes a pending partial line and closes the file. Later Writes are
// dropped (and counted), not failed.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.unlockAndReport()
	if w.closed {
		return nil
	}
	w.endLine()
	w.closed = true
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	if err != nil {
		return fmt.Errorf("close log %s: %w", w.path, err)
	}
	return nil
}

// unlockAndReport releases the lock, then hands queued events to Report:
// Report may write to a Writer (even this one) without deadlocking.
func (w *Writer) unlockAndReport() {
	events := w.events
	w.events = nil
	w.mu.Unlock()
	if w.opt.Report != nil {
		for _, e := range events {
			w.opt.Report(e)
		}
	}
}

// writeLine formats one line (timestamp, a then b, newline) and writes it.
func (w *Writer) writeLine(at time.Time, a, b []byte) {
	buf := w.line[:0]
	if w.opt.Timestamps {
		buf = at.AppendFormat(buf, w.opt.DateFormat)
		buf = append(buf, ' ')
	}
	buf = append(buf, a...)
	buf = append(buf, b...)
	buf = append(buf, '\n')
	w.emit(buf)
	if cap(buf) <= 2*MaxLine {
		w.line = buf[:0]
	} else {
		w.line = nil
	}
}

// emit writes one formatted line, rotating first if the file is full.
func (w *Writer) emit(line []byte) {
	if w.f == nil {
		if err := w.reopen(); err != nil {
			w.drop(line, err)
			return
		}
	}
	w.rotateIfFull(int64(len(line)))
	if w.f == nil { // the rotation could not open the new file
		if err := w.reopen(); err != nil {
			w.drop(line, err)
			return
		}
	}
	if w.broken {
		// A failed write left part of a line behind: end it first.
		n, err := w.f.Write([]byte{'\n'})
		w.size += int64(n)
		if err != nil {
			w.drop(line, err)
			return
		}
		w.broken = false
	}
	n, err := w.f.Write(line)
	w.size += int64(n)
	if err != nil {
		if n > 0 {
			w.cutBack(int64(n))
		}
		w.drop(line, err)
		return
	}
	w.stats.Lines++
	w.stats.Bytes += uint64(n)
	if w.stats.Failing {
		w.stats.Failing = false
		w.events = append(w.events, Event{Path: w.path, Dropped: w.stats.Dropped - w.streak})
	}
}

// cutBack removes the n bytes of a line that was only partly written, so
// the next line does not get glued to it.
func (w *Writer) cutBack(n int64) {
	if fi, err := w.f.Stat(); err == nil && fi.Size() >= n {
		if w.f.Truncate(fi.Size()-n) == nil {
			w.size = fi.Size() - n
			return
		}
	}
	w.broken = true
}

func (w *Writer) drop(line []byte, err error) {
	w.stats.Dropped++
	w.stats.DroppedBytes += uint64(len(line))
	if !w.stats.Failing {
		w.stats.Failing = true
		w.streak = w.stats.Dropped - 1
		w.events = append(w.events, Event{Path: w.path, Err: err})
	}
}

// rotateIfFull rotates the file when a line of n bytes would take it past
// MaxSize.
func (w *Writer) rotateIfFull(n int64) {
	if w.opt.MaxSize <= 0 || w.size == 0 || w.size+n <= w.opt.MaxSize {
		return
	}
	// Someone else may have emptied the file (frutos flush from another
	// process truncates in place): believe the file, not our count.
	if fi, err := w.f.Stat(); err == nil {
		w.size = fi.Size()
		if w.size == 0 || w.size+n <= w.opt.MaxSize {
			return
		}
	}
	if !w.retryAt.IsZero() && time.Now().Before(w.retryAt) {
		return // a rotation failed a moment ago: keep writing here for now
	}
	if err := w.rotate(); err != nil {
		w.retryAt = time.Now().Add(time.Second)
		if !w.rotateFailing {
			// Not a lost line (it goes to the current file), but worth
			// saying once.
			w.rotateFailing = true
			w.events = append(w.events, Event{Path: w.path, Err: err})
		}
		return
	}
	w.retryAt, w.rotateFailing = time.Time{}, false
}

// rotate renames name.N-1 to name.N (replacing the oldest), ..., name to
// name.1, then starts a new name. Oldest first, so a file's index only grows.
func (w *Writer) rotate() error {
	present, err := rotatedIndexes(w.path) // oldest first
	if err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	for _, i := range present {
		if i >= w.opt.MaxFiles {
			continue // the oldest kept: the next rename replaces it
		}
		err := os.Rename(rotatedName(w.path, i), rotatedName(w.path, i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	if w.opt.MaxFiles > 0 {
		err = os.Rename(w.path, rotatedName(w.path, 1))
	} else {
		err = os.Remove(w.path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate log: %w", err)
	}
	w.stats.Rotations++
	old := w.f
	w.f = nil
	old.Close()
	w.broken = false
	return w.reopen()
}

// reopen opens path (creating it) and learns its size.
func (w *Writer) reopen() error {
	f, err := w.openFile(w.path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	w.f, w.size = f, fi.Size()
	return nil
}
