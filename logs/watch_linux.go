package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Watcher wakes followers as soon as their files change, instead of at
// their next poll: a burst of lines that rotates the file many times is then
// read while it happens. On Linux it is one inotify instance, which serves
// any number of followers (share it through Reader.Watcher: the number of
// inotify instances per user is limited, often to 128). Elsewhere
// NewWatcher fails and followers poll.
type Watcher struct {
	f    *os.File // the inotify instance
	fd   int
	done chan struct{}

	mu     sync.Mutex
	closed bool
	dirs   map[string]*watchedDir
	byWd   map[int32]*watchedDir
}

type watchedDir struct {
	wd   int32
	subs map[*subscription]struct{}
}

type subscription struct {
	base string        // the followed file's name; its rotated files share the prefix
	wake chan struct{} // a token when something happened to it
}

const watchMask = syscall.IN_MODIFY | syscall.IN_CREATE | syscall.IN_DELETE |
	syscall.IN_MOVED_FROM | syscall.IN_MOVED_TO | syscall.IN_ATTRIB

// NewWatcher starts a Watcher. Close it when done.
func NewWatcher() (*Watcher, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_CLOEXEC | syscall.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watch log files: %w", err)
	}
	w := &Watcher{
		f:    os.NewFile(uintptr(fd), "inotify"), // non-blocking: reads wait in the runtime poller
		fd:   fd,
		done: make(chan struct{}),
		dirs: map[string]*watchedDir{},
		byWd: map[int32]*watchedDir{},
	}
	go w.run()
	return w, nil
}

// Close stops the Watcher; followers using it go on polling.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	err := w.f.Close() // ends the pending read
	<-w.done
	return err
}

// subscribe returns a channel that gets a token when path or one of its
// rotated files changes, and a function to stop.
func (w *Watcher) subscribe(path string) (<-chan struct{}, func(), error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, nil, os.ErrClosed
	}
	d := w.dirs[dir]
	if d == nil {
		wd, err := syscall.InotifyAddWatch(w.fd, dir, watchMask)
		if err != nil {
			return nil, nil, fmt.Errorf("watch %s: %w", dir, err)
		}
		d = &watchedDir{wd: int32(wd), subs: map[*subscription]struct{}{}}
		w.dirs[dir], w.byWd[d.wd] = d, d
	}
	s := &subscription{base: base, wake: make(chan struct{}, 1)}
	d.subs[s] = struct{}{}
	cancel := func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(d.subs, s)
		if len(d.subs) == 0 && w.dirs[dir] == d {
			delete(w.dirs, dir)
			delete(w.byWd, d.wd)
			if !w.closed {
				syscall.InotifyRmWatch(w.fd, uint32(d.wd))
			}
		}
	}
	return s.wake, cancel, nil
}

func (w *Watcher) run() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return // closed
		}
		w.dispatch(buf[:n])
	}
}

// dispatch wakes the subscribers of the files named in a batch of events.
func (w *Watcher) dispatch(b []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(b) >= syscall.SizeofInotifyEvent {
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		n := int(binary.NativeEndian.Uint32(b[12:]))
		if len(b) < syscall.SizeofInotifyEvent+n {
			return
		}
		name := strings.TrimRight(string(b[syscall.SizeofInotifyEvent:syscall.SizeofInotifyEvent+n]), "\x00")
		b = b[syscall.SizeofInotifyEvent+n:]
		if mask&syscall.IN_Q_OVERFLOW != 0 { // events were lost: wake everyone
			for _, d := range w.dirs {
				for s := range d.subs {
					wakeUp(s)
				}
			}
			continue
		}
		if d := w.byWd[wd]; d != nil {
			for s := range d.subs {
				if name == "" || strings.HasPrefix(name, s.base) {
					wakeUp(s)
				}
			}
		}
	}
}

func wakeUp(s *subscription) {
	select {
	case s.wake <- struct{}{}:
	default: // a token is already waiting
	}
}
