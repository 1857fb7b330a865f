package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/redisctl"
)

// Options is a chaos run. Zero values take the full suite's settings
// (make chaos); the test suite runs a short version.
type Options struct {
	// Bin is the frutos binary under test.
	Bin string
	// Workers is the cluster's size (4).
	Workers int
	// Clients is how many well-behaved clients (3000); EmitRate the
	// targeted emits per second to them (300).
	Clients  int
	EmitRate float64
	// Faults to run, in order (all of AllFaults by default).
	Faults []string
	// RedisDown is how long Redis stays stopped or frozen (15s).
	RedisDown time.Duration
	// Before and After are the steady load around each fault (3s, 5s);
	// Grace is how long events in flight may still arrive (10s).
	Before, After, Grace time.Duration
	// ReconnectWithin bounds the wait for every client to be back (90s).
	ReconnectWithin time.Duration
	// Adapter is the workers' redis.adapter: configs.AdapterPubSub (the
	// default) or configs.AdapterStreams; the emits speak the same.
	Adapter string
	// Hostile sizes the hostile clients of the "hostile" fault.
	Hostile HostileOptions
	// KeepDir leaves the work directory (logs, config) for inspection.
	KeepDir bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

// AllFaults is every fault, in the order the suite runs them.
var AllFaults = []string{"baseline", "kill-worker", "kill-two-workers", "redis-stop", "redis-new-dataset",
	"redis-frozen", "reload", "scale", "kill-daemon", "update", "disk-full", "hostile"}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Clients <= 0 {
		o.Clients = 3000
	}
	if o.EmitRate <= 0 {
		o.EmitRate = 300
	}
	if len(o.Faults) == 0 {
		o.Faults = AllFaults
	}
	if o.Adapter == "" {
		o.Adapter = configs.AdapterPubSub
	}
	if o.RedisDown <= 0 {
		o.RedisDown = 15 * time.Second
	}
	if o.Before <= 0 {
		o.Before = 3 * time.Second
	}
	if o.After <= 0 {
		o.After = 5 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.ReconnectWithin <= 0 {
		o.ReconnectWithin = 90 * time.Second
	}
	o.Hostile.defaults()
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// env is everything a fault acts on.
type env struct {
	opts    Options
	sys     *System
	redis   *Redis
	load    *Load
	logsDir string
	tmpfs   bool
	workers int // expected after the current fault
	secret  string
	notes   []string
	hostile *HostileResult
}

func (e *env) note(format string, args ...any) {
	e.notes = append(e.notes, fmt.Sprintf(format, args...))
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.opts.Log, "%s chaos: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// Run starts Redis and a frutos cluster of opts.Workers, puts the load on
// it, runs the faults one after another and reports what each did.
func Run(ctx context.Context, opts Options) (rep *Report, err error) {
	opts.defaults()
	for _, name := range opts.Faults {
		if faults[name] == nil {
			return nil, fmt.Errorf("unknown fault %q (known: %s)", name, strings.Join(AllFaults, ", "))
		}
	}
	rep = &Report{Started: time.Now()}
	e, cleanup, err := setUp(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep.Version = e.version(ctx)
	rep.Adapter = opts.Adapter
	rep.Setup = fmt.Sprintf("%d workers behind one port (redis.adapter: %s), %d websocket clients (socket.io-client's reconnection: 1 s doubling to 5 s, with session recovery), %.0f targeted emits/s through Redis, %d CPUs",
		opts.Workers, opts.Adapter, opts.Clients, opts.EmitRate, runtime.NumCPU())
	for _, name := range opts.Faults {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		f := faults[name]
		e.logf("%s: %s", name, f.what)
		res := runFault(ctx, e, name, f)
		e.logf("%s: sent %d delivered %d lost %d twice %d, all back after %.1fs, %d ended disconnected",
			name, res.Sent, res.Delivered, res.Lost, res.Duplicates, res.ReconnectSec, res.EndedDisconnected)
		rep.Faults = append(rep.Faults, res)
		if name == "hostile" {
			rep.Hostile = e.hostile
		}
	}
	rep.Duration = time.Since(rep.Started).Seconds()
	return rep, nil
}

// setUp starts Redis, the cluster (its logs on a small tmpfs when this
// process may mount one) and the load.
func setUp(ctx context.Context, opts Options) (*env, func(), error) {
	dir, err := os.MkdirTemp("", "chaos")
	if err != nil {
		return nil, nil, err
	}
	var undo []func()
	cleanup := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		if !opts.KeepDir {
			_ = os.RemoveAll(dir)
		}
	}
	fail := func(err error) (*env, func(), error) { cleanup(); return nil, nil, err }

	e := &env{opts: opts, workers: opts.Workers, secret: randomHex(16)}
	e.redis, err = StartRedis(filepath.Join(dir, "redis"))
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { _ = e.redis.Kill() })

	e.logsDir = filepath.Join(dir, "logs")
	if err := os.MkdirAll(e.logsDir, 0o700); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 && exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", e.logsDir).Run() == nil {
		e.tmpfs = true
		undo = append(undo, func() {
			if opts.KeepDir { // the logs outlive their tmpfs
				_ = exec.Command("cp", "-a", e.logsDir, filepath.Join(dir, "logs-kept")).Run()
			}
			_ = exec.Command("umount", "-l", e.logsDir).Run()
		})
	}
	yaml := fmt.Sprintf(`app: chaos
instances: %d
redis:
  url: %s
  adapter: %s
auth:
  secret_env: FRUTOS_AUTH_SECRET
logs:
  dir: %s
  max_size: 1MB
  max_files: 3
restart:
  min_uptime: 2s
  backoff_initial: 100ms
  backoff_max: 2s
  kill_timeout: 10s
  listen_timeout: 30s
`, opts.Workers, e.redis.URL(), opts.Adapter, e.logsDir)
	home := filepath.Join(dir, "h")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return fail(err)
	}
	e.sys, err = NewSystem(opts.Bin, home, []string{"FRUTOS_AUTH_SECRET=" + e.secret}, yaml)
	if err != nil {
		return fail(err)
	}
	e.logf("starting %d workers on %s (home %s, redis %s, logs on tmpfs: %v)", opts.Workers, e.sys.URL(), home, e.redis.URL(), e.tmpfs)
	undo = append(undo, e.sys.Shutdown)
	if _, err := e.sys.CLI(ctx, 2*time.Minute, "start"); err != nil {
		return fail(err)
	}
	if _, err := e.sys.CLI(ctx, 30*time.Second, "save"); err != nil {
		return fail(err)
	}

	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", e.redis.Port), MaxRetries: -1,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	undo = append(undo, func() { _ = rc.Close() })
	rcfg := configs.Default().Redis
	rcfg.Adapter = opts.Adapter
	emitter, _ := bench.ProtocolEmitter(rc, redisctl.NewEmitter(rc, rcfg), "/").(bench.BatchEmitter)
	tokens := map[string]string{}
	first := 1
	for i := range opts.Clients {
		user := strconv.Itoa(first + i)
		if tokens[user], err = jwtauth.Mint(e.secret, user, "student", 24*time.Hour); err != nil {
			return fail(err)
		}
	}
	e.logf("connecting %d clients", opts.Clients)
	e.load, err = StartLoad(ctx, LoadConfig{
		URL: e.sys.URL(), Clients: opts.Clients, Rate: 500, EmitRate: opts.EmitRate, FirstUser: first,
		Sources: max(1, opts.Clients/5000), Emitter: emitter,
		Token: func(user string) (string, error) { return tokens[user], nil },
	})
	if err != nil {
		return fail(err)
	}
	undo = append(undo, e.load.Close)
	if err := waitUntil(30*time.Second, "every client connected", func() bool { return e.load.Up() == opts.Clients }); err != nil {
		return fail(fmt.Errorf("%w: %d of %d connected", err, e.load.Up(), opts.Clients))
	}
	return e, cleanup, nil
}

// runFault is one phase: steady load, the fault, the wait until every
// client is back, more load, then the count.
func runFault(ctx context.Context, e *env, name string, f *fault) FaultResult {
	res := FaultResult{Fault: name, What: f.what}
	if f.skip != nil {
		if res.Skipped = f.skip(e); res.Skipped != "" {
			return res
		}
	}
	e.notes = nil
	probe := startProbe(ctx, e.sys)
	e.load.Begin(name)
	sleep(ctx, e.opts.Before)
	t0 := time.Now()
	if err := f.inject(ctx, e); err != nil {
		res.Error = err.Error()
	}
	// The clients reconnect while the fault goes on (a reload, say): the
	// time is from the fault's start to the last moment all were up, once
	// the clients noticed the fault.
	if f.drops {
		_ = waitUntil(10*time.Second, "clients to notice the fault", func() bool { return e.load.phaseDrops() > 0 })
	}
	if err := waitUntil(e.opts.ReconnectWithin, "every client connected again", func() bool {
		return e.load.Up() == e.load.Clients()
	}); err != nil {
		res.ReconnectSec = -1
	} else if at := e.load.AllUpAt(); at.After(t0) {
		res.ReconnectSec = at.Sub(t0).Seconds()
	}
	sleep(ctx, e.opts.After)
	res.Counts = e.load.End(e.opts.Grace)
	res.CLI = probe.stop()
	res.EndedDisconnected = res.Clients - res.UpAtEnd
	res.Workers = e.workers
	res.WorkersOnline = e.healthyWorkers(ctx)
	res.Notes = e.notes
	return res
}

// healthyWorkers waits (up to a minute) for the expected workers to be
// online, ready and connected to Redis, and returns how many are.
func (e *env) healthyWorkers(ctx context.Context) int {
	n := 0
	_ = waitUntil(time.Minute, "workers healthy", func() bool {
		st, err := e.sys.Status(ctx)
		if err != nil {
			return false
		}
		n = 0
		for _, w := range st.Workers {
			if w.Status == control.StatusOnline && w.Ready && !w.Draining && (w.Redis == "" || w.Redis == "connected") {
				n++
			}
		}
		return n == e.workers && len(st.Workers) == e.workers
	})
	return n
}

func (e *env) version(ctx context.Context) string {
	out, err := e.sys.CLI(ctx, 10*time.Second, "version")
	if err != nil {
		return "frutos (unknown version)"
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

// probe polls `frutos status` every second.
type probe struct {
	mu     sync.Mutex
	res    Probe
	cancel context.CancelFunc
	done   chan struct{}
}

func startProbe(ctx context.Context, sys *System) *probe {
	ctx, cancel := context.WithCancel(ctx)
	p := &probe{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			t0 := time.Now()
			_, err := sys.CLI(ctx, 5*time.Second, "status", "--json")
			ms := float64(time.Since(t0).Microseconds()) / 1000
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			if err != nil {
				p.res.Failed++
				if p.res.FirstError == "" {
					p.res.FirstError = err.Error()
				}
			} else {
				p.res.OK++
			}
			p.res.MaxMs = max(p.res.MaxMs, ms)
			p.mu.Unlock()
			if !sleep(ctx, time.Second) {
				return
			}
		}
	}()
	return p
}

func (p *probe) stop() Probe {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
