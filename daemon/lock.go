package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// homeLock is the daemon's exclusive claim on a state home: an flock held
// for the daemon's life. A crashed daemon's lock goes with its process, so
// stale pid and socket files are simply replaced.
type homeLock struct {
	f       *os.File
	pidFile string
}

// ErrAlreadyRunning means another daemon holds the home.
var ErrAlreadyRunning = errors.New("a frutos daemon is already running for this home")

func lockHome(home string) (*homeLock, error) {
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("create the state home %s: %w", home, err)
	}
	path := filepath.Join(home, "daemon.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := readPID(pidPath(home))
			return nil, fmt.Errorf("%w (pid %d, home %s)", ErrAlreadyRunning, pid, home)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	l := &homeLock{f: f, pidFile: pidPath(home)}
	if err := l.writePID(); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

// writePID writes this process's pid in the pid file.
func (l *homeLock) writePID() error {
	if err := os.WriteFile(l.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", l.pidFile, err)
	}
	return nil
}

func pidPath(home string) string { return filepath.Join(home, "daemon.pid") }

func (l *homeLock) release() {
	_ = os.Remove(l.pidFile)
	_ = l.f.Close()
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
