// Package cluster is the worker: the Socket.IO server that holds the users'
// connections. The daemon starts it N times (`frutos worker`), and it runs
// on its own under systemd or Kubernetes just as well.
//
// A worker serves Socket.IO on /socket.io/ (polling and websocket, with
// upgrade) for clients that authenticate with a JWT, puts every socket in
// its rooms (package rooms: user:<sub>, and mentor:<sub> for mentors), and
// joins the other workers (Go or Node) through the Redis adapter (package
// redisadapter). Health and metrics are served on a separate, private
// handler.
//
// Worker (worker.go, sockets.go, metrics.go) is the server as a value, for
// tests and embedding; Run (process.go) is the worker process: its
// listeners, its log, the daemon's liveness pipe, drain on SIGTERM. What it
// agrees on with the daemon (its command line, session ids, stats, the
// liveness rule) is internal/workerproto; cluster never imports daemon.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/adminui"
	"github.com/frutos/frutos/cluster/engine"
	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/handoff"
	"github.com/frutos/frutos/internal/workerproto"
	"github.com/frutos/frutos/redisctl"
)

// Identity is who a client is, from its token.
type Identity struct {
	Sub  string
	Role string
}

// Authenticator checks the token of handshake.auth.token.
type Authenticator func(token string) (Identity, error)

// Options configures a Worker.
type Options struct {
	// Config supplies limits, CORS, recovery and the adapter key.
	Config *configs.Config
	// Redis is the client the adapter publishes with; the worker does not
	// close it.
	Redis redis.UniversalClient
	// Authenticate verifies tokens (VerifyJWT(secret) in a real worker).
	Authenticate Authenticator
	// SessionPrefix starts every Engine.IO session id of this worker, so a
	// front door can route a session's requests to it: the worker's tag
	// (workerproto.SessionID, CheckTag); "" for none.
	SessionPrefix string
	// Logger gets the worker's structured log. Default: discard.
	Logger *slog.Logger
}

// Worker is one Socket.IO server process.
type Worker struct {
	opts    Options
	cfg     *configs.Config
	log     *slog.Logger
	io      *socket.Server
	engine  *engine.Server
	adapter *redisadapter.Adapter
	adminUI *adminui.UI // nil unless admin_ui.enabled
	origins originPolicy
	started time.Time

	draining atomic.Bool
	orphaned atomic.Bool // no daemon holds it (orphan.go)
	closed   atomic.Bool
	m        metrics

	handlerOnce sync.Once
	handler     http.Handler
}

// New builds a worker; serve Handler() on the public listener and
// AdminHandler() on a private one.
func New(opts Options) (*Worker, error) {
	if opts.Config == nil || opts.Redis == nil || opts.Authenticate == nil {
		return nil, errors.New("cluster.New: Config, Redis and Authenticate are required")
	}
	if err := workerproto.CheckTag(opts.SessionPrefix); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	w := &Worker{
		opts:    opts,
		cfg:     cfg,
		log:     opts.Logger,
		origins: newOriginPolicy(cfg.CORS.Origins),
		started: time.Now(),
	}
	ao := redisadapter.Options{
		Key:            cfg.Redis.Key,
		Sharded:        cfg.Redis.Sharded,
		RequestTimeout: cfg.Redis.RequestTimeout.Duration(),
		Logger:         opts.Logger,
	}
	if redisctl.Streams(cfg.Redis) {
		ao.Streams, ao.Stream = true, redisctl.StreamOptions(cfg.Redis)
	}
	w.adapter = redisadapter.New(opts.Redis, ao)

	eng, err := engine.NewServer(engine.Options{
		PingInterval: cfg.Limits.PingInterval.Duration(),
		PingTimeout:  cfg.Limits.PingTimeout.Duration(),
		MaxPayload:   int(cfg.Limits.MaxPayload),
		MaxBuffered:  maxBuffered(cfg.Limits),
		NewID:        func() string { return workerproto.SessionID(opts.SessionPrefix, engine.NewID()) },
		Allow:        w.allow,
		CORS:         engine.CORS{Allowed: w.origins.allowsAny(), Credentials: cfg.CORS.Credentials},
		OnClose:      w.sessionClosed,
		Logger:       opts.Logger,
	})
	if err != nil {
		_ = w.adapter.Close(context.Background())
		return nil, fmt.Errorf("start the Engine.IO server: %w", err)
	}
	w.engine = eng

	// The Socket.IO layer (namespaces, rooms, acks, recovery) is the
	// library's, on our engine.
	so := socket.DefaultServerOptions()
	so.SetAdapter(w.adapter)
	so.SetServeClient(false)
	so.SetConnectTimeout(cfg.Limits.ConnectTimeout.Duration())
	if cfg.Recovery.Enabled {
		csr := socket.DefaultConnectionStateRecovery()
		csr.SetMaxDisconnectionDuration(cfg.Recovery.MaxDisconnection.Duration().Milliseconds())
		// A custom adapter bypasses the library's defaults: set both.
		csr.SetSkipMiddlewares(true)
		so.SetConnectionStateRecovery(csr)
		// recovery without an offset; in streams mode, sessions kept in Redis
		so.SetParser(w.adapter.Parser(so.Parser()))
	}
	w.io = socket.NewServer(nil, so)
	w.io.Bind(w.engine)
	w.io.Use(w.authenticate)
	w.io.On("connection", func(args ...any) { w.onConnection(args[0].(*socket.Socket)) })
	if cfg.AdminUI.Enabled {
		if w.adminUI, err = w.instrument(); err != nil {
			w.io.Close(nil)
			_ = w.adapter.Close(context.Background())
			return nil, err
		}
	}
	return w, nil
}

// instrument adds the Admin UI (the /admin namespace, cluster-wide through
// the adapter). Off by default; with it off the worker registers nothing
// for it.
func (w *Worker) instrument() (*adminui.UI, error) {
	host := w.cfg.Node.Name
	if host == "" {
		host, _ = os.Hostname()
	}
	if w.opts.SessionPrefix != "" {
		host += "/" + w.opts.SessionPrefix
	}
	return adminui.Instrument(w.io, adminui.Options{
		Username:     w.cfg.AdminUI.Username,
		PasswordHash: w.cfg.AdminUI.PasswordHash,
		ReadOnly:     w.cfg.AdminUI.ReadOnly,
		Redis:        w.opts.Redis,
		SessionKey:   w.cfg.Redis.Key + "-admin",
		ServerID:     fmt.Sprintf("%s#%d", host, os.Getpid()),
		Clients: func() (int, int) {
			all := w.engine.Count()
			return all, max(all-w.engine.CountWebsocket(), 0)
		},
		Started: w.started,
		Logger:  w.log,
	})
}

// maxBuffered is limits.max_buffered as the engine takes it: -1 for none
// (0 in the configuration), and never less than one largest message.
func maxBuffered(l configs.Limits) int {
	if l.MaxBuffered == 0 {
		return -1
	}
	return int(max(l.MaxBuffered, l.MaxPayload+16))
}

// IO is the Socket.IO server, for application code that needs more than
// the Emit helpers.
func (w *Worker) IO() *socket.Server { return w.io }

// Adapter is the worker's Redis adapter.
func (w *Worker) Adapter() *redisadapter.Adapter { return w.adapter }

// Handler serves /socket.io/ (everything else is 404).
func (w *Worker) Handler() http.Handler {
	w.handlerOnce.Do(func() {
		mux := http.NewServeMux()
		mux.Handle(workerproto.EnginePath, w.engine)
		w.handler = mux
	})
	return w.handler
}

// ServeHandoff serves a websocket upgrade the front door accepted and
// handed over (its descriptor and the bytes it read).
func (w *Worker) ServeHandoff(h handoff.Handed) { w.engine.ServeHandoff(h.FD, h.Head) }

// allow runs before the engine does any work for a request (websocket
// upgrades included; the CORS headers alone would not stop them). It
// refuses foreign origins, and new sessions while draining or full (503,
// so that a load balancer may try another worker); requests of existing
// sessions pass.
func (w *Worker) allow(r *http.Request, newSession bool) *engine.Refusal {
	if origin := r.Header.Get("Origin"); origin != "" && !w.origins.allows(origin) {
		if newSession {
			w.m.refused(reasonOrigin)
		}
		return &engine.Refusal{Status: http.StatusForbidden, Code: engine.CodeForbidden, Message: "Origin not allowed"}
	}
	if newSession {
		if reason, msg := w.refuseNew(); reason != "" {
			w.m.refused(reason)
			return &engine.Refusal{Status: http.StatusServiceUnavailable, Code: engine.CodeForbidden, Message: msg}
		}
	}
	return nil
}

// sessionClosed counts why a session ended; a slow consumer is worth a
// line in the log.
func (w *Worker) sessionClosed(s *engine.Socket, reason engine.Reason) {
	w.m.disconnected(reason)
	if reason == engine.ReasonWriteCap {
		w.log.Warn("slow consumer disconnected: it did not read what was sent", "sid", s.ID(),
			"address", s.RemoteAddress(), "max_buffered", w.cfg.Limits.MaxBuffered.String())
		return
	}
	w.log.Debug("session closed", "sid", s.ID(), "reason", string(reason))
}

// refuseNew says why a new session cannot start now, if it cannot.
func (w *Worker) refuseNew() (reason, message string) {
	if w.draining.Load() {
		return reasonDraining, "Server is shutting down"
	}
	if w.orphaned.Load() {
		return reasonOrphaned, "Server has no daemon: try again"
	}
	if max := w.cfg.Limits.MaxConnections; max > 0 && w.engine.Count() >= max {
		return reasonFull, "Server is full"
	}
	return "", ""
}

// Ready reports whether the worker should receive new sessions: not
// draining, held by a daemon, and the adapter's subscriptions confirmed by
// Redis.
func (w *Worker) Ready() bool {
	return !w.draining.Load() && !w.orphaned.Load() && !w.closed.Load() && w.adapter.Ready()
}

// Drain stops taking new sessions and closes the transports of the
// connected clients, spread over at most spread, so that they reconnect
// (to another worker, through the front door) instead of all at once. It
// returns when every client is gone or ctx ends.
func (w *Worker) Drain(ctx context.Context, spread time.Duration) error {
	w.draining.Store(true)
	conns := w.engine.Sessions()
	w.log.Info("draining", "clients", len(conns), "spread", spread.String())
	if len(conns) > 0 {
		step := spread / time.Duration(len(conns))
		tick := time.NewTicker(max(step, time.Microsecond))
		defer tick.Stop()
		for _, c := range conns {
			// A closed transport makes the client reconnect by itself;
			// a Socket.IO DISCONNECT would not.
			c.Disconnect(engine.ReasonDrain)
			if step > 0 {
				select {
				case <-tick.C:
				case <-ctx.Done():
				}
			}
		}
	}
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for w.engine.Count() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d clients still connected: %w", w.engine.Count(), ctx.Err())
		case <-poll.C:
		}
	}
	// Keep the drained clients' sessions until the workers they reconnect
	// to have taken them over (with the events they missed meanwhile), or
	// handoverGrace passes: a client that does not come back starts anew.
	grace := time.NewTimer(handoverGrace)
	defer grace.Stop()
	for w.adapter.AwaySessions() > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-grace.C:
			w.log.Info("drained; sessions not taken over", "sessions", w.adapter.AwaySessions())
			return nil
		case <-poll.C:
		}
	}
	return nil
}

// handoverGrace is how long a drained worker keeps the sessions of its
// clients for the workers they reconnect to.
const handoverGrace = 5 * time.Second

// Close drains nothing: it closes every connection at once, flushes what
// the adapter still has to publish (until ctx ends) and releases the
// worker. Call Drain first for a graceful stop.
func (w *Worker) Close(ctx context.Context) error {
	if !w.closed.CompareAndSwap(false, true) {
		return nil
	}
	w.draining.Store(true)
	w.io.Close(nil)
	if w.adminUI != nil {
		w.adminUI.Close()
	}
	return w.adapter.Close(ctx)
}

// Uptime is how long the worker has existed.
func (w *Worker) Uptime() time.Duration { return time.Since(w.started) }
