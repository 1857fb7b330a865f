package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/frutos/frutos/control"
)

// fault is one thing production does to a cluster.
type fault struct {
	what string
	// drops is set when the fault ends client connections: the wait for
	// every client to be back starts once some have noticed.
	drops  bool
	inject func(ctx context.Context, e *env) error
	// skip, when set, says why the fault cannot run here ("" when it can).
	skip func(e *env) string
}

var faults = map[string]*fault{
	"baseline": {what: "no fault: the undisturbed load, for comparison",
		inject: func(context.Context, *env) error { return nil }},
	"kill-worker": {drops: true, what: "`kill -9` of one random worker",
		inject: func(ctx context.Context, e *env) error { return e.killWorkers(ctx, 1) }},
	"kill-two-workers": {drops: true, what: "`kill -9` of two workers at once",
		inject: func(ctx context.Context, e *env) error { return e.killWorkers(ctx, 2) }},
	"redis-stop": {what: "Redis shut down for the outage time, then started again with its dataset",
		inject: func(ctx context.Context, e *env) error {
			if err := e.redis.Stop(); err != nil {
				return err
			}
			sleep(ctx, e.opts.RedisDown)
			return e.redis.Start(false)
		}},
	"redis-new-dataset": {what: "Redis killed and started again at once with a new, empty dataset",
		inject: func(ctx context.Context, e *env) error {
			if err := e.redis.Kill(); err != nil {
				return err
			}
			return e.redis.Start(true)
		}},
	"redis-frozen": {what: "Redis frozen (SIGSTOP: connections open, no answers) for the outage time",
		inject: func(ctx context.Context, e *env) error {
			if err := e.redis.Freeze(); err != nil {
				return err
			}
			sleep(ctx, e.opts.RedisDown)
			return e.redis.Thaw()
		}},
	"reload": {drops: true, what: "`frutos reload`: every worker replaced, one at a time",
		inject: func(ctx context.Context, e *env) error {
			_, err := e.sys.CLI(ctx, 10*time.Minute, "reload")
			return err
		}},
	"scale": {drops: true, what: "`frutos scale 2`, then `frutos scale 6` once the two are alone",
		inject: func(ctx context.Context, e *env) error {
			for _, n := range []int{2, 6} {
				if _, err := e.sys.CLI(ctx, 5*time.Minute, "scale", fmt.Sprint(n)); err != nil {
					return err
				}
				e.workers = n
				if err := e.sys.WaitOnline(ctx, n, 2*time.Minute); err != nil {
					return err
				}
			}
			return nil
		}},
	"kill-daemon": {what: "`kill -9` of the daemon (its workers keep their connections), then `frutos resurrect`, which adopts them",
		inject: func(ctx context.Context, e *env) error { return e.killDaemon(ctx) }},
	"update": {what: "`frutos update`: the daemon replaced in place, handing over its listening socket and its workers",
		inject: func(ctx context.Context, e *env) error { return e.update(ctx) }},
	"disk-full": {drops: true, what: "the log directory's disk (a 16 MB tmpfs) filled up while a worker is killed and restarted, then freed",
		inject: func(ctx context.Context, e *env) error { return e.diskFull(ctx) },
		skip: func(e *env) string {
			if !e.tmpfs {
				return "needs root to mount a tmpfs for the logs"
			}
			return ""
		}},
	"hostile": {what: "hostile clients next to the load (see below)",
		inject: func(ctx context.Context, e *env) error {
			var err error
			e.hostile, err = runHostile(ctx, e)
			return err
		}},
}

// killWorkers sends SIGKILL to n random online workers and waits until
// they are gone.
func (e *env) killWorkers(ctx context.Context, n int) error {
	st, err := e.sys.Status(ctx)
	if err != nil {
		return err
	}
	var pids []int
	for _, i := range rand.Perm(len(st.Workers)) {
		if w := st.Workers[i]; w.Status == control.StatusOnline && w.PID > 0 && len(pids) < n {
			pids = append(pids, w.PID)
			e.note("killed worker %d (pid %d, %d connections)", w.ID, w.PID, w.Connections)
		}
	}
	if len(pids) < n {
		return fmt.Errorf("only %d online workers to kill", len(pids))
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return waitUntil(10*time.Second, "the killed workers to be gone", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return true
	})
}

// killDaemon kills the daemon and brings everything back with resurrect
// as soon as it is gone, as systemd's restart would: the workers, orphaned,
// keep their clients, and the new daemon must adopt the same processes.
func (e *env) killDaemon(ctx context.Context) error {
	// what resurrect restores is what was saved: save the current list
	// first, as an operator does after changing it
	if _, err := e.sys.CLI(ctx, 30*time.Second, "save"); err != nil {
		return err
	}
	st, err := e.sys.Status(ctx)
	if err != nil {
		return err
	}
	_ = syscall.Kill(st.Daemon.PID, syscall.SIGKILL)
	if err := waitUntil(10*time.Second, "the daemon to be gone", func() bool { return !alive(st.Daemon.PID) }); err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := e.sys.CLI(ctx, 2*time.Minute, "resurrect"); err != nil {
		return err
	}
	e.note("resurrect took %.1f s", time.Since(t0).Seconds())
	return e.sameWorkersAdopted(ctx, st)
}

// update runs `frutos update` and checks that the new daemon adopted the
// same worker processes.
func (e *env) update(ctx context.Context) error {
	st, err := e.sys.Status(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if _, err := e.sys.CLI(ctx, 3*time.Minute, "update"); err != nil {
		return err
	}
	e.note("update took %.1f s", time.Since(t0).Seconds())
	if err := e.sameWorkersAdopted(ctx, st); err != nil {
		return err
	}
	return waitUntil(2*time.Minute, "the old daemon to exit", func() bool { return !alive(st.Daemon.PID) })
}

// sameWorkersAdopted checks that a new daemon answers with the workers of
// before (same pids), adopted.
func (e *env) sameWorkersAdopted(ctx context.Context, before control.Status) error {
	after, err := e.sys.Status(ctx)
	if err != nil {
		return err
	}
	if after.Daemon.PID == before.Daemon.PID {
		return fmt.Errorf("the daemon is still pid %d", after.Daemon.PID)
	}
	pids := map[int]int{}
	for _, w := range after.Workers {
		if w.Adopted {
			pids[w.ID] = w.PID
		}
	}
	for _, w := range before.Workers {
		if w.PID > 0 && pids[w.ID] != w.PID {
			return fmt.Errorf("worker %d (pid %d) was not adopted: %+v", w.ID, w.PID, after.Workers)
		}
	}
	e.note("the new daemon (pid %d) adopted %d workers", after.Daemon.PID, len(pids))
	return nil
}

// diskFull fills the logs' tmpfs, kills a worker so that the daemon and
// the new worker write logs on a full disk, checks that `frutos logs`
// still answers, then frees the space.
func (e *env) diskFull(ctx context.Context) error {
	filler := filepath.Join(e.logsDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	var written int64
	for {
		n, err := f.Write(buf)
		written += int64(n)
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				f.Close()
				return err
			}
			break
		}
	}
	f.Close()
	defer os.Remove(filler)
	e.note("filled the disk with %d KB", written>>10)
	if err := e.killWorkers(ctx, 1); err != nil {
		return err
	}
	if err := e.sys.WaitOnline(ctx, e.workers, time.Minute); err != nil {
		return fmt.Errorf("with the disk full: %w", err)
	}
	if _, err := e.sys.CLI(ctx, 10*time.Second, "logs", "--nostream", "--lines", "5"); err != nil {
		e.note("`frutos logs` failed on a full disk: %v", err)
	}
	sleep(ctx, 3*time.Second)
	return os.Remove(filler)
}
