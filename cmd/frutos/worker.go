package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/handoff"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/redisctl"
)

// workerAdminPrefix is where the admin endpoints live on a worker's private
// socket (the daemon's health checks and stats).
const workerAdminPrefix = "/_frutos"

type workerOptions struct {
	IO     *IOStreams
	Config func(configs.Flags) (*configs.Config, error)
	Getenv func(string) string

	ID       int
	Tag      string
	Socket   string // daemon mode: private HTTP socket (Socket.IO + admin)
	Handoff  string // daemon mode: handed-over websocket connections
	Listen   string // standalone: public address
	Admin    string // standalone: admin address
	RedisURL string
}

func newCmdWorker(f *Factory, runF func(*workerOptions) error) *cobra.Command {
	opts := &workerOptions{IO: f.IO, Config: f.Config, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run one Socket.IO worker in the foreground (the daemon starts these)",
		Long: `Run one Socket.IO worker in the foreground.

The daemon starts N of these. Run one yourself under systemd or Kubernetes:
it serves Socket.IO on --listen (default host:port from the configuration)
and, with --admin, /health, /stats and /metrics on a private address.
SIGTERM drains it: new sessions are refused and connected clients are
asked to reconnect elsewhere (their transport is closed), then it exits 0.`,
		Example: `  frutos worker --listen 127.0.0.1:3001 --admin 127.0.0.1:9101
  REDIS_URL=redis://redis:6379 FRUTOS_AUTH_SECRET=s3cret frutos worker --env production`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runWorker(opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.ID, "id", 0, "worker id (slot) shown in logs")
	fl.StringVar(&opts.Tag, "tag", "", "prefix of this worker's session ids, for the front door")
	fl.StringVar(&opts.Socket, "socket", "", "serve Socket.IO and the admin endpoints on this unix socket (daemon mode)")
	fl.StringVar(&opts.Handoff, "handoff", "", "receive websocket connections from the front door on this unix socket (daemon mode)")
	fl.StringVar(&opts.Listen, "listen", "", "serve Socket.IO on this address (standalone; default host:port of the configuration)")
	fl.StringVar(&opts.Admin, "admin", "", "serve /health, /stats and /metrics on this address (keep it private)")
	fl.StringVar(&opts.RedisURL, "redis", "", "Redis URL (default: REDIS_URL, then the configuration)")
	return cmd
}

func runWorker(opts *workerOptions) error {
	child := opts.Getenv(configs.ChildConfigEnv) != ""
	var cfg *configs.Config
	var err error
	if child {
		cfg, err = configs.FromChildEnv(opts.Getenv)
	} else {
		cfg, err = opts.Config(configs.Flags{RedisURL: opts.RedisURL})
	}
	if err != nil {
		return err
	}
	log := newProcessLogger(opts.IO.Out, opts.IO.ErrOut, logLevel(opts.Getenv("FRUTOS_LOG_LEVEL"))).
		With("component", "worker", "worker", opts.ID, "pid", os.Getpid())
	if opts.Getenv("GOGC") == "" {
		// Idle connections are most of a worker's heap, and the garbage
		// collector lets the heap grow to twice what is live before it
		// runs: 1.5 times keeps a worker's memory per connection about a
		// quarter lower, for a little more collection (README,
		// Measurements). An operator's GOGC wins.
		debug.SetGCPercent(workerGCPercent)
	}
	redisctl.QuietLibraryLogs(log)

	secret, generated, err := jwtauth.ResolveSecret(cfg)
	if err != nil {
		return withCode(exitConfig, err, "")
	}
	if generated && !child {
		log.Info("using the development JWT secret of the state home (frutos token mints tokens for it)", "home", cfg.Home)
	}
	rawURL, _, err := redisctl.Resolve(cfg)
	if err != nil {
		return withCode(exitRedis, err, "pass --redis or set REDIS_URL")
	}
	target, err := redisctl.Open(rawURL)
	if err != nil {
		return withCode(exitRedis, err, "")
	}
	defer target.Close()

	w, err := cluster.New(cluster.Options{
		Config: cfg, Redis: target.Client, SessionPrefix: opts.Tag, Logger: log,
		Authenticate: func(token string) (cluster.Identity, error) {
			c, err := jwtauth.Verify(secret, token)
			return cluster.Identity{Sub: c.Sub, Role: c.Role}, err
		},
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if child {
		// The daemon holds our stdin: when it goes away (even by kill -9),
		// the pipe ends and we stop instead of lingering as an orphan.
		ctx = untilEOF(ctx, os.Stdin)
	}

	servers, err := serveWorker(opts, cfg, w, log)
	if err != nil {
		_ = w.Close(context.Background())
		return err
	}
	log.Info("worker started", "redis", target.URL, "tag", opts.Tag)
	select {
	case <-ctx.Done():
	case err := <-servers.failed:
		log.Error("a listener failed", "err", err)
	}

	killTimeout := cfg.Restart.KillTimeout.Duration()
	budget := max(killTimeout-time.Second, killTimeout*3/4)
	dctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	if err := w.Drain(dctx, min(5*time.Second, budget/3)); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	servers.close()
	if err := w.Close(dctx); err != nil {
		log.Warn("close", "err", err)
	}
	log.Info("worker stopped", "drained_in", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// workerGCPercent is the workers' GOGC unless the environment sets one.
const workerGCPercent = 50

// workerServers are the worker's listeners and their HTTP servers.
type workerServers struct {
	servers []*http.Server
	closers []io.Closer
	failed  chan error
}

func (s *workerServers) serve(srv *http.Server, l net.Listener) {
	s.servers = append(s.servers, srv)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.failed <- err:
			default:
			}
		}
	}()
}

func (s *workerServers) close() {
	for _, srv := range s.servers {
		_ = srv.Close()
	}
	for _, c := range s.closers {
		_ = c.Close()
	}
}

func serveWorker(opts *workerOptions, cfg *configs.Config, w *cluster.Worker, log *slog.Logger) (*workerServers, error) {
	s := &workerServers{failed: make(chan error, 1)}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	if opts.Socket != "" {
		mux := http.NewServeMux()
		mux.Handle("/socket.io/", w.Handler())
		mux.Handle(workerAdminPrefix+"/", http.StripPrefix(workerAdminPrefix, w.AdminHandler()))
		l, err := listenUnix(opts.Socket)
		if err != nil {
			return nil, err
		}
		s.serve(&http.Server{Handler: forwardedFor(mux), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second}, l)
	}
	if opts.Handoff != "" {
		l, err := handoff.Listen(opts.Handoff)
		if err != nil {
			s.close()
			return nil, err
		}
		s.closers = append(s.closers, l)
		go func() {
			for {
				h, err := l.AcceptFD()
				if err != nil {
					return // closed
				}
				w.ServeHandoff(h)
			}
		}()
	}
	if opts.Socket == "" && opts.Handoff == "" || opts.Listen != "" {
		addr := opts.Listen
		if addr == "" {
			addr = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return nil, withCode(exitFailure, fmt.Errorf("listen on %s: %w", addr, err), "is another process using the port? pick one with --listen")
		}
		s.serve(&http.Server{Handler: w.Handler(), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second}, l)
		log.Info("serving Socket.IO", "address", l.Addr().String())
	}
	if opts.Admin != "" {
		l, err := net.Listen("tcp", opts.Admin)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listen on the admin address %s: %w", opts.Admin, err)
		}
		s.serve(&http.Server{Handler: w.AdminHandler(), ErrorLog: errLog}, l)
		log.Info("serving /health, /stats and /metrics", "address", l.Addr().String())
	}
	return s, nil
}

// forwardedFor gives requests proxied by the front door (over the private
// socket, which only the daemon reaches) the client's address, so the
// handshake of a polling session records where the client is.
func forwardedFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			r.RemoteAddr = net.JoinHostPort(strings.TrimSpace(first), "0")
		}
		next.ServeHTTP(w, r)
	})
}

// listenUnix listens on a fresh owner-only unix socket.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// untilEOF returns a context that ends when r reaches EOF (or fails).
func untilEOF(parent context.Context, r io.Reader) context.Context {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		defer cancel()
		br := bufio.NewReader(r)
		for {
			if _, err := br.ReadByte(); err != nil {
				return
			}
		}
	}()
	return ctx
}

// newProcessLogger logs from level up to info to out and warnings and
// errors to errOut, as text: the daemon files them as the worker's out and
// err logs.
func newProcessLogger(out, errOut io.Writer, level slog.Level) *slog.Logger {
	return slog.New(splitHandler{
		low:  slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}),
		high: slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}),
	})
}

// logLevel reads FRUTOS_LOG_LEVEL (debug, info, warn, error); info by default.
func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

type splitHandler struct{ low, high slog.Handler }

func (h splitHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.low.Enabled(ctx, l) || h.high.Enabled(ctx, l)
}

func (h splitHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		return h.high.Handle(ctx, r)
	}
	return h.low.Handle(ctx, r)
}

func (h splitHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return splitHandler{h.low.WithAttrs(a), h.high.WithAttrs(a)}
}

func (h splitHandler) WithGroup(n string) slog.Handler {
	return splitHandler{h.low.WithGroup(n), h.high.WithGroup(n)}
}
