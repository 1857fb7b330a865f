package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/handoff"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/internal/workerproto"
)

// Supervisor keeps the workers running: the process table, spawn, crash
// restarts with backoff, graceful stops, scale and rolling reload. One
// operation runs at a time; crash restarts wait for it.
type Supervisor struct {
	exe    func() (string, error) // the binary to run workers from, resolved at every spawn
	runDir string
	log    *slog.Logger
	logs   LogFiles
	router *router

	ops sync.Mutex // serializes operations

	mu      sync.Mutex
	cfg     *configs.Config
	slots   map[int]*slot
	floor   map[int]int // per id, the highest generation an earlier daemon used
	closing bool
	wg      sync.WaitGroup // process watchers and restart timers
}

// LogFiles are the workers' log files: the daemon writes them.
type LogFiles interface {
	// Open returns the writers of a worker id's out and err files.
	Open(id int) (out, errw io.WriteCloser, err error)
	// Truncate empties the files of one worker (id) or of all (nil), and
	// says which; writers keep working.
	Truncate(id *int) ([]string, error)
}

// slot is one worker id and the process that currently fills it.
type slot struct {
	id       int
	gen      int
	status   string
	restarts int
	quick    int  // consecutive quick failures
	stopped  bool // stopped on purpose: not restarted
	cur      *instance
	lastExit string
	retry    *time.Timer
	out, err io.WriteCloser
}

// instance is one worker process: a child of this daemon (cmd), or one
// it adopted (adopt.go: a lease and a pidfd, no exit status).
type instance struct {
	id, gen       int
	tag           string
	pid           int
	proc          signaller // cmd.Process, or the adopted worker's pidfd
	cmd           *exec.Cmd // nil when adopted
	stdin         io.WriteCloser
	adopted       *adoption // nil when a child
	started       time.Time
	sock          string
	handoff       string
	client        *workerproto.Client
	done          chan struct{} // closed when the process has exited
	exitErr       error
	stopping      atomic.Bool // stopped on purpose: its exit is not a crash
	launching     atomic.Bool // not ready yet: whoever started it handles its failure
	routable      atomic.Bool // new sessions may be sent here
	ready         atomic.Bool // its last health check passed
	stats         atomic.Pointer[workerproto.Polled]
	routed        atomic.Int64 // sessions sent here since the last stats poll
	senderMu      sync.Mutex
	sender        *handoff.Sender
	cpu           atomic.Uint64 // percent * 100, from the sampler
	rss           atomic.Uint64
	perSecond     atomic.Uint64 // events delivered per second * 100
	memoryRestart atomic.Bool   // a replacement for memory is under way
}

func newSupervisor(exe func() (string, error), runDir string, logs LogFiles, log *slog.Logger) *Supervisor {
	return &Supervisor{exe: exe, runDir: runDir, logs: logs, log: log, slots: map[int]*slot{}, floor: map[int]int{}, router: newRouter()}
}

// Config is the configuration workers are started with.
func (s *Supervisor) Config() *configs.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Count is the number of worker ids in the table.
func (s *Supervisor) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.slots)
}

// startPlan is what Start runs.
type startPlan struct {
	// ids are the worker ids to run: those that no adopted worker fills
	// get a new process.
	ids []int
	// stopped are ids kept in the table, stopped (an update keeps the
	// table as it was).
	stopped []int
	// found are the live workers of earlier daemons of the home, to adopt
	// (scanWorkers), and floor the highest generation seen per id.
	found []*foundWorker
	floor map[int]int
	// serve, when not nil, is called once the adopted workers are routed
	// and before new ones start: the front door opens then.
	serve func()
}

// plainStart is the plan of a start with no earlier workers: ids 0..n-1.
func plainStart(n int) startPlan {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return startPlan{ids: ids}
}

// Start starts the app with cfg: it adopts the live workers found, then
// starts a new process for every id of the plan that none fills, and
// waits until all are ready. If one fails, the new ones are stopped, the
// adopted ones let go (they are orphans again, for the next daemon) and
// the table is left empty: nothing half started.
func (s *Supervisor) Start(ctx context.Context, cfg *configs.Config, plan startPlan) error {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	if len(s.slots) > 0 {
		s.mu.Unlock()
		for _, f := range plan.found {
			f.release()
		}
		return conflictf("already running %s; use restart, reload or scale", plural.Count(len(s.slots), "worker", "workers"))
	}
	s.cfg = cfg
	for id, gen := range plan.floor {
		s.floor[id] = max(s.floor[id], gen)
	}
	s.mu.Unlock()
	fail := func(err error) error {
		s.releaseAdopted()
		s.removeAll(ctx)
		return err
	}
	if err := s.adoptAll(ctx, plan.found); err != nil {
		return fail(err)
	}
	if plan.serve != nil {
		plan.serve()
	}
	var ids []int
	s.mu.Lock()
	for _, id := range plan.ids {
		if s.slots[id] == nil {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()
	if err := s.startNew(ctx, ids); err != nil {
		return fail(err)
	}
	for _, id := range plan.stopped {
		sl, err := s.addSlot(id)
		if err != nil {
			return fail(err)
		}
		s.mu.Lock()
		sl.stopped, sl.status = true, control.StatusStopped
		s.mu.Unlock()
	}
	return nil
}

// adoptAll takes the workers found into the table: per id, the newest
// that does not drain fills the slot; the others (a reload was under way,
// or they drain already) are routed until they exit, and one that does not
// drain yet is stopped, as the reload would have.
func (s *Supervisor) adoptAll(ctx context.Context, found []*foundWorker) error {
	var filled []*instance
	for _, f := range found {
		s.mu.Lock()
		taken := s.slots[f.ident.ID] != nil
		s.mu.Unlock()
		if taken || f.ident.Draining {
			inst := s.adopt(f, nil)
			if !f.ident.Draining {
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					s.stopInstance(inst, 0)
				}()
			}
			continue
		}
		sl, err := s.addSlot(f.ident.ID)
		if err != nil {
			f.release()
			return err
		}
		filled = append(filled, s.adopt(f, sl))
	}
	// An adopted worker serves its connections whatever happens: never
	// stop it for not being ready (Redis may be down); route new
	// sessions to it once it says it is ready, or at once if it does not
	// within a few seconds (the router prefers ready workers).
	var wg sync.WaitGroup
	for _, inst := range filled {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := s.waitReady(wctx, inst); err != nil {
				s.log.Warn("adopted worker not ready yet; routing to it anyway", "worker", inst.id, "err", err)
				inst.launching.Store(false)
			}
			inst.routable.Store(true)
			s.mu.Lock()
			if sl := s.slots[inst.id]; sl != nil && sl.cur == inst {
				sl.status = control.StatusOnline
			}
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	return nil
}

// startNew creates slots for ids and starts them concurrently.
func (s *Supervisor) startNew(ctx context.Context, ids []int) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		sl, err := s.addSlot(id)
		if err != nil {
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.startSlot(ctx, sl)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (s *Supervisor) addSlot(id int) (*slot, error) {
	out, errw, err := s.logs.Open(id)
	if err != nil {
		return nil, fmt.Errorf("worker %d: open its log files: %w", id, err)
	}
	s.mu.Lock()
	sl := &slot{id: id, gen: s.floor[id], status: control.StatusLaunching, out: out, err: errw}
	s.slots[id] = sl
	s.mu.Unlock()
	return sl, nil
}

// startSlot runs a new process for sl and waits until it is ready.
func (s *Supervisor) startSlot(ctx context.Context, sl *slot) error {
	inst, err := s.spawn(sl)
	if err != nil {
		s.setStatus(sl, control.StatusErrored, err.Error())
		return err
	}
	if err := s.waitReady(ctx, inst); err != nil {
		s.stopInstance(inst, 0)
		s.setStatus(sl, control.StatusErrored, err.Error())
		return err
	}
	inst.routable.Store(true)
	s.mu.Lock()
	if sl.cur == inst {
		sl.status = control.StatusOnline
	}
	s.mu.Unlock()
	return nil
}

// spawn starts a worker process for sl (a new generation) and makes it the
// slot's current process.
func (s *Supervisor) spawn(sl *slot) (*instance, error) {
	exe, err := s.exe()
	if err != nil {
		return nil, fmt.Errorf("find the frutos binary: %w", err)
	}
	s.mu.Lock()
	cfg := s.cfg
	if s.closing {
		s.mu.Unlock()
		return nil, errors.New("the daemon is shutting down")
	}
	sl.gen++
	inst := &instance{id: sl.id, gen: sl.gen, done: make(chan struct{})}
	out, errw := sl.out, sl.err
	s.mu.Unlock()

	inst.launching.Store(true)
	spec := workerproto.Supervised(s.runDir, inst.id, inst.gen)
	inst.tag, inst.sock, inst.handoff = spec.Tag, spec.Socket, spec.Handoff
	inst.client = workerproto.NewClient(inst.sock)
	env, err := cfg.ChildEnv()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append([]string{workerproto.Command}, spec.Args()...)...)
	cmd.Env = append(childBaseEnv(), env...)
	cmd.Stdout, cmd.Stderr = out, errw
	// Own process group: a Ctrl-C on a foreground daemon reaches the
	// daemon only, which then stops the workers gracefully. No
	// parent-death signal: a worker outlives a daemon that dies (or is
	// updated) for restart.orphan_grace, to be adopted by the next one;
	// the stdin pipe (workerproto's liveness rule: held open, never
	// written) tells it that its parent is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	inst.stdin = stdin
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start worker %d: %w", inst.id, err)
	}
	inst.cmd = cmd
	inst.pid, inst.proc = cmd.Process.Pid, cmd.Process
	inst.started = time.Now()

	// Published complete: status readers see it from here on, and its
	// watcher (below) finds it as the slot's current process.
	s.mu.Lock()
	sl.cur = inst
	sl.status = control.StatusLaunching
	s.mu.Unlock()
	s.router.add(inst)
	s.log.Info("worker started", "worker", inst.id, "worker_pid", cmd.Process.Pid, "generation", inst.gen)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		inst.exitErr = cmd.Wait()
		s.router.remove(inst)
		_ = os.Remove(inst.sock)
		_ = os.Remove(inst.handoff)
		inst.closeSender()
		s.onExit(sl, inst) // the slot forgets it before anyone waiting on done looks again
		close(inst.done)
	}()
	return inst, nil
}

// childBaseEnv is the daemon's environment minus what the child gets from
// its configuration.
func childBaseEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return len(kv) > len(configs.ChildConfigEnv) && kv[:len(configs.ChildConfigEnv)+1] == configs.ChildConfigEnv+"="
	})
}

// waitReady polls the worker's health until it is ready, it exits, or
// listen_timeout passes.
func (s *Supervisor) waitReady(ctx context.Context, inst *instance) error {
	timeout := s.Config().Restart.ListenTimeout.Duration()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, err := inst.fetchStats(ctx); err == nil && st.Ready {
			inst.stats.Store(st)
			inst.ready.Store(true)
			inst.launching.Store(false)
			inst.sampleMemory() // status shows it at once, not after the next sample
			return nil
		}
		select {
		case <-inst.done:
			return fmt.Errorf("worker %d exited before it was ready (%v); see frutos logs %d --err", inst.id, inst.exitErr, inst.id)
		case <-deadline.C:
			return fmt.Errorf("worker %d was not ready within listen_timeout (%v); see frutos logs %d", inst.id, timeout, inst.id)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// onExit handles a process that ended: a crash is restarted with backoff,
// and after too many quick failures in a row the worker is errored.
func (s *Supervisor) onExit(sl *slot, inst *instance) {
	uptime := time.Since(inst.started)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.cur != inst {
		return // replaced (reload) or removed
	}
	sl.cur = nil
	sl.lastExit = exitText(inst.exitErr)
	if inst.stopping.Load() || inst.launching.Load() || s.closing {
		return // whoever stopped or started it sets the status
	}
	rp := s.cfg.Restart
	if uptime < rp.MinUptime.Duration() {
		sl.quick++
	} else {
		sl.quick = 0
	}
	if sl.quick > rp.MaxRestarts {
		sl.status = control.StatusErrored
		s.log.Error("worker keeps crashing: errored, not restarted", "worker", sl.id, "quick_failures", sl.quick-1, "last_exit", sl.lastExit)
		return
	}
	delay := s.scheduleRestartLocked(sl)
	s.log.Warn("worker exited; restarting", "worker", sl.id, "worker_pid", inst.pid, "exit", sl.lastExit,
		"uptime", uptime.Round(time.Millisecond).String(), "restart_in", delay.String())
}

// backoff is the delay before the n-th quick restart in a row (n=0: the
// worker had run long enough, restart at once after the initial delay).
func backoff(initial, maximum time.Duration, n int) time.Duration {
	d := initial
	for range max(n-1, 0) {
		d *= 2
		if d >= maximum {
			return maximum
		}
	}
	return min(d, maximum)
}

// cancelRetryLocked cancels a scheduled restart; the caller holds s.mu.
func (s *Supervisor) cancelRetryLocked(sl *slot) {
	if sl.retry != nil && sl.retry.Stop() {
		s.wg.Done() // the timer's function will not run
	}
	sl.retry = nil
}

// scheduleRestartLocked restarts sl after the backoff of its quick
// failures; the caller holds s.mu.
func (s *Supervisor) scheduleRestartLocked(sl *slot) time.Duration {
	rp := s.cfg.Restart
	delay := backoff(rp.BackoffInitial.Duration(), rp.BackoffMax.Duration(), sl.quick)
	sl.status = control.StatusLaunching
	s.wg.Add(1)
	sl.retry = time.AfterFunc(delay, func() {
		defer s.wg.Done()
		s.restartCrashed(sl)
	})
	return delay
}

func (s *Supervisor) restartCrashed(sl *slot) {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	gone := s.slots[sl.id] != sl || sl.stopped || sl.cur != nil || s.closing
	if !gone {
		sl.restarts++
		sl.retry = nil
	}
	s.mu.Unlock()
	if gone {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.startSlot(ctx, sl); err != nil {
		s.log.Error("restart failed", "worker", sl.id, "err", err)
		// startSlot stopped the process; its exit counts as a quick failure
		s.mu.Lock()
		sl.quick++
		again := sl.quick <= s.cfg.Restart.MaxRestarts && !s.closing && !sl.stopped
		if again {
			s.scheduleRestartLocked(sl)
		} else {
			sl.status = control.StatusErrored
		}
		s.mu.Unlock()
	}
}

// stopInstance stops a process gracefully: SIGTERM (the worker drains),
// then SIGKILL after timeout (the configured kill_timeout when 0).
func (s *Supervisor) stopInstance(inst *instance, timeout time.Duration) {
	if timeout == 0 {
		timeout = s.Config().Restart.KillTimeout.Duration()
	}
	inst.stopping.Store(true)
	inst.routable.Store(false)
	if inst.proc == nil {
		return
	}
	_ = inst.proc.Signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-inst.done:
		return
	case <-t.C:
		s.log.Warn("worker did not stop in time: killed", "worker", inst.id, "worker_pid", inst.pid, "kill_timeout", timeout.String())
		_ = inst.proc.Signal(syscall.SIGKILL)
	}
	<-inst.done
}

// Stop stops workers (all, or one) and keeps them in the table, stopped.
func (s *Supervisor) Stop(ctx context.Context, t control.Target) (string, error) {
	s.ops.Lock()
	defer s.ops.Unlock()
	sls, err := s.targets(t)
	if err != nil {
		return "", err
	}
	parallel(sls, func(sl *slot) {
		s.mu.Lock()
		sl.stopped = true
		s.cancelRetryLocked(sl)
		inst := sl.cur
		if inst != nil {
			sl.status = control.StatusStopping
		}
		s.mu.Unlock()
		if inst != nil {
			s.stopInstance(inst, 0)
		}
		s.setStatus(sl, control.StatusStopped, "")
	})
	return fmt.Sprintf("stopped %s", describe(sls)), nil
}

// Restart stops and starts workers (all, or one), as PM2's restart: not
// zero-downtime; use Reload for that.
func (s *Supervisor) Restart(ctx context.Context, t control.Target) (string, error) {
	s.ops.Lock()
	defer s.ops.Unlock()
	sls, err := s.targets(t)
	if err != nil {
		return "", err
	}
	var errs []error
	var errMu sync.Mutex
	parallel(sls, func(sl *slot) {
		s.mu.Lock()
		sl.stopped = false
		sl.quick = 0
		s.cancelRetryLocked(sl)
		inst := sl.cur
		sl.status = control.StatusStopping
		sl.restarts++
		s.mu.Unlock()
		if inst != nil {
			s.stopInstance(inst, 0)
		}
		if err := s.startSlot(ctx, sl); err != nil {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	})
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return fmt.Sprintf("restarted %s", describe(sls)), nil
}

// Reload replaces every worker, one at a time, with zero downtime: the new
// process must be ready before the old one stops taking new sessions and
// drains. A replacement that never gets ready stops the reload; the old
// worker keeps serving. cfg, when not nil, becomes the configuration.
func (s *Supervisor) Reload(ctx context.Context, cfg *configs.Config) (string, error) {
	s.ops.Lock()
	defer s.ops.Unlock()
	if cfg != nil {
		s.mu.Lock()
		s.cfg = cfg
		s.mu.Unlock()
	}
	sls, err := s.targets(control.Target{All: true})
	if err != nil {
		return "", err
	}
	for i, sl := range sls {
		if err := s.reloadSlot(ctx, sl); err != nil {
			return "", fmt.Errorf("reload stopped at worker %d (%d of %d replaced): %w; the old worker keeps serving",
				sl.id, i, len(sls), err)
		}
	}
	return fmt.Sprintf("reloaded %s", describe(sls)), nil
}

// reloadSlot replaces one worker's process by a new one.
func (s *Supervisor) reloadSlot(ctx context.Context, sl *slot) error {
	s.mu.Lock()
	old := sl.cur
	sl.stopped = false
	s.cancelRetryLocked(sl)
	s.mu.Unlock()
	inst, err := s.spawn(sl) // now the slot's current process: old's exit is no crash
	if err != nil {
		s.mu.Lock()
		sl.cur = old
		s.mu.Unlock()
		return err
	}
	if err := s.waitReady(ctx, inst); err != nil {
		s.stopInstance(inst, 0)
		s.mu.Lock()
		sl.cur = old
		if old != nil {
			sl.status = control.StatusOnline
		}
		s.mu.Unlock()
		return err
	}
	inst.routable.Store(true)
	s.mu.Lock()
	sl.status = control.StatusOnline
	sl.restarts++
	s.mu.Unlock()
	if old != nil {
		s.stopInstance(old, 0) // not routable any more; it drains
	}
	return nil
}

// ReplaceOne replaces a worker's process (zero downtime), if inst is
// still its current one.
func (s *Supervisor) ReplaceOne(ctx context.Context, inst *instance) error {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	sl := s.slots[inst.id]
	current := sl != nil && sl.cur == inst
	s.mu.Unlock()
	if !current {
		return nil
	}
	return s.reloadSlot(ctx, sl)
}

// Scale sets the number of workers: new ones get the next ids, removed
// ones are the highest ids, each drained.
func (s *Supervisor) Scale(ctx context.Context, req control.ScaleRequest) (string, error) {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.slots))
	s.mu.Unlock()
	n := len(ids)
	want := req.N
	switch req.Mode {
	case "add":
		want = n + req.N
	case "sub":
		want = n - req.N
		if want < 1 {
			return "", badRequestf("scale -%d would leave %d workers; scale to 0 explicitly with `frutos scale 0`", req.N, want)
		}
	case "set":
	default:
		return "", badRequestf("unknown scale mode %q", req.Mode)
	}
	if want < 0 {
		return "", badRequestf("cannot scale to %d workers", want)
	}
	if want > n {
		if err := ThisMachine().checkCapacity(want); err != nil {
			return "", err
		}
	}
	switch {
	case want > n:
		next := 0
		if n > 0 {
			next = ids[n-1] + 1
		}
		var add []int
		for i := range want - n {
			add = append(add, next+i)
		}
		if err := s.startNew(ctx, add); err != nil {
			return "", fmt.Errorf("scale up: %w", err)
		}
		return fmt.Sprintf("scaled from %d to %s (added %v)", n, plural.Count(want, "worker", "workers"), add), nil
	case want < n:
		remove := ids[want:]
		s.remove(ctx, remove)
		return fmt.Sprintf("scaled from %d to %s (removed %v, drained)", n, plural.Count(want, "worker", "workers"), remove), nil
	}
	return "already " + plural.Count(n, "worker", "workers"), nil
}

// Delete stops every worker and empties the table.
func (s *Supervisor) Delete(ctx context.Context) (string, error) {
	s.ops.Lock()
	defer s.ops.Unlock()
	n := s.Count()
	s.removeAll(ctx)
	return "deleted " + plural.Count(n, "worker", "workers"), nil
}

func (s *Supervisor) removeAll(ctx context.Context) {
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.slots))
	s.mu.Unlock()
	s.remove(ctx, ids)
}

// releaseAdopted lets go of the adopted workers of a start that failed:
// they keep their connections, orphans again, for the next daemon.
func (s *Supervisor) releaseAdopted() {
	for _, inst := range s.router.all() {
		if inst.adopted != nil {
			inst.release()
		}
	}
}

// remove stops the workers of ids (draining them) and drops their slots.
func (s *Supervisor) remove(ctx context.Context, ids []int) {
	var sls []*slot
	s.mu.Lock()
	for _, id := range ids {
		if sl := s.slots[id]; sl != nil {
			sl.stopped = true
			s.cancelRetryLocked(sl)
			if sl.cur != nil {
				sl.cur.routable.Store(false)
				sl.status = control.StatusStopping
			}
			sls = append(sls, sl)
		}
	}
	s.mu.Unlock()
	parallel(sls, func(sl *slot) {
		s.mu.Lock()
		inst := sl.cur
		s.mu.Unlock()
		if inst != nil {
			s.stopInstance(inst, 0)
		}
		s.mu.Lock()
		delete(s.slots, sl.id)
		s.mu.Unlock()
		_ = sl.out.Close()
		_ = sl.err.Close()
	})
}

// Shutdown stops every worker gracefully (used by kill and on daemon exit)
// and waits for the watchers.
func (s *Supervisor) Shutdown(ctx context.Context) {
	s.ops.Lock()
	defer s.ops.Unlock()
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.removeAll(ctx)
	// adopted workers that were routed but had no slot (they drain)
	parallel(s.router.all(), func(inst *instance) { s.stopInstance(inst, 0) })
	s.wg.Wait()
}

func (s *Supervisor) targets(t control.Target) ([]*slot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.slots) == 0 {
		return nil, notFoundf("no workers; start them with `frutos start`")
	}
	if t.All {
		var out []*slot
		for _, id := range slices.Sorted(maps.Keys(s.slots)) {
			out = append(out, s.slots[id])
		}
		return out, nil
	}
	sl := s.slots[t.ID]
	if sl == nil {
		return nil, badRequestf("no worker %d (workers: %v)", t.ID, slices.Sorted(maps.Keys(s.slots)))
	}
	return []*slot{sl}, nil
}

// parallel runs fn on every element at once and waits for them all.
func parallel[T any](xs []T, fn func(T)) {
	var wg sync.WaitGroup
	for _, x := range xs {
		wg.Go(func() { fn(x) })
	}
	wg.Wait()
}

func (s *Supervisor) setStatus(sl *slot, status, lastExit string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl.status = status
	if lastExit != "" {
		sl.lastExit = lastExit
	}
}

// Workers is the process table for status and monit.
func (s *Supervisor) Workers() []control.Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]control.Worker, 0, len(s.slots))
	for _, id := range slices.Sorted(maps.Keys(s.slots)) {
		sl := s.slots[id]
		w := control.Worker{ID: id, Status: sl.status, Restarts: sl.restarts, Generation: sl.gen, LastExit: sl.lastExit}
		if inst := sl.cur; inst != nil && inst.pid != 0 {
			w.PID = inst.pid
			w.Adopted = inst.adopted != nil
			w.UptimeSec = time.Since(inst.started).Seconds()
			w.CPU = float64(inst.cpu.Load()) / 100
			w.Memory = inst.rss.Load()
			w.EventsPerS = float64(inst.perSecond.Load()) / 100
			w.Ready = inst.ready.Load()
			if st := inst.stats.Load(); st != nil {
				w.Connections = st.Connections
				w.Transports = st.Transports
				w.Delivered = st.Delivered
				w.Draining = st.Draining
				w.Redis = st.Redis.State
			}
		}
		out = append(out, w)
	}
	return out
}

// fetchStats polls the worker's stats, waiting one second at most.
func (inst *instance) fetchStats(ctx context.Context) (*workerproto.Polled, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return inst.client.Stats(ctx)
}

func (inst *instance) closeSender() {
	inst.senderMu.Lock()
	defer inst.senderMu.Unlock()
	if inst.sender != nil {
		inst.sender.Close()
		inst.sender = nil
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func describe(sls []*slot) string {
	if len(sls) == 1 {
		return fmt.Sprintf("worker %d", sls[0].id)
	}
	return plural.Count(len(sls), "worker", "workers")
}
