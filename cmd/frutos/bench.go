package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/redisctl"
)

type benchOptions struct {
	IO         *IOStreams
	Factory    *Factory
	Executable func() (string, error)

	URL            string
	Conns          int
	Rate           float64
	Duration       time.Duration
	EmitRate       float64
	Broadcast      bool
	Transport      string
	KeepAlive      bool
	JSON           bool
	RedisURL       string
	Users          string
	Sources        int
	Procs          int
	Role           string
	Namespace      string
	MaxInflight    int
	ConnectTimeout time.Duration
	Grace          time.Duration

	// Set by flags the user gave, for a load process to be started with
	// the same command line.
	BroadcastSet bool
	passFlags    []string

	// Shard mode (hidden): this process is load process i of k of a run
	// coordinated by another `frutos bench`, speaking JSON lines on
	// stdin/stdout.
	Shard string
	RunID string
	// CPUProfile writes the load process's CPU profile (hidden: for
	// measuring the load tool itself).
	CPUProfile string
}

func newCmdBench(f *Factory, runF func(*benchOptions) error) *cobra.Command {
	opts := &benchOptions{IO: f.IO, Factory: f, Executable: os.Executable}
	cmd := &cobra.Command{
		Use:   "bench --conns N --rate R --duration D [--emit-rate E]",
		Short: "Load-test a Socket.IO server: connections, targeted emits, broadcast",
		Long: `Open N authenticated Socket.IO connections at R per second, keep them for the
duration, and measure what a realtime tier is sized by:

  connections   established, failed (by reason), dropped; connect rate and time
  broadcast     one emit to all through Redis: how long until every client has it
  emits         --emit-rate E targeted emits per second to user:<id> of random
                connected users, through Redis as a backend sends them; each
                payload carries a sequence number and its send time, so the
                delivery latency is measured and losses and duplicates are
                counted by sequence, not guessed

Tokens are JWTs minted with the configured secret (as 'frutos token' does), for
user ids spread over --users. The server may be frutos or any Socket.IO server
that accepts those tokens and puts sockets in user:<sub> (the Node original
does). On loopback, connections are spread over source addresses 127.0.0.2,
127.0.0.3, ... (--sources), since one address has about 28,000 ports per server
port; a run larger than the open-file limit allows in one process is split over
several load processes (--procs) whose results merge exactly.

A live progress line goes to stderr; the final table (or --json) to stdout.
The run stops by itself after --duration (plus --grace for deliveries in flight).`,
		Example: `  frutos bench --conns 5000 --rate 2000 --duration 30s
  frutos bench --conns 5000 --rate 2000 --duration 30s --emit-rate 10000 --json
  frutos bench --url http://127.0.0.1:3000 --conns 50000 --rate 5000 --duration 1m --procs 3
  frutos bench --conns 1000 --rate 500 --duration 20s --transport polling --users 1-100`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.BroadcastSet = c.Flags().Changed("broadcast")
			opts.passFlags = passThroughFlags(c)
			if runF != nil {
				return runF(opts)
			}
			return runBench(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.URL, "url", "", "server URL (default http://127.0.0.1:<port of the configuration>)")
	fl.IntVarP(&opts.Conns, "conns", "n", 1000, "connections to open and keep")
	fl.Float64VarP(&opts.Rate, "rate", "r", 1000, "new connections per second")
	fl.DurationVarP(&opts.Duration, "duration", "d", 30*time.Second, "length of the whole run (ramp, broadcast, emits)")
	fl.Float64VarP(&opts.EmitRate, "emit-rate", "e", 0, "targeted emits per second through Redis (0: none)")
	fl.BoolVar(&opts.Broadcast, "broadcast", true, "send one event to all after the ramp and time its fan-out (needs Redis)")
	fl.StringVarP(&opts.Transport, "transport", "t", sioclient.Websocket, "websocket or polling (long-polling for the whole session, no upgrade)")
	fl.BoolVar(&opts.KeepAlive, "keep-alive", false, "polling: reuse HTTP connections as browsers do (default: one per request, as socket.io-client in Node)")
	fl.BoolVar(&opts.JSON, "json", false, "print the report as JSON on stdout (stable shape)")
	fl.StringVar(&opts.RedisURL, "redis", "", "Redis URL for the emits (default: REDIS_URL, then the configuration)")
	fl.StringVarP(&opts.Users, "users", "u", "", "user ids: a range like 1-5000 or a count (default 1-N: one connection per user)")
	fl.IntVar(&opts.Sources, "sources", -1, "loopback source addresses to spread over (default: one per 10,000 connections; 0: the system's)")
	fl.IntVar(&opts.Procs, "procs", 0, "load processes (default: as many as the open-file limit needs)")
	fl.StringVar(&opts.Role, "role", jwtauth.RoleStudent, "role claim of the tokens: "+strings.Join(jwtauth.Roles, ", "))
	fl.StringVar(&opts.Namespace, "namespace", "/", "Socket.IO namespace")
	fl.IntVar(&opts.MaxInflight, "max-inflight", 512, "handshakes in progress at once, per load process")
	fl.DurationVar(&opts.ConnectTimeout, "connect-timeout", 10*time.Second, "give up on one handshake after this long")
	fl.DurationVar(&opts.Grace, "grace", 3*time.Second, "after the duration, how long deliveries in flight may still arrive")
	fl.StringVar(&opts.Shard, "shard", "", "run as load process i/k of another bench (internal)")
	fl.StringVar(&opts.RunID, "run-id", "", "run id (internal)")
	fl.StringVar(&opts.CPUProfile, "cpuprofile", "", "write a CPU profile of this load process (internal)")
	_ = fl.MarkHidden("cpuprofile")
	_ = fl.MarkHidden("shard")
	_ = fl.MarkHidden("run-id")
	return cmd
}

// passThroughFlags is the command line a load process is started with:
// every flag the user gave (global ones included) but the ones that
// choose processes.
func passThroughFlags(c *cobra.Command) []string {
	var args []string
	add := func(f *pflag.Flag) {
		switch f.Name {
		case "procs", "shard", "run-id", "json", "cpuprofile":
			return
		}
		args = append(args, "--"+f.Name+"="+f.Value.String())
	}
	c.InheritedFlags().Visit(add)
	c.Flags().Visit(func(f *pflag.Flag) {
		if c.InheritedFlags().Lookup(f.Name) == nil {
			add(f)
		}
	})
	return args
}

// benchSetup is what a run needs besides the flags.
type benchSetup struct {
	cfg     bench.Config
	redis   *redisctl.Target // nil without emits
	cleanup func()
}

func (o *benchOptions) validate() error {
	switch {
	case o.Conns < 1:
		return usageErrorf("--conns must be at least 1 (got %d)", o.Conns)
	case o.Rate <= 0:
		return usageErrorf("--rate must be more than 0 (got %v)", o.Rate)
	case o.Duration <= 0:
		return usageErrorf("--duration must be more than 0 (got %s)", o.Duration)
	case o.Duration > 24*time.Hour:
		return usageErrorf("--duration is at most 24h (got %s)", o.Duration)
	case o.EmitRate < 0:
		return usageErrorf("--emit-rate must be 0 or more (got %v)", o.EmitRate)
	case o.Transport != sioclient.Websocket && o.Transport != sioclient.Polling:
		return usageErrorf("--transport %q: use websocket or polling", o.Transport)
	case !jwtauth.ValidRole(o.Role):
		return usageErrorf("--role %q is not a role; use %s", o.Role, strings.Join(jwtauth.Roles, ", "))
	case o.Procs < 0:
		return usageErrorf("--procs must be 0 (automatic) or more (got %d)", o.Procs)
	case o.MaxInflight < 1:
		return usageErrorf("--max-inflight must be at least 1 (got %d)", o.MaxInflight)
	case o.ConnectTimeout <= 0 || o.Grace <= 0:
		return usageErrorf("--connect-timeout and --grace must be more than 0")
	}
	if o.Users != "" {
		if _, err := bench.ParseUserRange(o.Users); err != nil {
			return usageErrorf("--%v", err)
		}
	}
	return nil
}

// setup resolves the configuration into a bench.Config: URL, secret,
// users, sources, and the Redis emitter when emits or the broadcast need
// one.
func (o *benchOptions) setup() (*benchSetup, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg, err := o.Factory.Config(configs.Flags{RedisURL: o.RedisURL})
	if err != nil {
		return nil, err
	}
	secret, _, err := jwtauth.ResolveSecret(cfg)
	if err != nil {
		return nil, withCode(exitConfig, err, "")
	}
	url := o.URL
	if url == "" {
		host := cfg.Host
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "127.0.0.1"
		}
		url = fmt.Sprintf("http://%s:%d", host, cfg.Port)
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") &&
		!strings.HasPrefix(url, "ws://") && !strings.HasPrefix(url, "wss://") {
		return nil, usageErrorf("--url %q: want http://host:port", url)
	}
	users := bench.UserRange{First: 1, Count: o.Conns}
	if o.Users != "" {
		users, _ = bench.ParseUserRange(o.Users)
	}
	sources := o.Sources
	switch {
	case !bench.IsLoopback(url):
		sources = 0
	case sources < 0:
		sources = (o.Conns + 9999) / 10000
	}
	ttl := o.Duration + o.Grace + time.Hour
	role := o.Role
	bc := bench.Config{
		URL: url, Conns: o.Conns, Rate: o.Rate, Duration: o.Duration, EmitRate: o.EmitRate, Broadcast: o.Broadcast,
		Transport: o.Transport, KeepAlive: o.KeepAlive, Users: users, Sources: sources, Namespace: o.Namespace,
		MaxInflight: o.MaxInflight, ConnectTimeout: o.ConnectTimeout, Grace: o.Grace, RunID: o.RunID,
		Token: func(user string) (string, error) { return jwtauth.Mint(secret, user, role, ttl) },
	}
	s := &benchSetup{cfg: bc, cleanup: func() {}}
	if o.EmitRate == 0 && !o.Broadcast {
		return s, nil
	}
	raw, _, err := redisctl.Resolve(cfg)
	if err != nil {
		if o.EmitRate == 0 && !o.BroadcastSet {
			// The broadcast is on by default: without Redis, skip it.
			fmt.Fprintf(o.IO.ErrOut, "note: no Redis configured (%v); no broadcast. Pass --redis for one.\n", err)
			s.cfg.Broadcast = false
			return s, nil
		}
		return nil, withCode(exitRedis, fmt.Errorf("emits go through Redis: %w", err), "pass --redis redis://host:6379 (or set REDIS_URL)")
	}
	t, err := redisctl.Open(raw)
	if err != nil {
		return nil, withCode(exitRedis, err, "forms: "+redisctl.Examples)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Client.Ping(ctx).Err(); err != nil {
		_ = t.Close()
		return nil, redisFailure(t, err)
	}
	s.redis = t
	s.cfg.Emitter = bench.ProtocolEmitter(t.Client, redisctl.NewEmitter(t.Client, cfg.Redis), o.Namespace)
	s.cleanup = func() { _ = t.Close() }
	return s, nil
}

func runBench(opts *benchOptions) error {
	s, err := opts.setup()
	if err != nil {
		return err
	}
	defer s.cleanup()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if opts.CPUProfile != "" {
		f, err := os.Create(opts.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if opts.Shard != "" {
		return serveShard(ctx, opts, s.cfg)
	}
	limit, _ := bench.RaiseFDLimit()
	procs := opts.Procs
	if procs == 0 {
		procs = bench.ProcsFor(opts.Conns, opts.Transport, limit)
	}
	cfg := s.cfg
	progress, endProgress := progressPrinter(opts.IO.ErrOut)
	cfg.Progress = progress
	fmt.Fprintf(opts.IO.ErrOut, "bench %s: %s at %v/s for %s over %s, %s\n",
		cfg.URL, plural.Count(cfg.Conns, "connection", "connections"), cfg.Rate, cfg.Duration,
		plural.Count(procs, "load process", "load processes"), plural.Count(cfg.Sources, "source address", "source addresses"))

	var res *bench.Result
	var runErr error
	if procs == 1 {
		res, runErr = bench.Run(ctx, cfg)
	} else {
		res, runErr = bench.RunProcs(ctx, cfg, procs, opts.spawner())
	}
	endProgress()
	if res == nil {
		return runErr
	}
	rep := res.Report()
	if opts.JSON {
		if err := printIndentedJSON(opts.IO, rep); err != nil {
			return err
		}
	} else if err := bench.WriteText(opts.IO.Out, rep); err != nil {
		return err
	}
	if runErr != nil {
		return withCode(exitFailure, runErr, "the other load processes' results are above")
	}
	if ctx.Err() != nil {
		return withCode(exitFailure, errors.New("interrupted: the report covers the run until then"), "")
	}
	return nil
}

// serveShard is the hidden load-process mode: --shard i/k.
func serveShard(ctx context.Context, opts *benchOptions, cfg bench.Config) error {
	i, k, ok := strings.Cut(opts.Shard, "/")
	si, err1 := strconv.Atoi(i)
	sk, err2 := strconv.Atoi(k)
	if !ok || err1 != nil || err2 != nil || sk < 1 || si < 0 || si >= sk || opts.RunID == "" {
		return usageErrorf("--shard %q: want i/k with 0 ≤ i < k, and --run-id", opts.Shard)
	}
	_, _ = bench.RaiseFDLimit()
	cfg.Shard, cfg.Shards, cfg.RunID = si, sk, opts.RunID
	return bench.ServeShard(ctx, cfg, opts.IO.In, opts.IO.Out)
}

// spawner starts load processes: this binary, `bench` with the user's
// flags and --shard i/k.
func (o *benchOptions) spawner() bench.Spawner {
	return func(ctx context.Context, shard, shards int, runID string) (*bench.ShardConn, error) {
		exe, err := o.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the frutos binary: %w", err)
		}
		args := append([]string{"bench"}, o.passFlags...)
		args = append(args, fmt.Sprintf("--shard=%d/%d", shard, shards), "--run-id="+runID)
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stderr = o.IO.ErrOut
		cmd.WaitDelay = 5 * time.Second
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return &bench.ShardConn{In: in, Out: out, Wait: cmd.Wait}, nil
	}
}

// progressPrinter redraws one line on a terminal, or writes a line every
// 5 seconds to a log; end finishes the line.
func progressPrinter(w io.Writer) (progress func(bench.Progress), end func()) {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var last time.Duration = -time.Hour
	progress = func(p bench.Progress) {
		if tty {
			fmt.Fprint(w, "\r\033[K")
			bench.WriteProgress(w, p)
			return
		}
		if p.Elapsed-last < 5*time.Second {
			return
		}
		last = p.Elapsed
		bench.WriteProgress(w, p)
		fmt.Fprintln(w)
	}
	end = func() {
		if tty {
			fmt.Fprintln(w)
		}
	}
	return progress, end
}
