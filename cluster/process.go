package cluster

import (
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

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/handoff"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/workerproto"
	"github.com/frutos/frutos/logs"
	"github.com/frutos/frutos/redisctl"
)

// ProcessOptions is what Run needs to be a worker process.
type ProcessOptions struct {
	// Spec is the worker's command line: who it is, where it serves.
	Spec workerproto.Spec
	// Config is the resolved configuration.
	Config *configs.Config
	// Daemon is the read end of the liveness pipe (the process's stdin)
	// when a daemon started the worker; nil for a standalone worker. When
	// it ends and no daemon holds a lease on the worker, the worker is
	// orphaned: it drains at once with restart.orphan_grace 0, or waits
	// out the grace for a new daemon (workerproto's liveness rule).
	Daemon io.Reader
	// OwnStdio says that the process's descriptors 1 and 2 are the
	// worker's log, pipes its daemon reads (frutos worker): an orphan
	// points them at its own log files and an adopted worker at its new
	// daemon's pipes, and a write to a dead daemon's pipe must not kill
	// the process (SIGPIPE is ignored). Off for a worker run inside a
	// test's process.
	OwnStdio bool
	// Out gets the log up to info, Err warnings and errors, as text: the
	// daemon files them as the worker's out and err logs.
	Out, Err io.Writer
	// LogLevel is FRUTOS_LOG_LEVEL: debug, info (also ""), warn or error.
	LogLevel string
}

// StartError is a worker that could not start, and at which step, so that
// the command can pick its exit status and hint.
type StartError struct {
	Step StartStep
	Err  error
}

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// StartStep is a step of a worker's start that can fail for a reason the
// operator fixes outside frutos.
type StartStep int

const (
	// StepSecret: no JWT secret (the configuration).
	StepSecret StartStep = iota + 1
	// StepRedisURL: no usable Redis URL.
	StepRedisURL
	// StepRedis: the Redis URL does not open.
	StepRedis
	// StepListen: the public address is taken or not ours.
	StepListen
)

// Run is a worker process: it serves Socket.IO and the admin endpoints
// where opts.Spec says, until ctx ends (SIGTERM, caught by the caller), no
// daemon holds it any more (at once, or once restart.orphan_grace has
// passed with no daemon adopting it) or a listener fails; then it drains its clients within
// the configured kill_timeout and returns. It never exits the process; a
// failure to start is a *StartError when the step matters to the caller.
func Run(ctx context.Context, opts ProcessOptions) error {
	cfg := opts.Config
	supervised := opts.Daemon != nil
	log := newProcessLogger(opts.Out, opts.Err, logLevel(opts.LogLevel)).
		With("component", "worker", "worker", opts.Spec.ID, "pid", os.Getpid())
	redisctl.QuietLibraryLogs(log)
	if os.Getenv("GOGC") == "" {
		// Idle connections are most of a worker's heap, and the garbage
		// collector lets the heap grow to twice what is live before it
		// runs: 1.5 times keeps a worker's memory per connection about a
		// quarter lower, for a little more collection (README,
		// Measurements). An operator's GOGC wins.
		debug.SetGCPercent(workerGCPercent)
	}

	secret, generated, err := jwtauth.ResolveSecret(cfg)
	if err != nil {
		return &StartError{Step: StepSecret, Err: err}
	}
	if generated && !supervised {
		log.Info("using the development JWT secret of the state home (frutos token mints tokens for it)", "home", cfg.Home)
	}
	rawURL, _, err := redisctl.Resolve(cfg)
	if err != nil {
		return &StartError{Step: StepRedisURL, Err: err}
	}
	target, err := redisctl.Open(rawURL)
	if err != nil {
		return &StartError{Step: StepRedis, Err: err}
	}
	defer target.Close()

	w, err := New(Options{
		Config: cfg, Redis: target.Client, SessionPrefix: opts.Spec.Tag, Logger: log,
		Authenticate: VerifyJWT(secret, cfg.Auth.Leeway.Duration()),
	})
	if err != nil {
		return err
	}

	ctx, giveUp := context.WithCancel(ctx)
	defer giveUp()
	var att *attendance
	if supervised {
		var out *stdio
		if opts.OwnStdio {
			signal.Ignore(syscall.SIGPIPE)
			out = newStdio(cfg.LogsDir(), cfg.App, opts.Spec.ID)
		}
		att = newAttendance(w, opts.Spec, cfg.Restart.OrphanGrace.Duration(), out, log, giveUp)
		defer att.close()
		eof := workerproto.UntilEOF(ctx, opts.Daemon)
		go func() {
			<-eof.Done()
			if ctx.Err() == nil {
				att.parentGone()
			}
		}()
	}
	servers, err := serveWorker(opts.Spec, cfg, w, att, log)
	if err != nil {
		_ = w.Close(context.Background())
		return err
	}
	log.Info("worker started", "redis", target.URL, "tag", opts.Spec.Tag)
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

// VerifyJWT is the Authenticator of a real worker: HS256 tokens signed
// with secret (jwtauth).
func VerifyJWT(secret string, leeway time.Duration) Authenticator {
	return func(token string) (Identity, error) {
		c, err := jwtauth.VerifyLeeway(secret, token, leeway)
		return Identity{Sub: c.Sub, Role: c.Role}, err
	}
}

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

// serveWorker starts the listeners of spec: the private socket (with the
// leases of att) and the handoff socket of a supervised worker, the public
// and admin addresses of a standalone one.
func serveWorker(spec workerproto.Spec, cfg *configs.Config, w *Worker, att *attendance, log *slog.Logger) (*workerServers, error) {
	s := &workerServers{failed: make(chan error, 1)}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	if spec.Socket != "" {
		mux := http.NewServeMux()
		mux.Handle(workerproto.EnginePath, w.Handler())
		mux.Handle(workerproto.AdminPrefix+"/", http.StripPrefix(workerproto.AdminPrefix, w.AdminHandler()))
		if att != nil {
			mux.HandleFunc("GET "+workerproto.LeasePath, att.serveLease)
		}
		l, err := listenUnix(spec.Socket)
		if err != nil {
			return nil, err
		}
		s.serve(&http.Server{Handler: forwardedFor(mux), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second}, l)
	}
	if spec.Handoff != "" {
		l, err := handoff.Listen(spec.Handoff)
		if err != nil {
			s.close()
			return nil, err
		}
		s.closers = append(s.closers, l)
		// Websockets the front door accepted: served by the engine's
		// poller from here on, with no HTTP server in between.
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
	if spec.Socket == "" && spec.Handoff == "" || spec.Listen != "" {
		addr := spec.Listen
		if addr == "" {
			addr = net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			s.close()
			return nil, &StartError{Step: StepListen, Err: fmt.Errorf("listen on %s: %w", addr, err)}
		}
		s.serve(&http.Server{Handler: w.Handler(), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second}, l)
		log.Info("serving Socket.IO", "address", l.Addr().String())
	}
	if spec.Admin != "" {
		l, err := net.Listen("tcp", spec.Admin)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("listen on the admin address %s: %w", spec.Admin, err)
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

// workerGCPercent is the workers' GOGC unless the environment sets one.
const workerGCPercent = 50

// newProcessLogger logs from level up to info to out and warnings and
// errors to errOut, as text: the daemon files them as the worker's out and
// err logs. A package's component replaces the worker's (logs.UniqueKeys).
func newProcessLogger(out, errOut io.Writer, level slog.Level) *slog.Logger {
	return slog.New(logs.UniqueKeys(splitHandler{
		low:  slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}),
		high: slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}),
	}))
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
