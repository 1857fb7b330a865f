package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Follow calls fn with each line added to the file at path from the Offset
// from on, until ctx is done, and then returns ctx.Err(). It reads as soon
// as the file changes (see Watcher), and polls it every r.Poll in any case.
// fn is called from Follow's goroutine, one line at a time.
//
// Follow goes on across the changes the Writer and frutos flush make:
//   - rotation (path renamed to path.1, a new path started): it reads the
//     old file to its end, then each newer file from its start, in order,
//     however many rotations happened between two polls;
//   - Writer.Truncate (rotated files removed, path replaced by a new file):
//     it finishes the old file, then starts the new one at 0;
//   - truncation in place (Flush from another process): it starts again at
//     0. A line written and emptied between two polls is not seen.
//
// No line is repeated, and none is lost unless it was deleted before Follow
// could read it: files rotated out of existence before Follow even saw them
// (more than max_files rotations between two looks), or a flush. As soon as
// Follow sees its file rotated, it opens the newer files and holds them, so
// falling behind while reading (a slow terminal) loses nothing.
//
// A partial line waits for its newline (a file that is finished hands its
// partial last line out as a line).
func (r Reader) Follow(ctx context.Context, path string, from Offset, fn func(Line)) error {
	fl := newFollower(r, path, from, fn)
	defer fl.close()
	var wake <-chan struct{} // nil: poll only
	if !r.pollOnly {
		w := r.Watcher
		if w == nil {
			if own, err := NewWatcher(); err == nil {
				defer own.Close()
				w = own
			}
		}
		if w != nil {
			if ch, stop, err := w.subscribe(path); err == nil {
				defer stop()
				wake = ch
			}
		}
	}
	poll := r.poll()
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		progressed, err := fl.step()
		if err != nil {
			return err
		}
		if progressed {
			continue
		}
		timer.Reset(poll)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-timer.C:
		}
	}
}

// fingerprintLen is how many bytes before the read position a follower
// keeps, to notice a file that was emptied and written again between polls.
const fingerprintLen = 64

// readChunk is how much a follower reads at a time.
const readChunk = 64 << 10

// lostLimit is how many times a follower looks for the new name of a file
// that still has a name before it gives up and treats it as removed (a
// hard link kept outside the rotation, say).
const lostLimit = 20

type follower struct {
	r    Reader
	path string
	fn   func(Line)
	from Offset // where to begin, used by the first open

	started bool
	f       *os.File    // the file being read; nil until one is open
	fi      fs.FileInfo // f's identity
	idx     int         // where f was last seen among path.1, path.2... (names only move up)
	pos     int64       // next byte of f to read
	partial []byte      // a line without its newline yet
	last    []byte      // the bytes of f just before pos
	buf     []byte
	ahead   []pinned // the files after f, oldest first, held open
	lost    int      // looks in which a rotated file could not be found under any name
}

func newFollower(r Reader, path string, from Offset, fn func(Line)) *follower {
	return &follower{r: r, path: path, fn: fn, from: from, buf: make([]byte, fingerprintLen+readChunk)}
}

// pinned is a file held open so that its lines outlive its deletion.
type pinned struct {
	f   *os.File
	fi  fs.FileInfo
	idx int // where it was last seen: path.idx (0: path)
}

// maxPinned bounds the files a follower holds open ahead of the one it
// reads (and so the deleted files whose space it keeps from being freed).
const maxPinned = 256

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
	}
	for _, p := range fl.ahead {
		p.f.Close()
	}
}

// step reads what it can; it reports whether it made progress (read bytes
// or moved to another file), so the caller looks again at once.
func (fl *follower) step() (bool, error) {
	if fl.f == nil {
		return fl.begin(), nil
	}
	n, err := fl.drain()
	if err != nil {
		return n > 0, err
	}
	rotated := len(fl.ahead) > 0 || !fl.atPath(fl.fi)
	if !rotated {
		fl.lost = 0
		return n > 0, nil // still the file at path
	}
	// f was rotated (or replaced, or removed): hold on to the files after
	// it now, before more rotations delete them.
	fl.pinAhead()
	if n > 0 {
		return true, nil
	}
	// Nothing writes to f any more: read what was written before it was
	// rotated, then go on with the next file.
	if n, err := fl.drain(); err != nil || n > 0 {
		return n > 0, err
	}
	if len(fl.ahead) == 0 {
		return false, nil // not there yet (mid-rotation): look again later
	}
	next := fl.ahead[0]
	fl.ahead = append(fl.ahead[:0], fl.ahead[1:]...)
	fl.endFile()
	fl.f.Close()
	fl.f, fl.fi, fl.idx = next.f, next.fi, next.idx
	fl.restart()
	return true, nil
}

func (fl *follower) atPath(fi fs.FileInfo) bool {
	st, err := os.Stat(fl.path)
	return err == nil && os.SameFile(st, fi)
}

// pinAhead opens the files that came after the last one held (f, or the
// newest in ahead), up to the one at path.
func (fl *follower) pinAhead() {
	for len(fl.ahead) < maxPinned {
		last := &pinned{fl.f, fl.fi, fl.idx}
		if k := len(fl.ahead); k > 0 {
			last = &fl.ahead[k-1]
			if fl.atPath(last.fi) {
				return // holding every file up to the current one
			}
		}
		next, ok := fl.successorOf(last)
		if !ok {
			return
		}
		if os.SameFile(next.fi, last.fi) || os.SameFile(next.fi, fl.fi) {
			next.f.Close() // cannot happen with our Writer; never loop on it
			return
		}
		if last.f == fl.f {
			fl.idx = last.idx
		}
		fl.ahead = append(fl.ahead, next)
	}
}

// begin opens the first file: the one from points into, else the file at
// path. It reports whether a file is open.
func (fl *follower) begin() bool {
	if fl.started {
		return fl.openPath()
	}
	if fl.from.file != nil {
		fl.started = true
		if f, fi, k := fl.find(fl.from.file); f != nil {
			fl.f, fl.fi, fl.idx = f, fi, k
			if fl.seek(fl.from.Pos) && string(fl.last) == fl.from.mark {
				return true
			}
			// Not the bytes Tail saw there: a new file that got the inode
			// of a removed one, or the file was emptied since.
			f.Close()
			fl.f, fl.fi = nil, nil
		}
		// Gone: removed after more rotations than are kept, or flushed.
		// Every file still there is newer.
		if f, fi, j := fl.oldest(); f != nil {
			fl.f, fl.fi, fl.idx = f, fi, j
			fl.restart()
			return true
		}
		return false
	}
	if !fl.openPath() {
		// Not there yet: when it comes, all of it is new.
		fl.started = true
		return false
	}
	fl.started = true
	if fl.from.Pos < 0 {
		fl.seekEnd()
	} else {
		fl.seek(fl.from.Pos)
	}
	return true
}

// openPath opens the file at path, to read from its start.
func (fl *follower) openPath() bool {
	f, err := os.Open(fl.path)
	if err != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return false
	}
	fl.f, fl.fi, fl.idx = f, fi, 0
	fl.restart()
	return true
}

func (fl *follower) restart() {
	fl.pos = 0
	fl.partial = fl.partial[:0]
	fl.last = fl.last[:0]
}

// seek moves to pos in f; past the end (emptied since), to its start, and
// then it reports false.
func (fl *follower) seek(pos int64) bool {
	fl.restart()
	if pos <= 0 {
		return true
	}
	k := min(pos, fingerprintLen)
	b := make([]byte, k)
	if n, _ := fl.f.ReadAt(b, pos-k); int64(n) < k {
		return false
	}
	fl.pos = pos
	fl.last = append(fl.last, b...)
	return true
}

// seekEnd moves to just after the last complete line of f.
func (fl *follower) seekEnd() {
	fi, err := fl.f.Stat()
	if err != nil {
		return
	}
	size := fi.Size()
	for end := size; end > 0 && size-end < maxReadLine; {
		start := max(end-tailBlock, 0)
		b := make([]byte, end-start)
		if _, err := fl.f.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			fl.seek(start + int64(i) + 1)
			return
		}
		end = start
	}
	if size >= maxReadLine {
		fl.seek(size) // no newline in sight: take the end as it is
	}
	// else: one partial line so far; read it from the start when it ends.
}

// drain reads f from pos towards its end (a bounded amount, so the caller
// can check its context) and hands out the complete lines. Each read starts
// with the bytes already read just before pos: if they changed, the file was
// emptied in place (and maybe written again) since, and reading starts over
// at 0. Checking in the same read as the new bytes leaves no moment for an
// emptying to slip in between. It returns how much progress it made.
func (fl *follower) drain() (int, error) {
	total := 0
	for range 16 {
		k := len(fl.last)
		buf := fl.buf[:k+readChunk]
		n, err := fl.f.ReadAt(buf, fl.pos-int64(k))
		if err != nil && !errors.Is(err, io.EOF) {
			return total, fmt.Errorf("follow log %s: %w", fl.path, err)
		}
		if n < k || !bytes.Equal(buf[:k], fl.last) {
			fl.restart() // emptied in place
			total++
			continue
		}
		data := buf[k:n]
		if len(data) == 0 {
			return total, nil
		}
		fl.remember(data)
		fl.pos += int64(len(data))
		total += len(data)
		fl.consume(data)
		if n < len(buf) {
			return total, nil // at the end
		}
	}
	return total, nil
}

// remember keeps the last fingerprintLen bytes read.
func (fl *follower) remember(data []byte) {
	if len(data) >= fingerprintLen {
		fl.last = append(fl.last[:0], data[len(data)-fingerprintLen:]...)
		return
	}
	fl.last = append(fl.last, data...)
	if drop := len(fl.last) - fingerprintLen; drop > 0 {
		copy(fl.last, fl.last[drop:])
		fl.last = fl.last[:fingerprintLen]
	}
}

// consume splits data into lines, joining the partial line from before.
func (fl *follower) consume(data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			fl.partial = append(fl.partial, data...)
			if len(fl.partial) >= maxReadLine {
				fl.emit(fl.partial)
				fl.partial = fl.partial[:0]
			}
			return
		}
		if len(fl.partial) > 0 {
			fl.partial = append(fl.partial, data[:i]...)
			fl.emit(fl.partial)
			fl.partial = fl.partial[:0]
		} else {
			fl.emit(data[:i])
		}
		data = data[i+1:]
	}
}

// endFile hands out the partial last line of a file that is finished.
func (fl *follower) endFile() {
	if len(fl.partial) > 0 {
		fl.emit(fl.partial)
		fl.partial = fl.partial[:0]
	}
}

func (fl *follower) emit(raw []byte) { fl.fn(fl.r.Parse(raw)) }

// successorOf opens the file that came after last, which is no longer at
// path (and updates where last was seen). ok is false when that cannot be
// known yet.
func (fl *follower) successorOf(last *pinned) (next pinned, ok bool) {
	cur, err := last.f.Stat()
	if err != nil {
		return pinned{}, false
	}
	if linked(cur) && fl.lost < lostLimit {
		// Rotated: last is path.k for some k, and the file after it is at k-1.
		for range 3 {
			f, fi, k, located := fl.next(cur, last.idx)
			if located {
				fl.lost = 0
				last.idx = k
				if f == nil {
					return pinned{}, false // the moment between rename and create
				}
				return pinned{f, fi, k - 1}, true
			}
		}
		fl.lost++
		return pinned{}, false
	}
	// Removed: it was the oldest (the Writer removes files oldest first),
	// so every file still there is newer. Go on with the oldest of them.
	fl.lost = 0
	f, fi, j := fl.oldest()
	return pinned{f, fi, j}, f != nil
}

// next finds cur among the rotated files (from hint up: names only move
// up) and opens the file after it. located is false when cur was not found
// (a rotation moved it during the search: look again). The file at k-1 is
// cur's successor if cur is at k both before and after it is opened: names
// move up one step per rotation, oldest first, so cur did not move and the
// two were neighbours at that moment.
func (fl *follower) next(cur fs.FileInfo, hint int) (f *os.File, fi fs.FileInfo, k int, located bool) {
	k, located = fl.locate(cur, hint)
	if !located {
		return nil, nil, 0, false
	}
	y, err := os.Open(rotatedName(fl.path, k-1))
	if err != nil {
		return nil, nil, k, true // renamed, new file not created yet
	}
	yfi, err := y.Stat()
	if err != nil {
		y.Close()
		return nil, nil, k, true
	}
	if st, err := os.Stat(rotatedName(fl.path, k)); err != nil || !os.SameFile(st, cur) {
		y.Close()
		return nil, nil, 0, false
	}
	return y, yfi, k, true
}

// locate returns the index k >= 1 at which cur is path.k. It looks from
// hint up, the way files move, so one rotation during the search cannot
// hide it; then everywhere, for files renamed some other way.
func (fl *follower) locate(cur fs.FileInfo, hint int) (int, bool) {
	is := func(k int) (exists, same bool) {
		st, err := os.Stat(rotatedName(fl.path, k))
		return err == nil, err == nil && os.SameFile(st, cur)
	}
	misses := 0
	for k := max(hint, 1); misses < 3; k++ {
		exists, same := is(k)
		if same {
			return k, true
		}
		if exists {
			misses = 0
		} else {
			misses++
		}
	}
	for k, top := 1, fl.top(); k <= top+2; k++ {
		if _, same := is(k); same {
			return k, true
		}
	}
	return 0, false
}

// find opens the file target among path and its rotated files. The search
// goes up the indexes, the way files move, so one rotation during it
// cannot hide the file.
func (fl *follower) find(target fs.FileInfo) (*os.File, fs.FileInfo, int) {
	for range 3 {
		top := fl.top()
		for k := 0; k <= top+2; k++ {
			st, err := os.Stat(rotatedName(fl.path, k))
			if err != nil || !os.SameFile(st, target) {
				continue
			}
			f, err := os.Open(rotatedName(fl.path, k))
			if err != nil {
				break
			}
			fi, err := f.Stat()
			if err != nil || !os.SameFile(fi, target) {
				f.Close()
				break // moved between the stat and the open: search again
			}
			return f, fi, k
		}
	}
	return nil, nil, 0
}

// oldest opens the oldest of path and its rotated files: the one with the
// highest index, checked to be still the highest after it is opened.
func (fl *follower) oldest() (*os.File, fs.FileInfo, int) {
	for range 5 {
		j := fl.top() + 2
		for ; j >= 0 && !exists(rotatedName(fl.path, j)); j-- {
		}
		if j < 0 {
			return nil, nil, 0 // no file at all yet
		}
		y, err := os.Open(rotatedName(fl.path, j))
		if err != nil {
			continue
		}
		yfi, err := y.Stat()
		if err != nil {
			y.Close()
			continue
		}
		// Nothing above it (a rotation leaves at most one hole, and moves
		// a file at most one step)...
		higher := false
		for i, misses := j+1, 0; misses < 3; i++ {
			if exists(rotatedName(fl.path, i)) {
				higher = true
				break
			}
			misses++
		}
		// ...and it did not move meanwhile.
		st, err := os.Stat(rotatedName(fl.path, j))
		if higher || err != nil || !os.SameFile(st, yfi) {
			y.Close()
			continue
		}
		return y, yfi, j
	}
	return nil, nil, 0
}

// top is the highest index of path's rotated files on disk (0 if none).
func (fl *follower) top() int {
	idx, err := rotatedIndexes(fl.path)
	if err != nil || len(idx) == 0 {
		return 0
	}
	return idx[0]
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
