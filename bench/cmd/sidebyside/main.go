// Command sidebyside runs the same load, from `frutos bench`, against the
// Node original (socket.io 4.8 + @socket.io/redis-adapter 8.3 under PM2
// cluster mode, bench/node) and against frutos, on this machine and one
// Redis, and writes the results table to bench/RESULTS.md.
//
// From the repository root:
//
//	go run ./bench/cmd/sidebyside            # the full run, a few minutes
//	go run ./bench/cmd/sidebyside -quick     # a smaller one, about a minute
//
// It needs redis-server, node and npm (bench/node's packages are installed
// with npm ci when missing). Every server it starts (redis-server on a free
// port, a frutos daemon with its own state home, a PM2 daemon with its own
// PM2_HOME) is stopped at the end, and all traffic stays on 127.0.0.0/8.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sidebyside:", err)
		os.Exit(1)
	}
}

// plan is what to measure.
type plan struct {
	instances  int
	hold       int // connections held for memory and broadcast
	holdRate   float64
	connects   int   // connections for the connect-rate run
	emitConns  int   // connections during the emit sweep
	emitRates  []int // targeted emits per second
	emitFor    time.Duration
	polling    int // polling clients
	big        int // frutos alone: connections of the large run (0: skip)
	bigWorkers int
}

func run() error {
	out := flag.String("out", "bench/RESULTS.md", "where to write the results (markdown)")
	quick := flag.Bool("quick", false, "a smaller run (5,000 held, two emit rates, no large run)")
	instances := flag.Int("instances", 2, "workers of each side (PM2 instances, frutos workers)")
	hold := flag.Int("hold", 15000, "connections held for the memory and broadcast rows")
	big := flag.Int("big", 50000, "connections of the frutos-only large run (0: skip)")
	rates := flag.String("emit-rates", "5000,10000,20000,30000", "targeted emit rates of the sweep, per second")
	only := flag.String("only", "", "run one side only: node or frutos")
	adapters := flag.Bool("adapters", false, "compare frutos' two adapters (pubsub, streams) on the emit sweep instead (-emit-rates default 1000,5000,10000; -out default bench/ADAPTERS.md)")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs of every server)")
	recovery := flag.Bool("recovery", true, "frutos with connection state recovery (its default); false compares like for like with the Node original, whose Redis adapter has none")
	profiles := flag.String("profiles", "bench/profiles", "where frutos's worker profiles go (heap while holding, CPU at 10,000 emits/s); empty: none")
	flag.Parse()

	p := plan{instances: *instances, hold: *hold, holdRate: 1000, connects: 5000, emitConns: 5000,
		emitFor: 10 * time.Second, polling: 1000, big: *big, bigWorkers: 4}
	for f := range strings.SplitSeq(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-emit-rates %q: want numbers like 5000,10000", *rates)
		}
		p.emitRates = append(p.emitRates, n)
	}
	if *quick {
		p.hold, p.emitRates, p.big, p.emitFor, p.polling = 5000, []int{5000, 10000}, 0, 6*time.Second, 300
	}
	if *adapters {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["emit-rates"] {
			p.emitRates = []int{1000, 5000, 10000}
		}
		if !set["out"] {
			*out = "bench/ADAPTERS.md"
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()

	h, err := newHarness(ctx, *keep, !*adapters && *only != "frutos")
	if err != nil {
		return err
	}
	h.profiles = *profiles
	h.noRecovery = !*recovery
	defer h.Close()

	if *adapters {
		return compareAdapters(ctx, h, p, *out)
	}
	res := &results{plan: p, machine: describeMachine(h), started: time.Now()}
	sides := []struct {
		name string
		srv  func() server
	}{
		{"node", func() server { return newNode(h, p.instances) }},
		{"frutos", func() server { return newFrutos(h, p.instances) }},
	}
	for _, side := range sides {
		if *only != "" && *only != side.name {
			continue
		}
		sr, err := h.side(ctx, side.srv(), p)
		if err != nil {
			return fmt.Errorf("%s: %w", side.name, err)
		}
		if side.name == "node" {
			res.node = sr
		} else {
			res.frutos = sr
		}
	}
	if p.big > 0 && (*only == "" || *only == "frutos") {
		srv := newFrutos(h, p.bigWorkers)
		if err := h.start(ctx, srv); err != nil {
			return err
		}
		r := h.measure(ctx, srv, "large", "--conns", strconv.Itoa(p.big), "--rate", "5000", "--duration", "80s")
		res.big = &r
		srv.Stop()
	}
	res.finished = time.Now()
	md := res.markdown()
	if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(res.rawRuns(), "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(*out, ".md")+".json", append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nwrote %s\n\n", *out)
	fmt.Print(md)
	return nil
}

// harness owns the temporary directory, the Redis and the frutos binary.
type harness struct {
	root, tmp, frutos, nodeDir string
	secret, redisURL           string
	profiles                   string // directory for frutos's profiles ("" none)
	redis                      *exec.Cmd
	keep                       bool
	noRecovery                 bool // frutos with recovery.enabled: false (-recovery=false)
	cleanups                   []func()
}

func newHarness(ctx context.Context, keep, node bool) (*harness, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "frutos-sidebyside")
	if err != nil {
		return nil, err
	}
	h := &harness{root: root, tmp: tmp, nodeDir: filepath.Join(root, "bench", "node"), keep: keep}
	var b [24]byte
	_, _ = rand.Read(b[:])
	h.secret = hex.EncodeToString(b[:])
	h.frutos = filepath.Join(tmp, "frutos")
	h.logf("building frutos into %s", h.frutos)
	build := exec.CommandContext(ctx, "go", "build", "-o", h.frutos, "./cmd/frutos")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		h.Close()
		return nil, fmt.Errorf("go build: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(h.nodeDir, "node_modules", "pm2")); node && err != nil {
		h.logf("installing bench/node packages (npm ci)")
		npm := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		npm.Dir = h.nodeDir
		if out, err := npm.CombinedOutput(); err != nil {
			h.Close()
			return nil, fmt.Errorf("npm ci in bench/node: %v: %s", err, out)
		}
	}
	if err := h.startRedis(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "== "+format+"\n", args...)
}

func (h *harness) startRedis(ctx context.Context) error {
	port := freePort()
	h.redis = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", h.tmp, "--logfile", filepath.Join(h.tmp, "redis.log"))
	if err := h.redis.Start(); err != nil {
		return fmt.Errorf("start redis-server (apt-get install redis-server): %w", err)
	}
	h.redisURL = fmt.Sprintf("redis://127.0.0.1:%d", port)
	rc := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rc.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if rc.Ping(ctx).Err() == nil {
			h.logf("redis-server pid %d on %s", h.redis.Process.Pid, h.redisURL)
			return nil
		}
	}
	return errors.New("redis-server did not answer within 10s")
}

func (h *harness) Close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	if h.redis != nil && h.redis.Process != nil {
		_ = h.redis.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = h.redis.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = h.redis.Process.Kill()
		}
	}
	if h.keep {
		h.logf("kept %s", h.tmp)
	} else {
		_ = os.RemoveAll(h.tmp)
	}
}

func (h *harness) start(ctx context.Context, srv server) error {
	h.logf("starting %s on %s", srv.Name(), srv.URL())
	h.cleanups = append(h.cleanups, srv.Stop)
	if err := srv.Start(ctx); err != nil {
		return fmt.Errorf("start %s: %w", srv.Name(), err)
	}
	time.Sleep(2 * time.Second) // let the workers settle before the baseline
	return nil
}

// sideResult is every run against one server.
type sideResult struct {
	name    string
	hold    runResult
	connect runResult
	emits   []runResult
	polling runResult
	cli     cliResult
	workers int
}

// side runs the plan against one server, freshly started: the memory run
// first, so its baseline is an idle server that never held connections.
func (h *harness) side(ctx context.Context, srv server, p plan) (*sideResult, error) {
	if err := h.start(ctx, srv); err != nil {
		return nil, err
	}
	defer srv.Stop()
	sr := &sideResult{name: srv.Name(), workers: p.instances}
	ramp := time.Duration(float64(p.hold) / p.holdRate * float64(time.Second))
	holdDur := ramp + 20*time.Second
	// frutos: the first worker's goroutines before and while holding (idle,
	// after the broadcast), and its heap then.
	fs, _ := srv.(*frutosServer)
	var sock string
	var before, held probe
	if fs != nil {
		sock, _ = fs.workerSocket(ctx)
		before, _ = workerProbe(ctx, sock)
	}
	wait := during(ctx, ramp+12*time.Second, func(ctx context.Context) {
		if fs == nil || sock == "" {
			return
		}
		held, _ = workerProbe(ctx, sock)
		if h.profiles != "" {
			h.profile(ctx, sock, "heap?gc=1", "frutos-hold-heap.pprof")
		}
	})
	sr.hold = h.measure(ctx, srv, "hold", "--conns", strconv.Itoa(p.hold), "--rate", fmt.Sprint(p.holdRate),
		"--duration", holdDur.String())
	wait()
	if held.Connections > 0 {
		g := float64(held.Goroutines-before.Goroutines) / float64(held.Connections)
		sr.hold.GoroutinesPerConn = &g
	}
	h.pause(ctx, srv)
	sr.connect = h.measure(ctx, srv, "connect", "--conns", strconv.Itoa(p.connects), "--rate", "10000",
		"--duration", "12s", "--broadcast=false")
	for _, rate := range p.emitRates {
		h.pause(ctx, srv)
		// The ramp (5,000 at 2,000/s) and then the emits: a server that
		// ramps slower gets a shorter emit phase, never a longer run.
		emitRamp := time.Duration(float64(p.emitConns) / 2000 * float64(time.Second))
		dur := p.emitFor + emitRamp + 3*time.Second
		wait := during(ctx, emitRamp+4*time.Second, func(ctx context.Context) {
			if fs != nil && sock != "" && h.profiles != "" && rate == 10000 {
				h.profile(ctx, sock, "profile?seconds=5", fmt.Sprintf("frutos-emit-%d-cpu.pprof", rate))
			}
		})
		sr.emits = append(sr.emits, h.measure(ctx, srv, fmt.Sprintf("emit %d/s", rate), "--conns", strconv.Itoa(p.emitConns),
			"--rate", "2000", "--duration", dur.String(), "--emit-rate", strconv.Itoa(rate), "--broadcast=false"))
		wait()
	}
	h.pause(ctx, srv)
	sr.polling = h.measure(ctx, srv, "polling", "--conns", strconv.Itoa(p.polling), "--rate", "500", "--duration", "8s",
		"--transport", "polling", "--broadcast=false")
	sr.cli = h.cliRoundTrip(ctx, srv)
	return sr, nil
}

// profile saves one of a frutos worker's profiles into h.profiles.
func (h *harness) profile(ctx context.Context, sock, which, name string) {
	file := filepath.Join(h.root, h.profiles, name)
	if filepath.IsAbs(h.profiles) {
		file = filepath.Join(h.profiles, name)
	}
	if err := saveProfile(ctx, sock, which, file); err != nil {
		h.logf("profile %s: %v", name, err)
		return
	}
	h.logf("saved %s", file)
}

// pause lets the server finish the last run: closing its connections and
// any backlog of emits it had not delivered. It waits until the server's
// processes are nearly idle (under 10% of a core for a second), at most a
// minute, so a run never pays for the one before it.
func (h *harness) pause(ctx context.Context, srv server) {
	time.Sleep(2 * time.Second)
	workers, master, err := srv.PIDs(ctx)
	if err != nil {
		return
	}
	pids := append(workers, master)
	prev, quiet := sumCPU(pids), 0
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && quiet < 2; {
		time.Sleep(500 * time.Millisecond)
		cur := sumCPU(pids)
		if cur-prev < 0.05 {
			quiet++
		} else {
			quiet = 0
		}
		prev = cur
	}
}

// runResult is one `frutos bench` run and what the server's processes did
// meanwhile.
type runResult struct {
	Scenario string       `json:"scenario"`
	Server   string       `json:"server"`
	Args     []string     `json:"args"`
	Report   bench.Report `json:"report"`
	Error    string       `json:"error,omitempty"`
	LoadAvg  float64      `json:"load_avg_1m"`
	Workers  int          `json:"workers"`

	RSSBaseKB    int64   `json:"workers_rss_base_kb"`
	RSSRampEndKB int64   `json:"workers_rss_ramp_end_kb"`
	RSSPerConnKB float64 `json:"workers_rss_per_conn_kb"`
	RampCPUSec   float64 `json:"server_cpu_ramp_sec"`     // workers + front process
	EmitCPUPct   float64 `json:"server_cpu_emit_percent"` // of one core, during the emits
	MasterCPUPct float64 `json:"front_cpu_emit_percent"`  // the front process alone
	ToolCPUSec   float64 `json:"load_tool_cpu_sec"`
	// The workers alone and Redis, during the emits (of one core); Redis
	// memory after the run (used_memory).
	WorkersCPUPct float64 `json:"workers_cpu_emit_percent"`
	RedisCPUPct   float64 `json:"redis_cpu_emit_percent"`
	RedisMemMiB   float64 `json:"redis_used_memory_mib"`
	// GoroutinesPerConn: frutos's first worker, idle while holding.
	GoroutinesPerConn *float64 `json:"worker_goroutines_per_conn,omitempty"`
}

func (h *harness) measure(ctx context.Context, srv server, scenario string, args ...string) runResult {
	r := runResult{Scenario: scenario, Server: srv.Name(), Args: args}
	workers, master, err := srv.PIDs(ctx)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Workers = len(workers)
	r.LoadAvg = loadAvg()
	h.logf("%s: %s (load average %.1f)", srv.Name(), strings.Join(append([]string{"frutos bench"}, args...), " "), r.LoadAvg)
	smp := startSampler(workers, master, h.redis.Process.Pid, 200*time.Millisecond)
	var env []string
	if fs, ok := srv.(*frutosServer); ok && fs.adapter != "" {
		env = append(env, "FRUTOS_REDIS_ADAPTER="+fs.adapter) // the emits speak the workers' protocol
	}
	rep, toolCPU, err := h.bench(ctx, srv.URL(), env, args...)
	samples := smp.Stop()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Report, r.ToolCPUSec = rep, toolCPU
	tl := rep.Timeline
	base, ramp := samples[0], at(samples, tl.RampEndMS)
	r.RSSBaseKB, r.RSSRampEndKB = base.workersRSS, ramp.workersRSS
	if held := rep.Connections.Established - rep.Connections.Dropped; held > 0 {
		r.RSSPerConnKB = float64(ramp.workersRSS-base.workersRSS) / float64(held)
	}
	r.RampCPUSec = (ramp.workersCPU + ramp.masterCPU) - (base.workersCPU + base.masterCPU)
	es, ee := at(samples, tl.EmitStartMS), at(samples, tl.EmitEndMS)
	if span := float64(ee.at-es.at) / 1000; span > 0.5 && rep.Events.Sent > 0 {
		r.EmitCPUPct = 100 * ((ee.workersCPU + ee.masterCPU) - (es.workersCPU + es.masterCPU)) / span
		r.MasterCPUPct = 100 * (ee.masterCPU - es.masterCPU) / span
		r.WorkersCPUPct = 100 * (ee.workersCPU - es.workersCPU) / span
		r.RedisCPUPct = 100 * (ee.redisCPU - es.redisCPU) / span
	}
	return r
}

// bench runs `frutos bench --json` and returns its report and its CPU
// time (its load processes included).
func (h *harness) bench(ctx context.Context, url string, env []string, args ...string) (bench.Report, float64, error) {
	full := append([]string{"bench", "--url", url, "--json", "--redis", h.redisURL}, args...)
	cmd := exec.CommandContext(ctx, h.frutos, full...)
	cmd.Env = append(append(os.Environ(), "FRUTOS_AUTH_SECRET="+h.secret, "FRUTOS_HOME="+filepath.Join(h.tmp, "bench-home")), env...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var rep bench.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		if err == nil {
			err = jerr
		}
		return rep, 0, fmt.Errorf("frutos bench: %w", err)
	}
	var cpu float64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		cpu = float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	}
	return rep, cpu, nil
}

// cliResult is the CLI round trip: `pm2 jlist` or `frutos status --json`.
type cliResult struct {
	Command string  `json:"command"`
	MS      float64 `json:"median_ms"`
	RSSMiB  float64 `json:"median_max_rss_mib"`
}

func (h *harness) cliRoundTrip(ctx context.Context, srv server) cliResult {
	type statuser interface {
		statusCommand(context.Context) *exec.Cmd
	}
	s, ok := srv.(statuser)
	if !ok {
		return cliResult{}
	}
	var times, rss []float64
	var name string
	for range 7 {
		cmd := s.statusCommand(ctx)
		name = filepath.Base(cmd.Path) + " " + strings.Join(cmd.Args[1:], " ")
		cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			continue
		}
		times = append(times, float64(time.Since(t0).Microseconds())/1000)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = append(rss, float64(ru.Maxrss)/1024)
		}
	}
	return cliResult{Command: name, MS: median(times), RSSMiB: median(rss)}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/frutos/frutos\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run from inside the frutos repository (go run ./bench/cmd/sidebyside)")
		}
		dir = parent
	}
}

// machine describes where the numbers come from.
type machine struct {
	CPUs    int
	CPU     string
	MemGiB  float64
	Kernel  string
	Go      string
	Node    string
	Redis   string
	PM2     string
	SIO     string
	Adapter string
	NoFile  string
}

func describeMachine(h *harness) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				m.MemGiB = kb / (1 << 20)
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Node = cmdOut("node", "--version")
	if f := strings.Fields(cmdOut("redis-server", "--version")); len(f) >= 3 {
		m.Redis = strings.TrimPrefix(f[2], "v=")
	}
	m.PM2 = pkgVersion(h.nodeDir, "pm2")
	m.SIO = pkgVersion(h.nodeDir, "socket.io")
	m.Adapter = pkgVersion(h.nodeDir, "@socket.io/redis-adapter")
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		m.NoFile = fmt.Sprintf("%d (hard %d)", l.Cur, l.Max)
	}
	return m
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

func pkgVersion(dir, pkg string) string {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", pkg, "package.json"))
	if err != nil {
		return "?"
	}
	var v struct {
		Version string `json:"version"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Version
}
