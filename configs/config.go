// Package configs holds the frutos configuration: one typed struct, its
// defaults, the loader (defaults < frutos.yaml < the file's env.<name> section
// < environment variables < command-line flags), validation whose messages name
// the file, line and field, and the hand-off of the resolved settings to worker
// processes (ChildEnv / FromChildEnv).
package configs

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Env names.
const (
	Development = "development"
	Production  = "production"
)

// Config is every setting of a frutos daemon and its workers.
//
// After Load, Auth.Secret holds the resolved JWT secret: the value of the
// environment variable named by Auth.SecretEnv when that is set, else the
// inline auth.secret of the file (development only), else "" (in development
// the caller then generates a per-home secret; production refuses to start).
type Config struct {
	// App names the application in status output and log file names.
	App string `yaml:"app" json:"app"`
	// Env is "development" or "production". It is chosen with --env (never by
	// the file) and selects the file's env.<name> section.
	Env string `yaml:"-" json:"env"`
	// Instances is how many workers to run: a count or "max" (one per CPU).
	Instances Instances `yaml:"instances" json:"instances"`
	// Host is the public listen address; "0.0.0.0" is every IPv4 interface.
	Host string `yaml:"host" json:"host"`
	// Port is the public port all workers serve (env PORT).
	Port int `yaml:"port" json:"port"`
	// Home is the state home: control socket, pid file, dump.json, logs
	// (env FRUTOS_HOME). Load makes it absolute; "~" is the user's home.
	Home string `yaml:"home" json:"home"`

	Redis    Redis    `yaml:"redis" json:"redis"`
	Auth     Auth     `yaml:"auth" json:"auth"`
	CORS     CORS     `yaml:"cors" json:"cors"`
	Limits   Limits   `yaml:"limits" json:"limits"`
	Recovery Recovery `yaml:"recovery" json:"recovery"`
	Logs     Logs     `yaml:"logs" json:"logs"`
	Restart  Restart  `yaml:"restart" json:"restart"`
	Node     Node     `yaml:"node" json:"node"`
	Emit     Emit     `yaml:"emit" json:"emit"`
	AdminUI  AdminUI  `yaml:"admin_ui" json:"admin_ui"`
}

// Redis is the bus between workers (and between hosts).
type Redis struct {
	// URL is redis://, rediss:// or unix:// (env REDIS_URL). Empty in
	// development means the daemon runs an embedded Redis; production refuses
	// an empty URL.
	URL string `yaml:"url" json:"url"`
	// Key is the channel prefix of @socket.io/redis-adapter; Node servers and
	// emitters sharing the bus must use the same one.
	Key string `yaml:"key" json:"key"`
	// Sharded uses Redis 7 sharded pub/sub (SPUBLISH/SSUBSCRIBE), for Redis Cluster.
	Sharded bool `yaml:"sharded" json:"sharded"`
	// RequestTimeout bounds cluster requests (fetchSockets, serverSideEmit...).
	RequestTimeout Duration `yaml:"request_timeout" json:"request_timeout"`
	// Adapter is the protocol between workers (env FRUTOS_REDIS_ADAPTER):
	// AdapterPubSub, @socket.io/redis-adapter's, which Node's
	// @socket.io/redis-emitter reaches; or AdapterStreams,
	// @socket.io/redis-streams-adapter's, where nothing Redis accepted is
	// lost when a worker dies or Redis blinks.
	Adapter string `yaml:"adapter" json:"adapter"`
	// Streams are the settings of the streams adapter.
	Streams Streams `yaml:"streams" json:"streams"`
}

// The values of redis.adapter.
const (
	AdapterPubSub  = "pubsub"
	AdapterStreams = "streams"
)

// Streams configures redis.adapter: streams, with the option names of
// Node's @socket.io/redis-streams-adapter: every server (Go or Node) and
// emitter of the fleet must agree on them.
type Streams struct {
	// Name is the stream (streamName); with Count > 1, the prefix of the
	// streams <name>-0 ... <name>-<count-1>.
	Name string `yaml:"name" json:"name"`
	// Count spreads namespaces over several streams (streamCount); a
	// namespace stays on one, so with frutos' one namespace, 1.
	Count int `yaml:"count" json:"count"`
	// MaxLen bounds the stream (maxLen, trimmed with MAXLEN ~): a client
	// whose last event is older than the last MaxLen entries cannot be
	// recovered. Size it to emits per second x the longest reconnection.
	MaxLen int `yaml:"max_len" json:"max_len"`
	// SessionPrefix starts the keys of stored sessions (sessionKeyPrefix).
	SessionPrefix string `yaml:"session_prefix" json:"session_prefix"`
}

// Auth is how workers check the JWT in the Socket.IO handshake.
type Auth struct {
	// SecretEnv is the NAME of the environment variable holding the HS256
	// secret, so the secret itself stays out of the file.
	SecretEnv string `yaml:"secret_env" json:"secret_env"`
	// Secret is the resolved secret (see Config). Written inline in the file it
	// is accepted in development only.
	Secret string `yaml:"secret" json:"secret"`
	// Leeway is the clock skew tolerated on a token's exp (and nbf): 0 by
	// default, so an expired token is refused at once. At most 5m.
	Leeway Duration `yaml:"leeway" json:"leeway"`
}

// CORS says which browser origins may connect.
type CORS struct {
	// Origins are exact origins like "https://app.example.com"; "*" allows any
	// (refused in production); an empty list allows no cross-origin browser.
	// Env FRUTOS_CORS_ORIGINS (comma-separated) replaces the list.
	Origins []string `yaml:"origins" json:"origins"`
	// Credentials lets browsers send cookies and auth headers cross-origin.
	Credentials bool `yaml:"credentials" json:"credentials"`
}

// Limits are the per-connection and per-worker limits of the Socket.IO server.
type Limits struct {
	// MaxPayload is the largest message accepted (Socket.IO's maxHttpBufferSize).
	MaxPayload ByteSize `yaml:"max_payload" json:"max_payload"`
	// PingInterval is how often the server pings each client.
	PingInterval Duration `yaml:"ping_interval" json:"ping_interval"`
	// PingTimeout is how long a pong may take before the client is dropped.
	PingTimeout Duration `yaml:"ping_timeout" json:"ping_timeout"`
	// ConnectTimeout is how long a client may take to join a namespace.
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// MaxConnections is the ceiling per worker; 0 means unlimited.
	MaxConnections int `yaml:"max_connections" json:"max_connections"`
	// MaxBuffered is how many bytes may wait to be written to one client;
	// a client that does not read (a slow consumer) is disconnected past
	// it (never less than one MaxPayload message). 0 means unlimited.
	MaxBuffered ByteSize `yaml:"max_buffered" json:"max_buffered"`
}

// Recovery is Socket.IO connection state recovery: a client that comes back
// within MaxDisconnection gets its id, rooms and missed events back.
type Recovery struct {
	Enabled          bool     `yaml:"enabled" json:"enabled"`
	MaxDisconnection Duration `yaml:"max_disconnection" json:"max_disconnection"`
}

// Logs are the workers' out/err log files.
type Logs struct {
	// Dir is where log files go; empty means <home>/logs (see LogsDir).
	Dir string `yaml:"dir" json:"dir"`
	// MaxSize rotates a file when it reaches this size.
	MaxSize ByteSize `yaml:"max_size" json:"max_size"`
	// MaxFiles is how many rotated files are kept per log.
	MaxFiles int `yaml:"max_files" json:"max_files"`
	// Timestamps prefixes each line with the time (off by default, as in PM2).
	Timestamps bool `yaml:"timestamps" json:"timestamps"`
	// DateFormat is the Go time layout of those timestamps.
	DateFormat string `yaml:"date_format" json:"date_format"`
}

// Restart is the supervision policy.
type Restart struct {
	// MaxRestarts is how many quick failures in a row make a worker "errored".
	MaxRestarts int `yaml:"max_restarts" json:"max_restarts"`
	// MinUptime: an exit sooner than this is a quick failure; a worker that
	// lives longer resets its backoff.
	MinUptime Duration `yaml:"min_uptime" json:"min_uptime"`
	// BackoffInitial is the first restart delay; it doubles up to BackoffMax.
	BackoffInitial Duration `yaml:"backoff_initial" json:"backoff_initial"`
	BackoffMax     Duration `yaml:"backoff_max" json:"backoff_max"`
	// KillTimeout is the time between SIGTERM and SIGKILL, and so the
	// worker's drain budget.
	KillTimeout Duration `yaml:"kill_timeout" json:"kill_timeout"`
	// ListenTimeout is how long a starting worker has to report ready.
	ListenTimeout Duration `yaml:"listen_timeout" json:"listen_timeout"`
	// MaxMemoryRestart restarts a worker whose RSS exceeds it; 0 is off.
	MaxMemoryRestart ByteSize `yaml:"max_memory_restart" json:"max_memory_restart"`
	// OrphanGrace is how long a worker whose daemon vanished keeps serving
	// the connections it holds, waiting for a new daemon to adopt it,
	// before it drains and exits; 0 drains at once.
	OrphanGrace Duration `yaml:"orphan_grace" json:"orphan_grace"`
}

// Node is this host in the fleet: the heartbeat every daemon publishes in
// Redis, read by `frutos status --all-hosts` and monit's hosts view.
type Node struct {
	// Name is this host in the fleet view; empty means the machine's host
	// name (env FRUTOS_NODE_NAME). Hosts that share a host name (containers,
	// network namespaces) need one each.
	Name string `yaml:"name" json:"name"`
	// Address is where the load balancer reaches this host (host:port);
	// empty means the address this host uses to reach Redis, with the
	// public port. Shown, never dialled.
	Address string `yaml:"address" json:"address"`
	// Heartbeat is how often the daemon refreshes its record.
	Heartbeat Duration `yaml:"heartbeat" json:"heartbeat"`
	// TTL: a host not heard from for this long is shown gone.
	TTL Duration `yaml:"ttl" json:"ttl"`
	// Retention: a gone host stays listed this long, then is forgotten.
	Retention Duration `yaml:"retention" json:"retention"`
}

// Emit is the HTTP emit endpoint (POST /v1/emit) for backends that do
// not speak the Redis protocols: the daemon serves it on its own listener,
// never without a key.
type Emit struct {
	// Listen is its address (host:port); empty: no endpoint.
	Listen string `yaml:"listen" json:"listen"`
	// KeyEnv is the NAME of the environment variable holding the bearer
	// key, so the key stays out of the file.
	KeyEnv string `yaml:"key_env" json:"key_env"`
	// Key is the resolved key (never read from the file).
	Key string `yaml:"-" json:"key"`
}

// DefaultEmitKeyEnv is the default of emit.key_env.
const DefaultEmitKeyEnv = "FRUTOS_EMIT_KEY"

// AdminUI is the server side of the official Socket.IO Admin UI
// (@socket.io/admin-ui) in every worker: the /admin namespace, off by
// default (package cluster/adminui).
type AdminUI struct {
	// Enabled turns it on (env FRUTOS_ADMIN_UI=1).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Username is the login of the dashboard.
	Username string `yaml:"username" json:"username"`
	// PasswordHash is the bcrypt hash of the password, read from the
	// environment only (FRUTOS_ADMIN_UI_PASSWORD_HASH), never from the
	// file, and never shown. Production refuses the Admin UI without it;
	// development without it runs the dashboard with no login.
	PasswordHash string `yaml:"-" json:"password_hash"`
	// ReadOnly shows everything and allows no action (no emit, join,
	// leave or disconnect).
	ReadOnly bool `yaml:"read_only" json:"read_only"`
}

// Environment variables of the Admin UI.
const (
	AdminUIEnv             = "FRUTOS_ADMIN_UI"
	AdminUIPasswordHashEnv = "FRUTOS_ADMIN_UI_PASSWORD_HASH"
)

// DefaultSecretEnv is the default of auth.secret_env.
const DefaultSecretEnv = "FRUTOS_AUTH_SECRET"

// Default returns the built-in settings for development. Home is ~/.frutos
// expanded with os.UserHomeDir (left as "~/.frutos" when there is no home
// directory; Load then reports it).
func Default() *Config {
	home := "~/.frutos"
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		home = filepath.Join(h, ".frutos")
	}
	return &Config{
		App:       "frutos",
		Env:       Development,
		Instances: InstancesMax,
		Host:      "0.0.0.0",
		Port:      3000,
		Home:      home,
		Redis: Redis{
			Key:            "socket.io",
			RequestTimeout: seconds(5),
			Adapter:        AdapterPubSub,
			Streams:        Streams{Name: "socket.io", Count: 1, MaxLen: 10_000, SessionPrefix: "sio:session:"},
		},
		Auth: Auth{SecretEnv: DefaultSecretEnv},
		CORS: CORS{Origins: []string{"*"}, Credentials: true},
		Limits: Limits{
			MaxPayload:     1_000_000,
			PingInterval:   seconds(25),
			PingTimeout:    seconds(20),
			ConnectTimeout: seconds(45),
			MaxConnections: 10_000,
			MaxBuffered:    1_000_000,
		},
		Recovery: Recovery{Enabled: true, MaxDisconnection: seconds(120)},
		Logs: Logs{
			MaxSize:    10_000_000,
			MaxFiles:   5,
			DateFormat: "2006-01-02T15:04:05.000Z07:00",
		},
		Restart: Restart{
			MaxRestarts:    10,
			MinUptime:      seconds(10),
			BackoffInitial: Duration(100 * time.Millisecond),
			BackoffMax:     seconds(15),
			KillTimeout:    seconds(10),
			ListenTimeout:  seconds(10),
			OrphanGrace:    seconds(60),
		},
		Node:    Node{Heartbeat: seconds(5), TTL: seconds(15), Retention: Duration(24 * time.Hour)},
		Emit:    Emit{KeyEnv: DefaultEmitKeyEnv},
		AdminUI: AdminUI{Username: "admin"},
	}
}

func seconds(n int) Duration { return Duration(time.Duration(n) * time.Second) }

// LogsDir is where worker logs go: Logs.Dir, or <home>/logs when it is empty.
func (c *Config) LogsDir() string {
	if c.Logs.Dir != "" {
		return c.Logs.Dir
	}
	return filepath.Join(c.Home, "logs")
}

// Redacted returns a copy that is safe to print or log: the secret and the
// Admin UI's password hash become "[redacted]" and the Redis password
// "xxxxx".
func (c *Config) Redacted() Config {
	r := *c
	r.CORS.Origins = slices.Clone(c.CORS.Origins)
	if r.Auth.Secret != "" {
		r.Auth.Secret = "[redacted]"
	}
	if r.Emit.Key != "" {
		r.Emit.Key = "[redacted]"
	}
	if r.AdminUI.PasswordHash != "" {
		r.AdminUI.PasswordHash = "[redacted]"
	}
	r.Redis.URL = RedactURL(c.Redis.URL)
	return r
}

// RedactURL returns u with its password (and any password-like query
// parameter) replaced by "xxxxx". A URL that net/url cannot parse has its
// whole user-info part replaced, so nothing secret can slip through.
func RedactURL(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" || (p.User == nil && strings.Contains(u, "@")) {
		// An "@" that net/url did not read as user info: a password with a
		// "/" in it, say. Hide everything that could be one.
		return redactUnparsed(u)
	}
	changed := false
	if p.User != nil {
		if _, has := p.User.Password(); has {
			p.User, changed = url.UserPassword(p.User.Username(), "xxxxx"), true
		}
	}
	if q := p.Query(); len(q) > 0 {
		for k := range q {
			if secretish(k) {
				q[k], changed = []string{"xxxxx"}, true
			}
		}
		if changed {
			p.RawQuery = q.Encode()
		}
	}
	if !changed {
		return u // nothing to hide: show it exactly as written
	}
	return p.String()
}

func secretish(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "pass") || strings.Contains(k, "secret") ||
		strings.Contains(k, "token") || k == "auth"
}

// redactUnparsed hides everything between the scheme and the last "@", and
// any query or fragment after that: the only places a URL carries
// credentials. It may hide more than needed, never less.
func redactUnparsed(u string) string {
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	out := u
	if at := strings.LastIndex(u[start:], "@"); at >= 0 {
		out = u[:start] + "xxxxx" + u[start+at:]
		start += len("xxxxx@")
	}
	if i := strings.IndexAny(out[start:], "?#"); i >= 0 {
		out = out[:start+i] + "?xxxxx"
	}
	return out
}
