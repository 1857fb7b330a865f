// Package cluster is the worker: the Socket.IO server that holds the users'
// connections. The daemon starts it N times (`frutos worker`), and it runs
// on its own under systemd or Kubernetes just as well.
//
// A worker serves Socket.IO on /socket.io/ (polling and websocket, with
// upgrade) for clients that authenticate with a JWT, puts every socket in
// user:<sub> (and mentor:<sub> for mentors), and joins the other workers
// (Go or Node) through the Redis adapter. Health and metrics are served on
// a separate, private handler.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"github.com/zishang520/socket.io/v3/pkg/utils"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
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
	// Authenticate verifies tokens (jwtauth.Verify with the secret).
	Authenticate Authenticator
	// SessionPrefix starts every Engine.IO session id of this worker, so a
	// front door can route a session's requests to it. At most 11 of
	// [A-Za-z0-9_-]; "" for none.
	SessionPrefix string
	// Logger gets the worker's structured log. Default: discard.
	Logger *slog.Logger
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]{0,11}$`)

// Worker is one Socket.IO server process.
type Worker struct {
	opts    Options
	cfg     *configs.Config
	log     *slog.Logger
	io      *socket.Server
	engine  *prefixEngine
	adapter *redisadapter.Adapter
	origins originPolicy
	started time.Time

	draining atomic.Bool
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
	if !prefixRe.MatchString(opts.SessionPrefix) {
		return nil, fmt.Errorf("session prefix %q: at most 11 of A-Z a-z 0-9 _ -", opts.SessionPrefix)
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

	so := socket.DefaultServerOptions()
	so.SetAdapter(w.adapter)
	so.SetServeClient(false)
	so.SetPingInterval(cfg.Limits.PingInterval.Duration())
	so.SetPingTimeout(cfg.Limits.PingTimeout.Duration())
	so.SetConnectTimeout(cfg.Limits.ConnectTimeout.Duration())
	so.SetMaxHttpBufferSize(int64(cfg.Limits.MaxPayload))
	so.SetCors(&types.Cors{Origin: w.origins.corsOrigin(), Credentials: cfg.CORS.Credentials})
	if cfg.Recovery.Enabled {
		csr := socket.DefaultConnectionStateRecovery()
		csr.SetMaxDisconnectionDuration(cfg.Recovery.MaxDisconnection.Duration().Milliseconds())
		// A custom adapter bypasses the library's defaults: set both.
		csr.SetSkipMiddlewares(true)
		so.SetConnectionStateRecovery(csr)
		// recovery without an offset; in streams mode, sessions kept in Redis
		so.SetParser(w.adapter.Parser(so.Parser()))
	}

	w.engine = &prefixEngine{Server: engine.MakeServer(), prefix: opts.SessionPrefix}
	w.engine.Prototype(w.engine)
	w.engine.Construct(so)
	w.io = socket.NewServer(nil, so)
	w.io.Bind(w.engine)
	w.io.Use(w.authenticate)
	w.io.On("connection", func(args ...any) { w.onConnection(args[0].(*socket.Socket)) })
	return w, nil
}

// prefixEngine is the Engine.IO server with session ids that start with
// the worker's prefix.
type prefixEngine struct {
	engine.Server
	prefix string
}

// GenerateId is called through the engine's prototype for every handshake.
func (e *prefixEngine) GenerateId(*types.HttpContext) string {
	if e.prefix == "" {
		return utils.Base64Id().GenerateId()
	}
	return e.prefix + "." + utils.Base64Id().GenerateId()
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
		mux.Handle("/socket.io/", w.guard(w.engine))
		w.handler = mux
	})
	return w.handler
}

// guard runs before the engine on every request. It refuses foreign
// origins, websocket upgrades included (the library's CORS option only sets
// headers), and new sessions while draining or full (503, so a load
// balancer may try another worker); requests of existing sessions pass.
func (w *Worker) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		newSession := r.URL.Query().Get("sid") == ""
		if origin := r.Header.Get("Origin"); origin != "" && !w.origins.allows(origin) {
			if newSession {
				w.m.refused(reasonOrigin)
			}
			refuse(rw, http.StatusForbidden, "Origin not allowed")
			return
		}
		if newSession {
			if reason, msg := w.refuseNew(); reason != "" {
				w.m.refused(reason)
				refuse(rw, http.StatusServiceUnavailable, msg)
				return
			}
		}
		if r.Header.Get("Upgrade") != "" {
			rw = newReleasingWriter(rw)
		}
		next.ServeHTTP(rw, r)
	})
}

// refuseNew says why a new session cannot start now, if it cannot.
func (w *Worker) refuseNew() (reason, message string) {
	if w.draining.Load() {
		return reasonDraining, "Server is shutting down"
	}
	if max := w.cfg.Limits.MaxConnections; max > 0 && int(w.engine.ClientsCount()) >= max {
		return reasonFull, "Server is full"
	}
	return "", ""
}

// refuse answers with an Engine.IO error body (code 4: forbidden).
func refuse(rw http.ResponseWriter, status int, message string) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(status)
	_, _ = fmt.Fprintf(rw, `{"code":4,"message":%q}`, message)
}

// Ready reports whether the worker should receive new sessions: not
// draining, and the adapter's subscriptions confirmed by Redis.
func (w *Worker) Ready() bool {
	return !w.draining.Load() && !w.closed.Load() && w.adapter.Ready()
}

// Drain stops taking new sessions and closes the transports of the
// connected clients, spread over at most spread, so that they reconnect
// (to another worker, through the front door) instead of all at once. It
// returns when every client is gone or ctx ends.
func (w *Worker) Drain(ctx context.Context, spread time.Duration) error {
	w.draining.Store(true)
	var conns []engine.Socket
	w.engine.Clients().Range(func(_ string, s engine.Socket) bool {
		conns = append(conns, s)
		return true
	})
	w.log.Info("draining", "clients", len(conns), "spread", spread.String())
	if len(conns) > 0 {
		step := spread / time.Duration(len(conns))
		tick := time.NewTicker(max(step, time.Microsecond))
		defer tick.Stop()
		for _, c := range conns {
			// A closed transport makes the client reconnect by itself;
			// a Socket.IO DISCONNECT would not.
			c.Close(false)
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
	for w.engine.ClientsCount() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d clients still connected: %w", w.engine.ClientsCount(), ctx.Err())
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
	return w.adapter.Close(ctx)
}

// Uptime is how long the worker has existed.
func (w *Worker) Uptime() time.Duration { return time.Since(w.started) }
