package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// Line is one line of a log file.
type Line struct {
	// Text is the line without its timestamp prefix and newline.
	Text string
	// Time is the line's timestamp prefix, read with the date format; zero
	// when the line has none.
	Time time.Time
}

// Offset is a place in a log file to follow from.
//
// The zero Offset is the start of the file at the path when Follow begins;
// End() is its end. Tail returns the Offset just after the lines it read,
// which also remembers which file that was: if the file is rotated before
// Follow starts, Follow finds it under its new name and goes on from there.
type Offset struct {
	// Pos is the byte position; negative means the end of the file.
	Pos  int64
	file fs.FileInfo // the file Pos is in, when known
	// mark is the bytes just before Pos: a file found with the same
	// identity must also hold them (a removed file's inode number may have
	// been given to a new file since).
	mark string
}

// End is the Offset of the end of the file (after its last complete line)
// when Follow begins: only new lines are followed.
func End() Offset { return Offset{Pos: -1} }

// DefaultPoll is how often Follow looks for new lines when Reader.Poll is 0.
const DefaultPoll = 150 * time.Millisecond

// maxReadLine bounds a line held by a reader; a longer one is handed out in
// pieces. The Writer never writes lines this long.
const maxReadLine = 1 << 20

// Reader reads log files written with a given timestamp layout.
type Reader struct {
	// DateFormat is the layout of the lines' timestamp prefix; ""
	// means DefaultDateFormat. Lines without one are read as they are.
	DateFormat string
	// Poll is how often Follow checks the file; 0 means DefaultPoll.
	Poll time.Duration
	// Watcher, when set, wakes Follow as soon as the file changes; share
	// one among many followers. When nil, each Follow starts its own, and
	// polls when it cannot.
	Watcher *Watcher

	pollOnly bool // tests: no Watcher at all
}

// Tail returns the last n lines of the file at path, read with the default
// date format. See Reader.Tail.
func Tail(path string, n int) ([]Line, error) {
	lines, _, err := Reader{}.Tail(path, n)
	return lines, err
}

// Follow follows the file at path with the default date format and poll
// interval. See Reader.Follow.
func Follow(ctx context.Context, path string, from Offset, fn func(Line)) error {
	return Reader{}.Follow(ctx, path, from, fn)
}

// Parse reads one line (without its newline): the timestamp prefix, if it
// has one, becomes Time and the rest Text.
func (r Reader) Parse(raw []byte) Line {
	layout := r.layout()
	// The prefix is the formatted time and a space. Layouts may contain
	// spaces, and "_2"-style fields add one, so try the cuts in order.
	want := strings.Count(layout, " ")
	spaces := 0
	for i := 0; i < len(raw) && i <= len(layout)+32; i++ {
		if raw[i] != ' ' {
			continue
		}
		if spaces >= want {
			if t, err := time.ParseInLocation(layout, string(raw[:i]), time.Local); err == nil {
				return Line{Text: string(raw[i+1:]), Time: t}
			}
		}
		spaces++
		if spaces > want+2 {
			break
		}
	}
	return Line{Text: string(raw)}
}

func (r Reader) layout() string {
	if r.DateFormat == "" {
		return DefaultDateFormat
	}
	return r.DateFormat
}

func (r Reader) poll() time.Duration {
	if r.Poll <= 0 {
		return DefaultPoll
	}
	return r.Poll
}

// tailBlock is how much Tail reads at a time, backwards from the end.
const tailBlock = 64 << 10

// Tail returns the last n complete lines of the file at path, and the Offset
// just after them, to Follow from without losing or repeating a line. It
// reads backwards from the end in blocks, so the size of the file does not
// matter. A partial last line (still being written) is left for Follow.
func (r Reader) Tail(path string, n int) ([]Line, Offset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Offset{}, fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, Offset{}, fmt.Errorf("read log: %w", err)
	}
	raws, end, err := lastLines(f, fi.Size(), max(n, 0))
	if err != nil {
		return nil, Offset{}, fmt.Errorf("read log %s: %w", path, err)
	}
	mark := make([]byte, min(end, fingerprintLen))
	if _, err := f.ReadAt(mark, end-int64(len(mark))); err != nil && !errors.Is(err, io.EOF) {
		return nil, Offset{}, fmt.Errorf("read log %s: %w", path, err)
	}
	lines := make([]Line, len(raws))
	for i, raw := range raws {
		lines[i] = r.Parse(raw)
	}
	return lines, Offset{Pos: end, file: fi, mark: string(mark)}, nil
}

// lastLines returns the last n complete lines (without newlines) of the
// first size bytes of f, and the position just after the last of them.
func lastLines(f io.ReaderAt, size int64, n int) ([][]byte, int64, error) {
	// Read blocks backwards until they hold n+1 newlines: the last one ends
	// the last complete line, and the one before the n lines ends a line we
	// may only have part of.
	var blocks [][]byte // last block first
	newlines := 0
	start := size
	for start > 0 && newlines < n+1 {
		bs := min(int64(tailBlock), start)
		start -= bs
		b := make([]byte, bs)
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return nil, 0, err
		}
		blocks = append(blocks, b)
		newlines += bytes.Count(b, []byte{'\n'})
	}
	var data []byte
	for i := len(blocks) - 1; i >= 0; i-- {
		data = append(data, blocks[i]...)
	}
	last := bytes.LastIndexByte(data, '\n')
	if last < 0 {
		return nil, start, nil // no complete line: follow from the start
	}
	end := start + int64(last) + 1
	body := data[:last] // lines separated by newlines
	var lines [][]byte
	for len(lines) < n {
		i := bytes.LastIndexByte(body, '\n')
		if i < 0 {
			if start == 0 { // the first line of the file
				lines = append(lines, body)
			}
			break
		}
		lines = append(lines, body[i+1:])
		body = body[:i]
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines, end, nil
}
