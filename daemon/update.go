package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/redisctl"
)

// `frutos update`: the running daemon replaces itself with the binary
// found now, in place, dropping nothing. The old daemon starts the new one
// (`frutos daemon --takeover`) with its listening sockets and the home's
// lock as inherited descriptors and its state on stdin; the new one adopts
// the workers (scanWorkers: the old daemon's run directory is one of its
// predecessors'), answers on the control socket and the public port, and
// says so on a pipe. Only then does the old one stop accepting, finish the
// requests it is proxying, and exit without stopping its workers: the
// listening sockets never close, so no connection attempt is refused, and
// the workers (held by the new daemon's leases) keep every connection. If
// the new daemon fails, it exits and the old one carries on as before.
//
// The descriptors of `frutos daemon --takeover`, a contract between two
// versions of this file:
const (
	takeoverLockFD    = 3 // the home's lock (daemon.lock, flock held: the same open file)
	takeoverControlFD = 4 // the control socket's listener
	takeoverReadyFD   = 5 // a pipe: the new daemon writes one takeoverReady line, then closes it
	takeoverFrontFD   = 6 // the public port's listener
	takeoverEmitFD    = 7 // the emit endpoint's listener, when takeoverState.Emit
)

// takeoverState is what the old daemon writes on the new one's stdin.
// Fields may be added, never changed.
type takeoverState struct {
	Version int    `json:"version"`
	Home    string `json:"home"`
	OldPID  int    `json:"old_pid"`
	// Config is the app's resolved configuration (secrets included: it
	// travels through a pipe between two processes of the same user).
	Config json.RawMessage     `json:"config"`
	Load   control.LoadOptions `json:"load"`
	// Slots is the process table: ids, and which are stopped on purpose.
	Slots []takeoverSlot `json:"slots"`
	// EmbeddedRedis is the address of the embedded Redis, if the app
	// uses one: the old daemon stops it and the new one starts it again
	// there, so the workers' URL stays right.
	EmbeddedRedis string `json:"embedded_redis,omitempty"`
	// Emit says the emit endpoint's listener (emit.listen) is passed too.
	Emit bool `json:"emit,omitempty"`
}

type takeoverSlot struct {
	ID       int  `json:"id"`
	Restarts int  `json:"restarts"`
	Stopped  bool `json:"stopped"`
}

// takeoverReady is the new daemon's one line on the ready pipe.
type takeoverReady struct {
	PID     int    `json:"pid"`
	Adopted int    `json:"adopted"`
	Error   string `json:"error,omitempty"`
}

// takeoverVersion is the version of takeoverState this file writes and reads.
const takeoverVersion = 1

// updateTimeout bounds how long the old daemon waits for the new one.
const updateTimeout = 2 * time.Minute

// Update hands the daemon over to a new one run from the binary found now
// (Options.Executable), as described above. On success the caller answers
// the request; the daemon then exits (Run returns) with its workers alive.
func (d *Daemon) Update(ctx context.Context) (control.UpdateResult, error) {
	d.opMu.Lock()
	a := d.currentApp()
	if a == nil {
		d.opMu.Unlock()
		return control.UpdateResult{}, notFoundf("no app runs: nothing to hand over; `frutos kill`, then `frutos start` runs the new binary")
	}
	d.mu.Lock()
	ctl := d.ctl
	d.mu.Unlock()
	if ctl == nil {
		d.opMu.Unlock()
		return control.UpdateResult{}, conflictf("the daemon is not serving yet")
	}
	// No operation and no crash restart from here on: the new daemon
	// must find the table as it is (it is told so below).
	d.sup.ops.Lock()
	res, err := d.handOver(ctx, a, ctl)
	if err != nil {
		d.sup.ops.Unlock()
		d.opMu.Unlock()
		return res, err
	}
	// Handed over: keep both locks (no operation may start here any
	// more) and exit.
	d.sup.abandon()
	d.mu.Lock()
	d.handedOver = true
	d.mu.Unlock()
	d.log.Info("daemon handed over; exiting, its workers live on", "new_pid", res.NewPID, "adopted", res.Adopted)
	notifySystemd(fmt.Sprintf("MAINPID=%d", res.NewPID))
	d.Kill()
	return res, nil
}

func (d *Daemon) handOver(ctx context.Context, a *app, ctl *net.UnixListener) (control.UpdateResult, error) {
	exe, err := d.opts.Executable()
	if err != nil {
		return control.UpdateResult{}, fmt.Errorf("find the frutos binary: %w", err)
	}
	raw, err := json.Marshal(a.cfg)
	if err != nil {
		return control.UpdateResult{}, err
	}
	state := takeoverState{Version: takeoverVersion, Home: d.opts.Home, OldPID: os.Getpid(), Config: raw, Load: a.load,
		Slots: d.sup.table()}
	ctlFile, err := dupListener(ctl)
	if err != nil {
		return control.UpdateResult{}, fmt.Errorf("the control socket's descriptor: %w", err)
	}
	defer ctlFile.Close()
	frontFile, err := a.front.file()
	if err != nil {
		return control.UpdateResult{}, fmt.Errorf("the public port's descriptor: %w", err)
	}
	defer frontFile.Close()
	emitFile, err := a.emit.file()
	if err != nil {
		return control.UpdateResult{}, fmt.Errorf("the emit endpoint's descriptor: %w", err)
	}
	if emitFile != nil {
		defer emitFile.Close()
		state.Emit = true
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return control.UpdateResult{}, err
	}
	defer readyR.Close()

	d.mu.Lock()
	embedded := d.embedded
	if embedded != nil && a.rstat.Embedded {
		state.EmbeddedRedis = embedded.Addr()
		d.embedded = nil // the new daemon starts it again at this address
	} else {
		embedded = nil
	}
	d.mu.Unlock()
	if embedded != nil {
		_ = embedded.Close()
	}
	restoreEmbedded := func() {
		if state.EmbeddedRedis == "" {
			return
		}
		e, err := redisctl.StartEmbeddedAt(d.opts.Home, state.EmbeddedRedis)
		if err != nil {
			d.log.Error("could not start the embedded Redis again after a failed update", "err", err)
			return
		}
		d.mu.Lock()
		d.embedded = e
		d.mu.Unlock()
	}
	stdin, err := json.Marshal(state)
	if err != nil {
		readyW.Close()
		restoreEmbedded()
		return control.UpdateResult{}, err
	}

	cmd := exec.Command(exe, "daemon", "--takeover")
	cmd.Env = append(os.Environ(), "FRUTOS_HOME="+d.opts.Home)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // the daemon's log goes on where it went
	cmd.ExtraFiles = []*os.File{d.lock.f, ctlFile, readyW, frontFile}
	if emitFile != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, emitFile)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		readyW.Close()
		restoreEmbedded()
		return control.UpdateResult{}, fmt.Errorf("start the new daemon %s: %w", exe, err)
	}
	readyW.Close()
	d.log.Info("update: new daemon started; handing over", "new_pid", cmd.Process.Pid, "binary", exe)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when we exit, or it does

	answer := make(chan takeoverReady, 1)
	go func() {
		var r takeoverReady
		line, err := bufio.NewReader(readyR).ReadBytes('\n')
		if err != nil {
			r.Error = "it exited before it was ready (see the daemon's log)"
		} else if err := json.Unmarshal(line, &r); err != nil {
			r.Error = fmt.Sprintf("its answer %q: %v", line, err)
		}
		answer <- r
	}()
	var r takeoverReady
	select {
	case r = <-answer:
	case <-time.After(updateTimeout):
		r.Error = fmt.Sprintf("not ready within %v", updateTimeout)
	case <-ctx.Done():
		r.Error = ctx.Err().Error()
	}
	if r.Error != "" || r.PID != cmd.Process.Pid {
		_ = cmd.Process.Kill()
		<-exited
		// its leases are gone with it; our workers never stopped
		restoreEmbedded()
		return control.UpdateResult{}, fmt.Errorf("update: the new daemon (%s, pid %d) failed: %s; this daemon (pid %d) carries on",
			exe, cmd.Process.Pid, r.Error, os.Getpid())
	}
	return control.UpdateResult{OldPID: os.Getpid(), NewPID: r.PID, Adopted: r.Adopted,
		Message: fmt.Sprintf("daemon updated: pid %d replaced by pid %d (%s), which adopted %s; no connection dropped",
			os.Getpid(), r.PID, exe, plural.Count(r.Adopted, "worker", "workers"))}, nil
}

// table is the process table for a takeover.
func (s *Supervisor) table() []takeoverSlot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]takeoverSlot, 0, len(s.slots))
	for id, sl := range s.slots {
		out = append(out, takeoverSlot{ID: id, Restarts: sl.restarts, Stopped: sl.stopped})
	}
	return out
}

// abandon leaves the workers to the daemon that took over: nothing is
// restarted or stopped from here on.
func (s *Supervisor) abandon() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for _, sl := range s.slots {
		s.cancelRetryLocked(sl)
	}
}

// Takeover is the new daemon of an update (`frutos daemon --takeover`):
// it reads the old daemon's state on stdin and its descriptors (above).
// Run then adopts the app and answers the old daemon.
func Takeover(opts Options) (*Daemon, error) {
	var state takeoverState
	ready := os.NewFile(takeoverReadyFD, "takeover-ready")
	fail := func(err error) (*Daemon, error) {
		if ready != nil {
			b, _ := json.Marshal(takeoverReady{PID: os.Getpid(), Error: err.Error()})
			_, _ = ready.Write(append(b, '\n'))
			ready.Close()
		}
		return nil, err
	}
	if ready == nil {
		return fail(errors.New("takeover: no ready pipe (descriptor 5): run by `frutos update`, not by hand"))
	}
	dec := json.NewDecoder(os.Stdin)
	if err := dec.Decode(&state); err != nil {
		return fail(fmt.Errorf("takeover: read the old daemon's state: %w", err))
	}
	if state.Version != takeoverVersion {
		return fail(fmt.Errorf("takeover: state version %d; this frutos reads %d", state.Version, takeoverVersion))
	}
	opts.Home = state.Home // the old daemon's, whatever the environment says
	lockFile := os.NewFile(takeoverLockFD, "daemon.lock")
	if lockFile == nil {
		return fail(errors.New("takeover: no lock descriptor"))
	}
	// The old daemon's lock: the same open file, so this succeeds only if
	// it is really the lock it holds.
	if err := syscall.Flock(takeoverLockFD, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(fmt.Errorf("takeover: the inherited descriptor is not the home's lock: %w", err))
	}
	ctlFile := os.NewFile(takeoverControlFD, "control")
	ctl, err := net.FileListener(ctlFile)
	ctlFile.Close()
	if err != nil {
		return fail(fmt.Errorf("takeover: the control socket: %w", err))
	}
	frontFile := os.NewFile(takeoverFrontFD, "front")
	front, err := net.FileListener(frontFile)
	frontFile.Close()
	if err != nil {
		ctl.Close()
		return fail(fmt.Errorf("takeover: the public port: %w", err))
	}
	var emit net.Listener
	if state.Emit {
		emitFile := os.NewFile(takeoverEmitFD, "emit")
		emit, err = net.FileListener(emitFile)
		emitFile.Close()
		if err != nil {
			ctl.Close()
			front.Close()
			return fail(fmt.Errorf("takeover: the emit endpoint: %w", err))
		}
	}
	d, err := newDaemon(opts, &homeLock{f: lockFile, pidFile: pidPath(opts.Home)})
	if err != nil {
		ctl.Close()
		front.Close()
		if emit != nil {
			emit.Close()
		}
		return fail(err)
	}
	d.takeover = &takeover{state: state, ctl: ctl.(*net.UnixListener), front: front, emit: emit, ready: ready}
	return d, nil
}

// takeover is what Run needs to take over from the old daemon.
type takeover struct {
	state takeoverState
	ctl   *net.UnixListener
	front net.Listener
	emit  net.Listener // nil without an emit endpoint
	ready *os.File
}

// resume adopts the old daemon's app: its configuration, Redis, public
// port (the inherited listener) and workers, then answers it.
func (d *Daemon) resume(ctx context.Context, t *takeover) error {
	answer := func(r takeoverReady) {
		r.PID = os.Getpid()
		b, _ := json.Marshal(r)
		_, _ = t.ready.Write(append(b, '\n'))
		t.ready.Close()
	}
	adopted, err := d.resumeApp(ctx, t)
	if err != nil {
		answer(takeoverReady{Error: err.Error()})
		return err
	}
	if err := d.lock.writePID(); err != nil {
		d.log.Warn("could not write the pid file", "err", err)
	}
	answer(takeoverReady{Adopted: adopted})
	d.log.Info("took over from the old daemon", "old_pid", t.state.OldPID, "adopted", adopted)
	return nil
}

func (d *Daemon) resumeApp(ctx context.Context, t *takeover) (int, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	var embedded *redisctl.Embedded
	closeAll := func() {
		t.front.Close()
		if t.emit != nil {
			t.emit.Close()
		}
		if embedded != nil {
			_ = embedded.Close()
		}
	}
	cfg, err := configFrom(t.state.Config)
	if err != nil {
		closeAll()
		return 0, err
	}
	if t.state.EmbeddedRedis != "" {
		if embedded, err = redisctl.StartEmbeddedAt(d.opts.Home, t.state.EmbeddedRedis); err != nil {
			closeAll()
			return 0, err
		}
	}
	target, err := redisctl.Open(cfg.Redis.URL)
	if err != nil {
		closeAll()
		return 0, err
	}
	emit, err := startEmitAPI(cfg, target.Client, d.log, t.emit)
	t.emit = nil // startEmitAPI owns it now
	if err != nil {
		target.Close()
		closeAll()
		return 0, err
	}
	logs, err := d.opts.Logs(cfg)
	if err != nil {
		emit.close()
		target.Close()
		closeAll()
		return 0, err
	}
	d.mu.Lock()
	d.logs = logs
	d.embedded = embedded
	d.mu.Unlock()
	front := frontDoorOn(t.front, d.router, d.log.With("component", "front-door"))
	plan := startPlan{}
	for _, sl := range t.state.Slots {
		if sl.Stopped {
			plan.stopped = append(plan.stopped, sl.ID)
		} else {
			plan.ids = append(plan.ids, sl.ID)
		}
	}
	plan.found, plan.floor = scanWorkers(ctx, d.opts.Home, d.sup.runDir, d.log)
	plan.serve = func() { go front.Serve() }
	adopted := len(plan.found)
	if err := d.sup.Start(ctx, cfg, plan); err != nil {
		emit.close()
		front.Close()
		target.Close()
		d.mu.Lock()
		d.embedded = nil
		d.mu.Unlock()
		if embedded != nil {
			_ = embedded.Close()
		}
		return 0, err
	}
	d.sup.keepRestarts(t.state.Slots)
	port := cfg.Port
	if addr, ok := front.Addr().(*net.TCPAddr); ok {
		port = addr.Port
	}
	d.mu.Lock()
	d.app = &app{cfg: cfg, load: t.state.Load, front: front, redis: target,
		rstat: control.Redis{URL: target.URL, Up: true, Embedded: embedded != nil}, emit: emit,
		hosts: startRegistry(target.Client, routableAddr(target), cfg, port, d.opts.Version, d.Status, d.log)}
	d.mu.Unlock()
	return adopted, nil
}

// keepRestarts carries the old daemon's restart counts over.
func (s *Supervisor) keepRestarts(slots []takeoverSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ts := range slots {
		if sl := s.slots[ts.ID]; sl != nil {
			sl.restarts = max(sl.restarts, ts.Restarts)
		}
	}
}

// notifySystemd sends state to systemd's notification socket, if the
// daemon runs under systemd with one (NotifyAccess=main in the unit of
// `frutos startup`): MAINPID=<pid> makes the new daemon of an update the
// unit's main process, so that systemd neither thinks the service ended
// nor loses track of it.
func notifySystemd(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return
	}
	defer c.Close()
	_, _ = c.Write([]byte(state))
}
