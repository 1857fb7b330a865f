package nodefix

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ServerOptions configure testdata/node/server.js.
type ServerOptions struct {
	Port            int           // 0: ephemeral (see Proc.Port)
	RedisURL        string        // required
	Secret          string        // FRUTOS_AUTH_SECRET; DefaultSecret when empty
	Key             string        // adapter key / sharded channel prefix; "socket.io" when empty
	Sharded         bool          // createShardedAdapter (SPUBLISH/SSUBSCRIBE)
	RequestsTimeout time.Duration // classic adapter requestsTimeout; 5s when zero
	// Streams uses @socket.io/redis-streams-adapter (Key is its
	// channelPrefix, Sharded its useShardedPubSub; STREAM_NAME,
	// STREAM_MAX_LEN, STREAM_COUNT in Env).
	Streams bool
	// Recovery turns on connection state recovery with this
	// maxDisconnectionDuration.
	Recovery time.Duration
	Env      []string // extra KEY=VALUE settings (PING_INTERVAL_MS, NAMESPACES, DYNAMIC_NAMESPACES, SUBSCRIPTION_MODE, ...)
}

// StartServer starts a Node Socket.IO server and waits for its
// {"ready": true, "port": N} line.
func StartServer(t testing.TB, o ServerOptions) *Proc {
	t.Helper()
	return StartServers(t, o)[0]
}

// StartServers starts one server per options concurrently (Node start-up
// takes most of a second) and waits until all are ready.
func StartServers(t testing.TB, opts ...ServerOptions) []*Proc {
	t.Helper()
	ps := make([]*Proc, len(opts))
	for i, o := range opts {
		ps[i] = launchServer(t, o)
	}
	for _, p := range ps {
		p.waitPort(t)
	}
	return ps
}

// waitPort waits for the ready line of a process that listens, and notes
// its port.
func (p *Proc) waitPort(t testing.TB) {
	t.Helper()
	l := p.waitReady(t)
	port, ok := l["port"].(float64)
	if !ok || port <= 0 {
		t.Fatalf("nodefix: %s: ready line without port: %v", p.name, l)
	}
	p.port = int(port)
}

func launchServer(t testing.TB, o ServerOptions) *Proc {
	t.Helper()
	if o.RedisURL == "" {
		t.Fatalf("nodefix.StartServer: RedisURL is required")
	}
	if o.Secret == "" {
		o.Secret = DefaultSecret
	}
	env := []string{
		"PORT=" + strconv.Itoa(o.Port),
		"REDIS_URL=" + o.RedisURL,
		"FRUTOS_AUTH_SECRET=" + o.Secret,
		"ADAPTER_KEY=" + o.Key,
		"SHARDED=" + boolEnv(o.Sharded),
		"REQUESTS_TIMEOUT_MS=",
	}
	if o.RequestsTimeout > 0 {
		env[len(env)-1] += strconv.FormatInt(o.RequestsTimeout.Milliseconds(), 10)
	}
	if o.Streams {
		env = append(env, "ADAPTER=streams")
	}
	if o.Recovery > 0 {
		env = append(env, "RECOVERY_MS="+strconv.FormatInt(o.Recovery.Milliseconds(), 10))
	}
	return start(t, "server.js", append(env, o.Env...))
}

// ClientOptions configure testdata/node/client.js (socket.io-client).
type ClientOptions struct {
	URL         string         // e.g. server.URL(); required
	Token       string         // sent as handshake auth {token}; none when empty
	Auth        map[string]any // handshake auth as a whole (e.g. the Admin UI's {username, password}); overrides Token
	Namespace   string         // "/" when empty
	Transports  []string       // e.g. {"websocket"} or {"polling"}; library default when empty
	NoReconnect bool           // reconnection: false
	Env         []string       // extra KEY=VALUE settings (RECONNECTION_DELAY_MS, PATH_PREFIX)
}

// StartClient starts a socket.io-client process. It does not wait for the
// connection: use WaitFor(ctx, Has("connect")) or Has("connect_error").
func StartClient(t testing.TB, o ClientOptions) *Proc {
	t.Helper()
	if o.URL == "" {
		t.Fatalf("nodefix.StartClient: URL is required")
	}
	env := []string{
		"URL=" + o.URL,
		"TOKEN=" + o.Token,
		"NAMESPACE=" + o.Namespace,
		"TRANSPORTS=" + strings.Join(o.Transports, ","),
		"RECONNECTION=" + map[bool]string{true: "0", false: "1"}[o.NoReconnect],
		"AUTH_JSON=",
	}
	if o.Auth != nil {
		b, err := json.Marshal(o.Auth)
		if err != nil {
			t.Fatalf("nodefix.StartClient: auth: %v", err)
		}
		env[len(env)-1] += string(b)
	}
	return start(t, "client.js", append(env, o.Env...))
}

// StartEmitter starts a @socket.io/redis-emitter process and waits for it
// to be connected to Redis. key "" means "socket.io".
func StartEmitter(t testing.TB, redisURL, key string) *Proc {
	t.Helper()
	if redisURL == "" {
		t.Fatalf("nodefix.StartEmitter: redisURL is required")
	}
	p := start(t, "emitter.js", []string{"REDIS_URL=" + redisURL, "ADAPTER_KEY=" + key})
	p.waitReady(t)
	return p
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return ""
}

// String describes the process.
func (p *Proc) String() string { return fmt.Sprintf("nodefix %s", p.name) }

// StartClients starts testdata/node/clients.js: many socket.io-client
// connections in one process (see the script's header for its commands).
// transports nil means the library's default (polling, then websocket).
func StartClients(t testing.TB, url string, transports []string, env ...string) *Proc {
	t.Helper()
	return start(t, "clients.js", append([]string{"URL=" + url, "TRANSPORTS=" + strings.Join(transports, ",")}, env...))
}
