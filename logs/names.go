// Package logs owns the workers' log files: a line-oriented Writer with
// optional timestamps and rotation by size, the names of the files (PM2's
// cluster-mode names), reading the last lines of a file (Tail), following a
// file across rotations and truncations (Follow), the two together over
// many files (TailFiles, FollowFiles: what `frutos logs` prints and monit
// shows), and emptying files (Flush, Writer.Truncate).
//
// One worker has two files in the logs directory, <app>-out-<id>.log and
// <app>-error-<id>.log. A file that reaches its size limit is renamed
// <name>.1 (an older <name>.1 becomes <name>.2, and so on up to
// <name>.<max_files>; the oldest is dropped) and a new <name> is started.
//
// Rules the Writer keeps so that readers can follow without losing or
// repeating lines (see Follow):
//   - a rotated file is never written again;
//   - rotation renames from the oldest down (<name>.4 to <name>.5, then .3 to
//     .4, ..., then <name> to <name>.1), so a file's index only ever grows;
//   - a file is removed only when every older one is already gone.
package logs

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Stream is one of a worker's two output streams.
type Stream string

const (
	Out Stream = "out" // the worker's stdout
	Err Stream = "err" // the worker's stderr
)

// DaemonLog is the name of the daemon's own log file in the state home.
const DaemonLog = "daemon.log"

// fileWord is the word PM2 puts in the file name for each stream.
func (s Stream) fileWord() string {
	if s == Err {
		return "error"
	}
	return "out"
}

// Paths returns the out and err log files of worker id of app in dir:
// <dir>/<app>-out-<id>.log and <dir>/<app>-error-<id>.log.
func Paths(dir, app string, id int) (out, err string) {
	return Path(dir, app, id, Out), Path(dir, app, id, Err)
}

// Path returns the log file of one stream of worker id of app in dir.
func Path(dir, app string, id int, s Stream) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%d.log", app, s.fileWord(), id))
}

// File is a worker's log file found in a directory.
type File struct {
	App    string
	ID     int
	Stream Stream
	Path   string
}

// ParseName reads a log file name made by Path ("frutos-out-0.log",
// "my-app-error-12.log"). Rotated files ("frutos-out-0.log.1") and other
// names are not log files: ok is false.
func ParseName(name string) (app string, id int, s Stream, ok bool) {
	base, found := strings.CutSuffix(name, ".log")
	if !found {
		return "", 0, "", false
	}
	dash := strings.LastIndexByte(base, '-')
	if dash < 0 {
		return "", 0, "", false
	}
	id, err := strconv.Atoi(base[dash+1:])
	if err != nil || id < 0 || strconv.Itoa(id) != base[dash+1:] {
		return "", 0, "", false
	}
	rest := base[:dash]
	switch {
	case strings.HasSuffix(rest, "-out"):
		app, s = strings.TrimSuffix(rest, "-out"), Out
	case strings.HasSuffix(rest, "-error"):
		app, s = strings.TrimSuffix(rest, "-error"), Err
	default:
		return "", 0, "", false
	}
	if app == "" {
		return "", 0, "", false
	}
	return app, id, s, true
}

// List returns the workers' log files of app present in dir (every app's
// when app is ""), sorted by app, worker id, then out before err. Rotated
// files are not listed. A missing dir is an empty list, not an error.
func List(dir, app string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list log files: %w", err)
	}
	var files []File
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		a, id, s, ok := ParseName(e.Name())
		if !ok || (app != "" && a != app) {
			continue
		}
		files = append(files, File{App: a, ID: id, Stream: s, Path: filepath.Join(dir, e.Name())})
	}
	slices.SortFunc(files, func(x, y File) int {
		return cmp.Or(cmp.Compare(x.App, y.App), cmp.Compare(x.ID, y.ID), cmp.Compare(x.Stream.order(), y.Stream.order()))
	})
	return files, nil
}

func (s Stream) order() int {
	if s == Err {
		return 1
	}
	return 0
}

// IDs returns the distinct worker ids of files, in order.
func IDs(files []File) []int {
	var ids []int
	for _, f := range files {
		if !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Flush empties the log files of app's workers in dir: those of the given
// worker ids, or all of them when ids is empty. It is for a process that does
// not own the writers (the daemon's writers use Writer.Truncate): each file is
// truncated in place, so a writer that has it open keeps appending to it, and
// its rotated files are removed. It returns the files it emptied.
func Flush(dir, app string, ids ...int) ([]string, error) {
	files, err := List(dir, app)
	if err != nil {
		return nil, err
	}
	var emptied []string
	var errs []error
	for _, f := range files {
		if len(ids) > 0 && !slices.Contains(ids, f.ID) {
			continue
		}
		if err := TruncateFile(f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		emptied = append(emptied, f.Path)
	}
	return emptied, errors.Join(errs...)
}

// TruncateFile empties the log file at path in place and removes its
// rotated files, oldest first.
func TruncateFile(path string) error {
	if err := removeRotated(path, 0); err != nil {
		return err
	}
	if err := os.Truncate(path, 0); err != nil {
		return fmt.Errorf("empty log file: %w", err)
	}
	return nil
}

// rotatedName is the name of the index-th rotated file of path; index 0 is
// path itself.
func rotatedName(path string, index int) string {
	if index == 0 {
		return path
	}
	return path + "." + strconv.Itoa(index)
}

// rotatedIndexes returns the indexes of path's rotated files present on
// disk, highest (oldest) first.
func rotatedIndexes(path string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	prefix := filepath.Base(path) + "."
	var idx []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 && strconv.Itoa(n) == rest {
			idx = append(idx, n)
		}
	}
	slices.Sort(idx)
	slices.Reverse(idx)
	return idx, nil
}

// removeRotated removes path's rotated files with an index above keep,
// oldest first, so that a reader never sees an older file outlive a newer
// one.
func removeRotated(path string, keep int) error {
	idx, err := rotatedIndexes(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("remove rotated log files: %w", err)
	}
	for _, i := range idx {
		if i <= keep {
			continue
		}
		if err := os.Remove(rotatedName(path, i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove rotated log file: %w", err)
		}
	}
	return nil
}
