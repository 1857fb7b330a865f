package adminui

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/crypto/bcrypt"
)

// Namespace is where the dashboard connects (Node's default namespaceName).
const Namespace = "/admin"

// DefaultStatsInterval is how often every server sends server_stats
// (Node's, fixed there).
const DefaultStatsInterval = 2 * time.Second

// The features of the protocol (config.supportedFeatures).
const (
	featureEmit        = "EMIT"
	featureJoin        = "JOIN"
	featureLeave       = "LEAVE"
	featureDisconnect  = "DISCONNECT"
	featureMJoin       = "MJOIN"
	featureMLeave      = "MLEAVE"
	featureMDisconnect = "MDISCONNECT"
)

// Options configures the Admin UI's server side.
type Options struct {
	// Username and PasswordHash (bcrypt) are the login. An empty
	// PasswordHash means no login at all (development only: configs
	// refuses it in production).
	Username     string
	PasswordHash string
	// ReadOnly announces no feature and registers no action: the
	// dashboard shows, and cannot emit, join, leave or disconnect.
	ReadOnly bool
	// Redis keeps the dashboard's login sessions, so that one reconnecting
	// to another worker (or reloaded) stays logged in. Required with a
	// PasswordHash.
	Redis redis.UniversalClient
	// SessionKey starts the session keys (<SessionKey>#<id>, kept a day):
	// "socket.io-admin" by default, as Node's RedisStore, so that the Node
	// servers of a mixed fleet accept the same sessions.
	SessionKey string
	// ServerID names this server on the dashboard (default host#pid, as
	// Node's instrument() in a cluster worker).
	ServerID string
	// Clients returns this server's Engine.IO sessions and how many of
	// them are on long-polling (server_stats).
	Clients func() (all, polling int)
	// Started is when this server started (server_stats.uptime).
	Started time.Time
	// StatsInterval is how often server_stats is sent (DefaultStatsInterval).
	StatsInterval time.Duration
	// Logger gets failed logins, the dashboard's actions and errors.
	// Default: discard.
	Logger *slog.Logger
}

// UI is the Admin UI's server side on one Socket.IO server. Build it with
// Instrument; Close stops it.
type UI struct {
	io       *socket.Server
	opts     Options
	log      *slog.Logger
	admin    socket.Namespace
	hash     []byte
	features []string
	hostname string

	mu   sync.Mutex
	nsps map[string]socket.Namespace // instrumented namespaces, by name

	logins    logins        // sessions created by a login, until the socket connects
	bcryptSem chan struct{} // bounds the CPU that password checks may take

	// outbox carries the events for the dashboards to one sender: they
	// are noticed inside the library's callbacks (a room left while a
	// client closes, under that client's lock), where a broadcast that
	// reaches the same client would deadlock. Node defers room_left with
	// process.nextTick for the same reason. Full, it drops (and counts).
	outbox  chan outEvent
	dropped atomic.Uint64

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // the sender, the stats loop and all_sockets requests
}

// outEvent is one event for every dashboard of the cluster.
type outEvent struct {
	name string
	args []any
}

// outboxSize bounds the events waiting for the sender: a burst of
// connections (a reload reconnects every client of a worker) fits; a
// Redis that stops taking them does not grow the worker's memory.
const outboxSize = 4096

// Instrument adds the Admin UI to io, as Node's instrument(io, opts) of
// @socket.io/admin-ui 0.5 does: the /admin namespace and its login, the
// events every namespace reports there, and server_stats every interval.
// Everything goes through io's adapter, so with the Redis adapter one
// dashboard sees, and acts on, the whole cluster.
func Instrument(io *socket.Server, o Options) (*UI, error) {
	if o.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(o.PasswordHash)); err != nil {
			return nil, errors.New("adminui: the password hash is not a bcrypt hash")
		}
		if o.Redis == nil {
			return nil, errors.New("adminui: Redis is required to keep login sessions")
		}
	}
	if o.Username == "" {
		o.Username = "admin"
	}
	if o.SessionKey == "" {
		o.SessionKey = "socket.io-admin"
	}
	if o.StatsInterval <= 0 {
		o.StatsInterval = DefaultStatsInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clients == nil {
		o.Clients = func() (int, int) { return 0, 0 }
	}
	if o.Started.IsZero() {
		o.Started = time.Now()
	}
	host, _ := os.Hostname()
	if o.ServerID == "" {
		o.ServerID = fmt.Sprintf("%s#%d", host, os.Getpid())
	}
	u := &UI{
		io:        io,
		opts:      o,
		log:       o.Logger.With("component", "admin-ui"),
		hash:      []byte(o.PasswordHash),
		hostname:  host,
		nsps:      map[string]socket.Namespace{},
		bcryptSem: make(chan struct{}, 2),
		done:      make(chan struct{}),
		features:  []string{},
		outbox:    make(chan outEvent, outboxSize),
	}
	if !o.ReadOnly {
		u.features = []string{featureEmit, featureJoin, featureLeave, featureDisconnect,
			featureMJoin, featureMLeave, featureMDisconnect}
	}
	// No AGGREGATED_EVENTS and no ALL_EVENTS: the dashboard then shows its
	// sockets, rooms, clients and events pages (its "development mode")
	// without a message per event sent (see doc.go).

	u.admin = io.Of(Namespace, nil)
	u.admin.Use(u.authenticate)
	u.watch(io.Sockets())
	u.watch(u.admin)
	_ = io.Sockets().On("new_namespace", func(args ...any) {
		if nsp, ok := firstArg(args).(socket.Namespace); ok {
			u.watch(nsp)
		}
	})
	if o.PasswordHash == "" {
		u.log.Warn("the Admin UI has no login (development only): anyone who reaches this port can use it")
	}

	u.wg.Add(2)
	go u.send()
	go u.statsLoop()
	return u, nil
}

// Close stops the stats and waits for the all_sockets requests under way
// (they end with the adapter: close the Socket.IO server first).
func (u *UI) Close() {
	u.closeOnce.Do(func() { close(u.done) })
	u.wg.Wait()
}

// namespace returns an instrumented namespace; the dashboard's actions
// never create one.
func (u *UI) namespace(name string) (socket.Namespace, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	nsp, ok := u.nsps[name]
	return nsp, ok
}

func (u *UI) namespaces() []socket.Namespace {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]socket.Namespace, 0, len(u.nsps))
	for _, nsp := range u.nsps {
		out = append(out, nsp)
	}
	return out
}

// emit queues an event for every dashboard of the cluster. It never
// blocks: called from inside the library's callbacks, it must not
// broadcast there (see outbox).
func (u *UI) emit(ev string, args ...any) {
	select {
	case u.outbox <- outEvent{name: ev, args: args}:
	default:
		u.dropped.Add(1)
	}
}

// send broadcasts the queued events to /admin, in order, through the
// adapter (so every server's dashboards get them).
func (u *UI) send() {
	defer u.wg.Done()
	for {
		select {
		case <-u.done:
			return
		case e := <-u.outbox:
			if err := u.admin.Emit(e.name, e.args...); err != nil {
				u.log.Debug("emit to the dashboards", "event", e.name, "err", err.Error())
			}
		}
	}
}

// statsLoop sends server_stats now and every interval, and forgets the
// logins whose socket never connected.
func (u *UI) statsLoop() {
	defer u.wg.Done()
	t := time.NewTicker(u.opts.StatsInterval)
	defer t.Stop()
	for {
		u.emit("server_stats", u.stats())
		select {
		case <-u.done:
			return
		case <-t.C:
			u.logins.expire(time.Now().Add(-time.Minute))
			if n := u.dropped.Swap(0); n > 0 {
				u.log.Warn("admin UI: events for the dashboards dropped (the queue was full); reload the dashboard for a fresh list", "dropped", n)
			}
		}
	}
}

// stats is this server's server_stats.
func (u *UI) stats() map[string]any {
	all, polling := u.opts.Clients()
	nsps := []any{}
	for _, nsp := range u.namespaces() {
		nsps = append(nsps, map[string]any{"name": nsp.Name(), "socketsCount": nsp.Sockets().Len()})
	}
	return map[string]any{
		"serverId":            u.opts.ServerID,
		"hostname":            u.hostname,
		"pid":                 os.Getpid(),
		"uptime":              time.Since(u.opts.Started).Seconds(),
		"clientsCount":        all,
		"pollingClientsCount": polling,
		"namespaces":          nsps,
	}
}

// timestamp is a time as the dashboard reads it (a JavaScript Date's
// JSON form).
func timestamp() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000Z") }

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

func stringArg(args []any, i int) string {
	if i < len(args) {
		s, _ := args[i].(string)
		return s
	}
	return ""
}
