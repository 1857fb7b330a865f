package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/workerproto"
)

// Adoption: the daemon's side of workerproto's liveness rule. A worker
// outlives a daemon that died (or was replaced by `frutos update`) for
// restart.orphan_grace; the next daemon of the home finds it in the run
// directories of its predecessors, verifies it (the kernel's word, never a
// file's), takes a lease on it, and supervises it as if it were its child:
// routed, sampled, restarted when it dies, stopped, reloaded, scaled.

// foundWorker is a live worker of another daemon of this home, leased and
// verified, not yet in the table.
type foundWorker struct {
	lease *workerproto.Lease
	pidfd *pidfd
	ident workerproto.Identity
}

func (f *foundWorker) release() {
	_ = f.lease.Close()
	_ = f.pidfd.Close()
}

// adoption is what an adopted instance holds instead of a child's
// exec.Cmd: its lease (the worker's proof that a daemon holds it) and its
// pidfd (to watch and signal it: it is not our child, so no wait(2)).
type adoption struct {
	lease *workerproto.Lease
	pidfd *pidfd
}

// scanWorkers finds the live workers in the run directories under
// RunRoot(home) other than own, and the highest generation seen per worker
// id (live or not), so that this daemon's tags stay new. A socket that
// nobody serves is stale: it is removed, and so is a run directory left
// empty. A worker that does not prove who it is is left alone (it drains
// once its grace runs out).
func scanWorkers(ctx context.Context, home, own string, log *slog.Logger) (found []*foundWorker, floor map[int]int) {
	floor = map[int]int{}
	root := workerproto.RunRoot(home)
	dirs, err := os.ReadDir(root)
	if err != nil {
		return nil, floor
	}
	tags := map[string]bool{}
	for _, d := range dirs {
		dir := filepath.Join(root, d.Name())
		if !d.IsDir() || dir == own {
			continue
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			tag, ok := strings.CutSuffix(e.Name(), ".sock")
			if !ok {
				continue
			}
			id, gen, ok := workerproto.ParseTag(tag)
			if !ok {
				continue
			}
			floor[id] = max(floor[id], gen)
			sock := filepath.Join(dir, e.Name())
			f, err := leaseWorker(ctx, sock)
			switch {
			case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
				_ = os.Remove(sock)
				_ = os.Remove(workerproto.HandoffPath(dir, tag))
				continue
			case err != nil:
				log.Warn("a worker socket of an earlier daemon: not adopted", "socket", sock, "err", err)
				continue
			case tags[f.ident.Tag]:
				log.Warn("two live workers with one tag: the second is not adopted", "tag", tag, "worker_pid", f.ident.PID)
				f.release()
				continue
			}
			tags[f.ident.Tag] = true
			found = append(found, f)
		}
		_ = os.Remove(dir) // only if empty
	}
	slices.SortFunc(found, func(a, b *foundWorker) int {
		if a.ident.ID != b.ident.ID {
			return a.ident.ID - b.ident.ID
		}
		return b.ident.Generation() - a.ident.Generation() // newest first
	})
	return found, floor
}

// leaseWorker asks the worker serving sock for a lease and checks that it
// is the worker its socket, its answer and its command line say.
func leaseWorker(ctx context.Context, sock string) (*foundWorker, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var pfd *pidfd
	lease, err := workerproto.DialLease(ctx, sock, func(pid int) error {
		var err error
		pfd, err = openPidfd(pid) // before the worker answers: see DialLease
		return err
	})
	if err != nil {
		if pfd != nil {
			_ = pfd.Close()
		}
		return nil, err
	}
	f := &foundWorker{lease: lease, pidfd: pfd, ident: lease.Identity()}
	id := f.ident
	switch {
	case id.Socket != sock:
		err = fmt.Errorf("it says its socket is %s", id.Socket)
	case id.Generation() == 0:
		err = fmt.Errorf("its tag %q is not a worker's", id.Tag)
	default:
		err = workerproto.CheckProcess(lease.PeerPID(), id)
	}
	if err != nil {
		f.release()
		return nil, err
	}
	return f, nil
}

// adopt makes f a worker of this daemon: an instance (slot's current
// process when sl is not nil; otherwise one that is routed until it
// exits, as a replaced worker), its log pointed at sl's files, watched
// through its pidfd.
func (s *Supervisor) adopt(f *foundWorker, sl *slot) *instance {
	id := f.ident
	inst := &instance{id: id.ID, gen: id.Generation(), tag: id.Tag, pid: id.PID, proc: f.pidfd,
		sock: id.Socket, handoff: id.Handoff, started: id.Started, done: make(chan struct{}),
		adopted: &adoption{lease: f.lease, pidfd: f.pidfd}}
	inst.client = workerproto.NewClient(inst.sock)
	if inst.started.IsZero() {
		inst.started = time.Now()
	}
	if sl != nil {
		s.pipeLogs(inst, sl.out, sl.err)
		s.mu.Lock()
		sl.cur = inst
		sl.gen = max(sl.gen, inst.gen)
		sl.status = control.StatusLaunching
		s.mu.Unlock()
	}
	s.router.add(inst)
	s.log.Info("worker adopted", "worker", inst.id, "worker_pid", inst.pid, "generation", inst.gen,
		"was_orphaned", id.Orphaned, "draining", id.Draining)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		exited := f.pidfd.wait()
		_ = f.lease.Close()
		s.router.remove(inst)
		inst.closeSender()
		if !exited {
			close(inst.done) // released: the worker lives on, another daemon's now
			return
		}
		_ = f.pidfd.Close()
		inst.exitErr = errors.New("exited (an adopted worker: its exit status went to its first daemon's successor, not here)")
		_ = os.Remove(inst.sock)
		_ = os.Remove(inst.handoff)
		_ = os.Remove(filepath.Dir(inst.sock)) // the old run directory, once empty
		if sl != nil {
			s.onExit(sl, inst)
		}
		close(inst.done)
	}()
	return inst
}

// pipeLogs gives an adopted worker new stdout and stderr: pipes whose
// read ends this daemon copies to the worker's log files, as it does for
// its children. If that fails the worker keeps logging where it did (its
// own files, or its first daemon's pipes while that one lives).
func (s *Supervisor) pipeLogs(inst *instance, out, errw io.Writer) {
	var r [2]*os.File
	var w [2]*os.File
	for i := range 2 {
		var err error
		if r[i], w[i], err = os.Pipe(); err != nil {
			for j := range i {
				r[j].Close()
				w[j].Close()
			}
			s.log.Warn("no log pipes for an adopted worker", "worker", inst.id, "err", err)
			return
		}
	}
	err := inst.adopted.lease.SendLogs(w[0], w[1])
	w[0].Close()
	w[1].Close()
	if err != nil {
		r[0].Close()
		r[1].Close()
		s.log.Warn("could not give an adopted worker its log pipes; it logs where it did", "worker", inst.id, "err", err)
		return
	}
	for i, dst := range []io.Writer{out, errw} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer r[i].Close()
			_, _ = io.Copy(dst, r[i]) // until the worker and every copy of the write end are gone
		}()
	}
}

// release lets go of an adopted worker without stopping it: its lease
// ends, so it is orphaned again (unless another daemon holds it), and
// this daemon stops watching it.
func (inst *instance) release() {
	if inst.adopted == nil {
		return
	}
	inst.stopping.Store(true)
	inst.routable.Store(false)
	_ = inst.adopted.pidfd.Close() // ends the watcher, which ends the lease
	<-inst.done
}

// signaller signals a worker process: *os.Process for a child, *pidfd
// for an adopted worker.
type signaller interface {
	Signal(os.Signal) error
}

// pidfd is a process's pidfd: a handle that cannot name another process
// once this one has exited (pids are reused, pidfds are not), pollable:
// it becomes readable when the process exits.
type pidfd struct {
	f *os.File
}

func openPidfd(pid int) (*pidfd, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd of process %d: %w", pid, err)
	}
	// non-blocking: the runtime's poller watches it, no thread waits
	return &pidfd{f: os.NewFile(uintptr(fd), fmt.Sprintf("pidfd:%d", pid))}, nil
}

// Signal sends sig to the process, through the pidfd.
func (p *pidfd) Signal(sig os.Signal) error {
	ss, ok := sig.(syscall.Signal)
	if !ok {
		return fmt.Errorf("signal %v: not a syscall.Signal", sig)
	}
	rc, err := p.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.PidfdSendSignal(int(fd), ss, nil, 0) }); err != nil {
		return err
	}
	return serr
}

// wait returns true when the process has exited, false when the pidfd was
// closed first.
func (p *pidfd) wait() bool {
	rc, err := p.f.SyscallConn()
	if err != nil {
		return false
	}
	err = rc.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		return err == nil && n > 0
	})
	return err == nil
}

func (p *pidfd) Close() error { return p.f.Close() }
