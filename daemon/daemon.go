// Package daemon is the supervisor: it keeps N worker processes alive,
// serves their public port (the front door), answers the CLI on a
// owner-only unix socket, collects per-worker CPU, memory and connection
// counts, hosts the embedded Redis in development, and saves and restores
// the process list.
//
// Its two contracts live in packages of their own, so that the other side
// compiles against the same definitions: with the CLI and monit, the
// control API (package control: routes, requests, the typed client; served
// by api.go); with the workers, internal/workerproto (the worker's command
// line, tags and session ids, the stats it polls, the liveness pipe). It
// never imports the worker's package (cluster), nor does cluster import it.
//
// Files: daemon.go (the Daemon: the home's lock, Run, start, reload,
// delete, status), supervisor.go (the process table: spawn, crash restarts
// with backoff, stop, scale, rolling reload), frontdoor.go and router.go
// (the public port: sessions routed by the tag in their id, websockets
// handed over), stats.go (the per-second sampling), api.go (the control
// API's handlers), registry.go (the fleet heartbeat in Redis), dump.go
// (save and resurrect), logfiles.go (the workers' log writers), adopt.go
// (taking over the live workers of a daemon that died or was updated:
// found, verified, leased, watched through a pidfd), update.go (`frutos
// update`: handing the listeners, the lock and the workers to a new
// daemon).
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/internal/workerproto"
	"github.com/frutos/frutos/redisctl"
)

// Options configures a Daemon.
type Options struct {
	// Home is the state home: control socket, pid file, dump.json, logs.
	Home string
	// Version is reported by status.
	Version string
	// Executable returns the binary to run workers from; it is asked at
	// every spawn, so a reload picks up a replaced binary. Default:
	// os.Executable.
	Executable func() (string, error)
	// Logs opens the workers' log files for a configuration. Default:
	// WorkerLogs.
	Logs func(cfg *configs.Config) (LogFiles, error)
	// Logger is the daemon's own log.
	Logger *slog.Logger
}

// Daemon is one supervisor process for one state home.
type Daemon struct {
	opts    Options
	log     *slog.Logger
	lock    *homeLock
	started time.Time
	sup     *Supervisor
	router  *router

	opMu     sync.Mutex // serializes start, reload, delete and shutdown
	mu       sync.Mutex // guards the fields below; held briefly
	app      *app
	embedded *redisctl.Embedded
	logs     LogFiles
	// handedOver: `frutos update` gave everything to a new daemon; Run
	// exits leaving the workers, the sockets and the lock to it.
	handedOver bool

	ctl      *net.UnixListener // the control socket, once Run listens
	takeover *takeover         // set by Takeover: Run resumes the old daemon's app

	stopOnce sync.Once
	stop     chan struct{} // closed by kill
	statsMu  sync.Mutex
	self     selfStats
}

// app is what runs: its configuration, how it was loaded, its front door.
type app struct {
	cfg   *configs.Config
	load  control.LoadOptions
	front *FrontDoor
	redis *redisctl.Target
	rstat control.Redis
	hosts *registry   // the fleet heartbeat
	emit  *emitServer // POST /v1/emit (emit.listen), or nil
}

// close stops what the app holds. Call it without d.mu: the heartbeat
// reads the status.
func (a *app) close() {
	if a == nil {
		return
	}
	a.hosts.stop()
	a.emit.close()
	a.front.Close()
	a.redis.Close()
}

// New claims the home (a second daemon for it fails with
// ErrAlreadyRunning). Run serves it.
func New(opts Options) (*Daemon, error) {
	if opts.Home == "" {
		return nil, errors.New("daemon.New: Home is required")
	}
	lock, err := lockHome(opts.Home)
	if err != nil {
		return nil, err
	}
	return newDaemon(opts, lock)
}

// newDaemon is a daemon holding lock (its own, or the one an old daemon
// handed over).
func newDaemon(opts Options, lock *homeLock) (*Daemon, error) {
	if opts.Logs == nil {
		opts.Logs = WorkerLogs
	}
	if opts.Executable == nil {
		opts.Executable = os.Executable
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	log := opts.Logger.With("component", "daemon", "pid", os.Getpid())
	d := &Daemon{opts: opts, log: log, lock: lock, started: time.Now(), stop: make(chan struct{})}
	runDir, err := newRunDir(opts.Home)
	if err != nil {
		lock.release()
		return nil, err
	}
	d.sup = newSupervisor(opts.Executable, runDir, lazyLogs{d}, log)
	d.router = d.sup.router
	return d, nil
}

// newRunDir makes the directory of this daemon's worker sockets:
// run/<pid>, its own, because workers of a daemon that died may still be
// serving (orphans waiting to be adopted, or draining), and their
// generations may start again at 1 here: sharing names, an old worker's
// exit would unlink a new worker's socket. The run directories of earlier
// daemons stay while a socket is in them: StartApp adopts their workers
// and removes what is stale (scanWorkers).
func newRunDir(home string) (string, error) {
	parent := workerproto.RunRoot(home)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	if ents, err := os.ReadDir(parent); err == nil {
		for _, e := range ents {
			dir := filepath.Join(parent, e.Name())
			if socks, _ := filepath.Glob(filepath.Join(dir, "*.sock")); len(socks) == 0 {
				_ = os.RemoveAll(dir)
			}
		}
	}
	dir := workerproto.RunDir(home, os.Getpid())
	err := os.Mkdir(dir, 0o700)
	for n := 1; errors.Is(err, os.ErrExist) && n < 100; n++ {
		// a dead daemon had our pid and left live workers behind
		dir = fmt.Sprintf("%s.%d", workerproto.RunDir(home, os.Getpid()), n)
		err = os.Mkdir(dir, 0o700)
	}
	return dir, err
}

// Run serves the control socket until ctx ends or a kill request, then
// stops every worker gracefully and releases the home. After an update
// (handed over) it exits leaving the workers, the sockets and the home's
// lock to the new daemon. A daemon of Takeover first resumes the old
// daemon's app, and returns its error if it cannot.
func (d *Daemon) Run(ctx context.Context) error {
	sock := filepath.Join(d.opts.Home, control.SocketName)
	var ul *net.UnixListener
	if t := d.takeover; t != nil {
		ul = t.ctl
		if err := d.resume(ctx, t); err != nil {
			ul.SetUnlinkOnClose(false)
			ul.Close()
			d.lock.f.Close() // the old daemon holds the lock still
			return fmt.Errorf("take over: %w", err)
		}
	} else {
		_ = os.Remove(sock) // a crashed daemon's socket: we hold the lock now
		l, err := net.Listen("unix", sock)
		if err != nil {
			d.lock.release()
			return fmt.Errorf("listen on the control socket %s: %w", sock, err)
		}
		ul = l.(*net.UnixListener)
		if err := os.Chmod(sock, 0o600); err != nil {
			ul.Close()
			d.lock.release()
			return err
		}
	}
	// Removed by hand below: after an update the socket is the new
	// daemon's, and closing our descriptor must not unlink it.
	ul.SetUnlinkOnClose(false)
	d.mu.Lock()
	d.ctl = ul
	d.mu.Unlock()
	l := ownerOnly{Listener: ul, uid: os.Getuid(), refused: func(uid int) {
		d.log.Warn("control request from another user refused", "uid", uid)
	}}
	srv := &http.Server{Handler: d.routes(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	d.log.Info("daemon started", "home", d.opts.Home, "version", d.opts.Version)

	sampler, stopSampler := context.WithCancel(context.Background())
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		d.sample(sampler)
	}()

	select {
	case <-ctx.Done():
		d.log.Info("signal received: stopping workers")
	case <-d.stop:
	case err := <-served:
		d.log.Error("control socket failed", "err", err)
	}
	d.mu.Lock()
	handedOver := d.handedOver
	d.mu.Unlock()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if handedOver {
		// The new daemon answers from now on: stop accepting control
		// requests first (the update's answer is sent), then the
		// public port's.
		_ = srv.Shutdown(sctx)
		d.leaveApp()
		stopSampler()
		<-samplerDone
		_ = d.lock.f.Close() // the new daemon's descriptor holds the lock on
		d.log.Info("daemon exited; the new one serves")
		return nil
	}
	d.shutdownApp()
	stopSampler()
	<-samplerDone
	_ = srv.Shutdown(sctx)
	_ = os.Remove(sock)
	d.lock.release()
	d.log.Info("daemon stopped")
	return nil
}

// leaveApp is the end of a daemon that handed over: it stops accepting on
// the public port (the new daemon accepts on the same socket), lets the
// requests it is proxying finish (a long poll ends within the ping
// interval), and lets go of Redis, leaving the workers running.
func (d *Daemon) leaveApp() {
	d.mu.Lock()
	a := d.takeAppLocked()
	d.mu.Unlock()
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { a.emit.leave(ctx) })
	a.front.Shutdown(ctx)
	wg.Wait()
	a.hosts.stop()
	a.redis.Close()
}

// Kill asks Run to stop the workers and return.
func (d *Daemon) Kill() { d.stopOnce.Do(func() { close(d.stop) }) }

// StartApp starts the app with cfg: the embedded Redis if none is
// configured (development), a Redis check, the public port, then the
// workers, ready. Any failure undoes what was done.
func (d *Daemon) StartApp(ctx context.Context, cfg *configs.Config, load control.LoadOptions) error {
	if err := ThisMachine().checkCapacity(cfg.Instances.Count()); err != nil {
		return err
	}
	// The CLI waits this long, and a bit more: a start that cannot end in
	// time is undone here, rather than going on after the CLI gave up.
	ctx, cancel := context.WithTimeout(ctx, control.StartTimeout(cfg.Restart.ListenTimeout.Duration()))
	defer cancel()
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if err := d.refuseRunningLocked(); err != nil {
		return err
	}
	d.mu.Lock()
	old := d.takeAppLocked() // after a delete: start afresh with the new settings
	err := d.prepareRedisLocked(cfg)
	d.mu.Unlock()
	old.close()
	if err != nil {
		return err
	}
	target, err := redisctl.Open(cfg.Redis.URL, redisctl.FailFast())
	if err != nil {
		return &control.Error{Code: control.CodeBadRequest, Message: err.Error()}
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = target.Ping(pctx, 1)
	cancel()
	if err != nil {
		target.Close()
		return &control.Error{Code: control.CodeRedisUnavailable, Message: redisUnreachable(target.URL, err)}
	}
	logs, err := d.opts.Logs(cfg)
	if err != nil {
		target.Close()
		return err
	}
	d.mu.Lock()
	d.logs = logs
	d.mu.Unlock()
	front, err := listenFrontDoor(net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), d.router, d.log.With("component", "front-door"))
	if err != nil {
		target.Close()
		return &control.Error{Code: control.CodeConflict, Message: err.Error()}
	}
	emit, err := startEmitAPI(cfg, target.Client, d.log, nil)
	if err != nil {
		front.Close()
		target.Close()
		return &control.Error{Code: control.CodeConflict, Message: err.Error()}
	}
	// The workers of an earlier daemon of this home that died (or was
	// updated) are adopted first, and the front door opens once they are
	// routed: their clients' polling requests find them again.
	plan := plainStart(cfg.Instances.Count())
	plan.found, plan.floor = scanWorkers(ctx, d.opts.Home, d.sup.runDir, d.log)
	plan.serve = func() { go front.Serve() }
	if err := d.sup.Start(ctx, cfg, plan); err != nil {
		emit.close()
		front.Close()
		target.Close()
		return err
	}
	if len(plan.found) > 0 {
		d.log.Info("adopted the workers of an earlier daemon", "workers", len(plan.found))
	}
	port := cfg.Port
	if addr, ok := front.Addr().(*net.TCPAddr); ok {
		port = addr.Port
	}
	d.mu.Lock()
	embedded := d.embedded != nil && cfg.Redis.URL == d.embedded.URL()
	d.app = &app{cfg: cfg, load: load, front: front, redis: target,
		rstat: control.Redis{URL: target.URL, Up: true, Embedded: embedded}, emit: emit,
		hosts: startRegistry(target.Client, routableAddr(target), cfg, port, d.opts.Version, d.Status, d.log)}
	d.mu.Unlock()
	d.log.Info("app started", "app", cfg.App, "env", cfg.Env, "port", front.Addr().String(), "workers", cfg.Instances.Count())
	return nil
}

// refuseRunningLocked refuses a start while the app has workers (opMu
// held).
func (d *Daemon) refuseRunningLocked() error {
	n := d.sup.Count()
	if n == 0 {
		return nil
	}
	a := d.currentApp()
	return conflictf("already running %s of %s on port %d; use restart, reload or scale, or delete first",
		plural.Count(n, "worker", "workers"), a.cfg.App, a.cfg.Port)
}

// CheckStart says what a start with cfg would do (RouteStartCheck), or
// refuses it as the start would, in the same order, and starts nothing:
// start the stopped workers again (resumeStopped), or start the app if
// the machine can hold cfg's workers and none runs. The start checks
// again.
func (d *Daemon) CheckStart(cfg *configs.Config) (control.StartPlan, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	if ids := d.stoppedLocked(); len(ids) > 0 {
		return control.StartPlan{Resume: ids}, nil
	}
	if err := ThisMachine().checkCapacity(cfg.Instances.Count()); err != nil {
		return control.StartPlan{}, err
	}
	return control.StartPlan{}, d.refuseRunningLocked()
}

// stoppedLocked lists the workers a start would start again: those that
// `stop` stopped or that ended errored, when an app is there (opMu held).
func (d *Daemon) stoppedLocked() []int {
	if d.currentApp() == nil {
		return nil
	}
	var ids []int
	for _, w := range d.sup.Workers() {
		if w.Status == control.StatusStopped || w.Status == control.StatusErrored {
			ids = append(ids, w.ID)
		}
	}
	return ids
}

// resumeStopped starts again the workers that `stop` stopped (or that
// ended errored), as PM2's start does; resumed is false when the app has
// no workers (start it) or none stopped (it already runs). They run the
// app's configuration: reload applies a new one.
func (d *Daemon) resumeStopped(ctx context.Context) (msg string, resumed bool, err error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	ids := d.stoppedLocked()
	if len(ids) == 0 {
		return "", false, nil
	}
	a := d.currentApp()
	var errs []error
	for _, id := range ids {
		if _, err := d.sup.Restart(ctx, control.Target{ID: id}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", true, err
	}
	return fmt.Sprintf("started %s %v of %s again (stopped before; `frutos reload` applies a new configuration)",
		plural.Count(len(ids), "stopped worker", "stopped workers"), ids, a.cfg.App), true, nil
}

// Token signs a test JWT with the secret the app's workers verify.
func (d *Daemon) Token(req control.TokenRequest) (control.Token, error) {
	a := d.currentApp()
	if a == nil {
		return control.Token{}, notFoundf("no app started: its workers' secret is not known")
	}
	d.mu.Lock()
	cfg := a.cfg
	d.mu.Unlock()
	secret, generated, err := jwtauth.ResolveSecret(cfg)
	if err != nil {
		return control.Token{}, err
	}
	tok, err := jwtauth.Mint(secret, req.Sub, req.Role, time.Duration(req.TTLSec*float64(time.Second)))
	if err != nil {
		return control.Token{}, badRequestf("%v", err)
	}
	source := "the configured secret (" + cfg.Auth.SecretEnv + ")"
	if generated {
		source = "development secret " + filepath.Join(cfg.Home, jwtauth.DevSecretFile)
	}
	return control.Token{Token: tok, Secret: source}, nil
}

// redisUnreachable says that Redis at url failed err, naming url once
// (a *redisctl.Error names it too).
func redisUnreachable(url string, err error) string {
	var re *redisctl.Error
	if errors.As(err, &re) {
		return fmt.Sprintf("Redis unreachable at %s: %s", re.URL, re.Reason())
	}
	return fmt.Sprintf("Redis unreachable at %s: %v", url, err)
}

func (d *Daemon) currentApp() *app {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.app
}

// prepareRedisLocked starts the embedded Redis when the configuration has
// no URL (configs refuses that in production) and points cfg at it.
func (d *Daemon) prepareRedisLocked(cfg *configs.Config) error {
	if cfg.Redis.URL != "" {
		return nil
	}
	if cfg.Env == configs.Production {
		return badRequestf("production needs a Redis URL (REDIS_URL or redis.url); the embedded Redis is for development")
	}
	if d.embedded == nil {
		e, err := redisctl.StartEmbedded(d.opts.Home)
		if err != nil {
			return err
		}
		d.embedded = e
		d.log.Info("embedded Redis started (development only)", "url", e.URL())
	}
	cfg.Redis.URL = d.embedded.URL()
	return nil
}

// Reload replaces the workers one by one, with cfg if given.
func (d *Daemon) Reload(ctx context.Context, cfg *configs.Config, load *control.LoadOptions) (string, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	a := d.currentApp()
	if a == nil {
		return "", notFoundf("nothing to reload: start the app with `frutos start`")
	}
	if cfg != nil {
		if restart := restartOnly(a.cfg, cfg); restart != "" {
			return "", conflictf("%s changed: that needs `frutos delete` then `frutos start` (reload keeps the port, Redis and the state home)", restart)
		}
		cfg.Redis.URL = a.cfg.Redis.URL
		d.mu.Lock()
		a.cfg = cfg
		if load != nil {
			a.load = keepStartOptions(a.load, *load)
		}
		d.mu.Unlock()
	}
	return d.sup.Reload(ctx, cfg)
}

// keepStartOptions is how a reloaded app's configuration was loaded: what
// the reload gave, and what start was given for the rest (a reload
// without --port keeps start's --port, in the status and in save's
// dump.json, so that resurrect starts on that port).
func keepStartOptions(start, reload control.LoadOptions) control.LoadOptions {
	if reload.File == "" {
		reload.File = start.File
	}
	if reload.Env == "" {
		reload.Env = start.Env
	}
	if reload.Instances == "" {
		reload.Instances = start.Instances
	}
	if reload.Port == 0 {
		reload.Port = start.Port
	}
	if reload.RedisURL == "" || reload.RedisURL == configs.RedactURL(start.RedisURL) {
		reload.RedisURL = start.RedisURL
	}
	return reload
}

// restartOnly names a setting that reload cannot change, if one changed.
func restartOnly(old, cfg *configs.Config) string {
	switch {
	case old.Host != cfg.Host || old.Port != cfg.Port:
		return "the listen address"
	case old.Home != cfg.Home:
		return "the state home"
	case cfg.Redis.URL != "" && cfg.Redis.URL != old.Redis.URL:
		return "the Redis URL"
	case old.Redis.Key != cfg.Redis.Key || old.Redis.Sharded != cfg.Redis.Sharded ||
		old.Redis.Adapter != cfg.Redis.Adapter || old.Redis.Streams != cfg.Redis.Streams:
		return "the Redis channel settings"
	case old.Emit != cfg.Emit:
		return "the emit endpoint (emit.listen, emit.key_env or its key)"
	}
	return ""
}

// Delete stops every worker and closes the public port; the daemon stays.
func (d *Daemon) Delete(ctx context.Context) (string, error) {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	msg, err := d.sup.Delete(ctx)
	d.mu.Lock()
	a := d.takeAppLocked()
	d.mu.Unlock()
	a.close()
	return msg, err
}

func (d *Daemon) shutdownApp() {
	d.opMu.Lock()
	defer d.opMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d.sup.Shutdown(ctx)
	d.mu.Lock()
	a := d.takeAppLocked()
	d.mu.Unlock()
	a.close() // before the embedded Redis goes: it says goodbye to the registry
	d.mu.Lock()
	if d.embedded != nil {
		_ = d.embedded.Close()
		d.embedded = nil
	}
	d.mu.Unlock()
}

// takeAppLocked detaches the app, for the caller to close once d.mu is
// released.
func (d *Daemon) takeAppLocked() *app {
	a := d.app
	d.app = nil
	return a
}

// routableAddr is the host:port of a Redis reached over the network, or ""
// (a unix socket).
func routableAddr(t *redisctl.Target) string {
	if len(t.Addrs) == 0 {
		return ""
	}
	if _, _, err := net.SplitHostPort(t.Addrs[0]); err != nil {
		return ""
	}
	return t.Addrs[0]
}

// Status is the process table with the daemon's and Redis's state.
func (d *Daemon) Status() control.Status {
	st := control.Status{Workers: d.sup.Workers()}
	d.statsMu.Lock()
	self := d.self
	d.statsMu.Unlock()
	if self.rss == 0 { // before the first sample
		self.rss = ownRSS()
	}
	st.Daemon = control.Daemon{PID: os.Getpid(), Memory: self.rss, CPU: self.cpu,
		UptimeSec: time.Since(d.started).Seconds(), Version: d.opts.Version, Home: d.opts.Home,
		Goroutines: runtime.NumGoroutine(), FDs: openFDs()}
	d.mu.Lock()
	defer d.mu.Unlock()
	if a := d.app; a != nil {
		st.App, st.Env, st.Host, st.Port = a.cfg.App, a.cfg.Env, a.cfg.Host, a.cfg.Port
		if addr, ok := a.front.Addr().(*net.TCPAddr); ok {
			st.Port = addr.Port
		}
		st.Instances = len(st.Workers)
		st.LogsDir = a.cfg.LogsDir()
		st.LogTimestamps, st.LogDateFormat = a.cfg.Logs.Timestamps, a.cfg.Logs.DateFormat
		st.Redis = a.rstat
		st.Load = a.load
		st.Load.RedisURL = configs.RedactURL(a.load.RedisURL)
	}
	return st
}

// Flush empties the log files of one worker or all, and names them.
func (d *Daemon) Flush(t control.Target) ([]string, error) {
	d.mu.Lock()
	files := d.logs
	d.mu.Unlock()
	if files == nil {
		return nil, notFoundf("no log files yet: the app has not been started")
	}
	var id *int
	if !t.All {
		id = &t.ID
	}
	emptied, err := files.Truncate(id)
	if err == nil && id != nil && len(emptied) == 0 {
		// `flush 99` said "no log files to empty" and exit 0, where
		// `logs 99` fails: a worker id that names nothing is a mistake.
		var ids []int
		for _, w := range d.sup.Workers() {
			ids = append(ids, w.ID)
		}
		return nil, badRequestf("no worker %d and no log files of one (workers: %v)", *id, ids)
	}
	return emptied, err
}

// lazyLogs opens log files with the log settings of the running app.
type lazyLogs struct{ d *Daemon }

func (l lazyLogs) Open(id int) (out, errw io.WriteCloser, err error) {
	l.d.mu.Lock()
	files := l.d.logs
	l.d.mu.Unlock()
	if files == nil {
		return nil, nil, errors.New("no log settings yet")
	}
	return files.Open(id)
}

func (l lazyLogs) Truncate(id *int) ([]string, error) {
	l.d.mu.Lock()
	files := l.d.logs
	l.d.mu.Unlock()
	if files == nil {
		return nil, nil
	}
	return files.Truncate(id)
}
