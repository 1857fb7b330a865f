package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/frutos/frutos/internal/workerproto"
	"github.com/frutos/frutos/logs"
)

// attendance is the worker's side of workerproto's liveness rule: who
// holds the worker (its parent's pipe, the leases of daemons that adopted
// it) and what it does when nobody does. With no orphan grace it drains at
// once, as on SIGTERM. With one, it keeps serving the connections it holds
// and takes no new session (orphaned), logging to its own files, until a
// lease adopts it or the grace runs out; then it drains.
type attendance struct {
	w      *Worker
	spec   workerproto.Spec
	log    *slog.Logger
	grace  time.Duration
	giveUp context.CancelFunc // drain and exit
	stdio  *stdio             // nil when the process's descriptors are not the worker's log

	mu       sync.Mutex
	parent   bool // the parent's pipe is open
	leases   map[*workerproto.HeldLease]bool
	orphaned time.Time // when the last daemon went; zero while one holds the worker
	timer    *time.Timer
	gaveUp   bool
	closed   bool
}

func newAttendance(w *Worker, spec workerproto.Spec, grace time.Duration, out *stdio, log *slog.Logger, giveUp context.CancelFunc) *attendance {
	return &attendance{w: w, spec: spec, log: log, grace: grace, giveUp: giveUp, stdio: out,
		parent: true, leases: map[*workerproto.HeldLease]bool{}}
}

// parentGone is the end of the parent's pipe.
func (a *attendance) parentGone() {
	a.mu.Lock()
	a.parent = false
	report := a.checkLocked()
	a.mu.Unlock()
	report()
}

// serveLease answers a daemon's lease on the private socket and holds it
// until the daemon's end closes.
func (a *attendance) serveLease(rw http.ResponseWriter, r *http.Request) {
	held, err := workerproto.AcceptLease(rw, r, a.identity())
	if err != nil {
		a.log.Warn("lease refused", "err", err)
		return
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		held.Close()
		return
	}
	a.leases[held] = true
	since := a.orphaned
	if !since.IsZero() {
		a.orphaned = time.Time{}
		a.timer.Stop()
		if !a.gaveUp {
			a.w.orphaned.Store(false)
		}
	}
	draining := a.gaveUp
	a.mu.Unlock()
	switch {
	case !since.IsZero() && !draining:
		a.log.Info("adopted: a new daemon holds this worker; taking new sessions again", "daemon_pid", held.DaemonPID,
			"orphaned_for", time.Since(since).Round(time.Millisecond).String(), "connections", a.w.engine.Count())
	case !since.IsZero():
		a.log.Info("a new daemon holds this worker; it drains still", "daemon_pid", held.DaemonPID)
	default:
		a.log.Info("a daemon holds this worker", "daemon_pid", held.DaemonPID)
	}
	held.Hold(func(out, errw *os.File) { a.stdio.point(out, errw) })
	a.mu.Lock()
	delete(a.leases, held)
	report := a.checkLocked()
	a.mu.Unlock()
	report()
}

func (a *attendance) identity() workerproto.Identity {
	a.mu.Lock()
	orphaned := !a.orphaned.IsZero()
	a.mu.Unlock()
	return workerproto.Identity{PID: os.Getpid(), ID: a.spec.ID, Tag: a.spec.Tag, Socket: a.spec.Socket, Handoff: a.spec.Handoff,
		Started: a.w.started, Draining: a.w.draining.Load(), Orphaned: orphaned}
}

// checkLocked acts when the last daemon has gone; it returns what to log
// once a.mu is released.
func (a *attendance) checkLocked() (report func()) {
	if a.parent || len(a.leases) > 0 || a.gaveUp || a.closed || !a.orphaned.IsZero() {
		return func() {}
	}
	if a.grace <= 0 {
		a.gaveUp = true
		a.giveUp()
		return func() { a.log.Info("the daemon is gone: draining (restart.orphan_grace is 0)") }
	}
	a.orphaned = time.Now()
	a.w.orphaned.Store(true)
	a.stdio.toFiles(a.log)
	a.timer = time.AfterFunc(a.grace, a.graceOver)
	conns := a.w.engine.Count()
	return func() {
		a.log.Warn("the daemon is gone: serving the connections held, taking no new session, until a new daemon for this home adopts this worker (systemd's restart, frutos resurrect or frutos start); then draining",
			"connections", conns, "orphan_grace", a.grace.String())
	}
}

func (a *attendance) graceOver() {
	a.mu.Lock()
	if a.orphaned.IsZero() || a.gaveUp || a.closed {
		a.mu.Unlock()
		return
	}
	a.gaveUp = true
	a.mu.Unlock()
	a.log.Warn("no daemon adopted this worker within orphan_grace: draining", "orphan_grace", a.grace.String(),
		"connections", a.w.engine.Count())
	a.giveUp()
}

// close lets go of the leases and the timer (the worker stops).
func (a *attendance) close() {
	a.mu.Lock()
	a.closed = true
	if a.timer != nil {
		a.timer.Stop()
	}
	held := make([]*workerproto.HeldLease, 0, len(a.leases))
	for h := range a.leases {
		held = append(held, h)
	}
	a.mu.Unlock()
	for _, h := range held {
		h.Close()
	}
}

// stdio is the process's descriptors 1 and 2 when they are the worker's
// log (frutos worker): the daemon's pipes. An orphan points them at its
// own log files (the pipes' reader is gone); an adopted worker at the new
// daemon's pipes. A nil *stdio (a worker in a test's process) leaves them
// alone.
type stdio struct {
	mu               sync.Mutex
	outPath, errPath string
}

// newStdio is the stdio of worker id of cfg's app: its out and err files
// in the logs directory, the ones the daemon writes.
func newStdio(logsDir, app string, id int) *stdio {
	out, errPath := logs.Paths(logsDir, app, id)
	return &stdio{outPath: out, errPath: errPath}
}

// toFiles appends what the worker writes to its own log files from now on.
func (s *stdio) toFiles(log *slog.Logger) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var files [2]*os.File
	for i, path := range []string{s.outPath, s.errPath} {
		_ = os.MkdirAll(filepath.Dir(path), 0o750)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		if err != nil {
			log.Warn("no log file for the orphan's log; it is lost until a daemon adopts this worker", "err", err)
			for _, f := range files[:i] {
				f.Close()
			}
			return
		}
		files[i] = f
	}
	s.dup(files[0], files[1])
}

// point makes out and errw (a daemon's pipes, which it owns) the worker's
// stdout and stderr; with a nil *stdio it only closes them.
func (s *stdio) point(out, errw *os.File) {
	if s == nil {
		out.Close()
		errw.Close()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dup(out, errw)
}

func (s *stdio) dup(out, errw *os.File) {
	defer out.Close()
	defer errw.Close()
	for _, p := range []struct {
		f  *os.File
		fd int
	}{{out, 1}, {errw, 2}} {
		if err := unix.Dup3(int(p.f.Fd()), p.fd, 0); err != nil {
			fmt.Fprintf(os.Stderr, "frutos worker: redirect descriptor %d: %v\n", p.fd, err)
		}
	}
}
