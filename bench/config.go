// Package bench is the load tool behind `frutos bench`: it opens N
// authenticated Socket.IO connections at a given rate and keeps them, sends
// targeted emits through Redis (as a backend's @socket.io/redis-emitter
// would) with a sequence number and a send time in each payload, sends one
// broadcast to all, and counts what arrives: connect time, delivery latency,
// events lost (by sequence, not guessed), duplicates, broadcast fan-out.
//
// One process is limited by its file descriptors (RLIMIT_NOFILE), so a
// large run is split over several load processes (RunProcs), each one a
// shard of the connections that emits to its own connections; their results
// merge exactly (histograms are merged bucket by bucket).
package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/frutos/frutos/internal/sioclient"
)

// Event names the load uses on the wire.
const (
	TargetedEvent  = "bench"
	BroadcastEvent = "bench_all"
)

// Config is one load run (or one shard of it).
type Config struct {
	// URL is the server (http://127.0.0.1:3000).
	URL string
	// Conns is how many connections to open, over all shards.
	Conns int
	// Rate is how many new connections per second, over all shards.
	Rate float64
	// Duration bounds the whole run: ramp, broadcast, emits. Deliveries
	// still in flight get Grace more, then the connections are closed.
	Duration time.Duration
	// EmitRate is how many targeted emits per second, over all shards (0:
	// none). Each goes to the room user:<id> of a random connected user.
	EmitRate float64
	// Broadcast sends one event to all after the ramp.
	Broadcast bool
	// Transport is sioclient.Websocket or sioclient.Polling.
	Transport string
	// KeepAlive makes polling clients reuse their HTTP connections, as
	// browsers do; by default each request has its own, as socket.io-client
	// in Node.
	KeepAlive bool
	// Users is the range of user ids; connection g is user
	// Users.First + g mod Users.Count.
	Users UserRange
	// Sources spreads the connections over that many loopback source
	// addresses (127.0.0.2, 127.0.0.3, ...); 0 lets the system choose.
	Sources int
	// Token returns the handshake token of a user.
	Token func(user string) (string, error)
	// Emitter publishes the emits; nil means no emits and no broadcast.
	Emitter Emitter
	// Namespace of the connections ("/" by default).
	Namespace string

	// MaxInflight bounds the handshakes in progress (default 512).
	MaxInflight int
	// ConnectTimeout bounds one handshake (default 10s).
	ConnectTimeout time.Duration
	// Grace is how long in-flight deliveries may still arrive after the
	// duration (default 3s).
	Grace time.Duration
	// BroadcastWait bounds the wait for the broadcast to reach everyone
	// (default 10s).
	BroadcastWait time.Duration
	// Emitters is how many emits may be in flight (default 16, within
	// go-redis's default pool of 10 per CPU).
	Emitters int

	// Shard and Shards say which part of the connections this process
	// opens (connections g with g mod Shards == Shard).
	Shard, Shards int
	// RunID tells this run's events from any other's (random by default).
	RunID string

	// Progress, when set, is called every ProgressEvery (default 1s).
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// UserRange is a range of numeric user ids.
type UserRange struct {
	First, Count int
}

// String is the range as ParseUserRange reads it.
func (u UserRange) String() string { return fmt.Sprintf("%d-%d", u.First, u.First+u.Count-1) }

// ParseUserRange reads "1-5000" (inclusive) or a count "5000" (1-5000).
func ParseUserRange(s string) (UserRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return UserRange{}, fmt.Errorf("users %q: want a count like 5000 or a range like 1-5000", s)
		}
		return UserRange{First: 1, Count: n}, nil
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return UserRange{}, fmt.Errorf("users %q: want a range like 1-5000 (first ≤ last, both ≥ 0)", s)
	}
	return UserRange{First: a, Count: b - a + 1}, nil
}

// Emitter publishes events the way a backend does (through Redis).
type Emitter interface {
	// EmitTo sends event with one argument to a room.
	EmitTo(ctx context.Context, room, event string, arg any) error
	// EmitAll sends event with one argument to every client.
	EmitAll(ctx context.Context, event string, arg any) error
}

// Targeted is one emit of a batch: its room and its one argument.
type Targeted struct {
	Room string
	Arg  any
}

// BatchEmitter is an Emitter that publishes several targeted emits in one
// round trip; the load tool uses it when the emitter has it.
type BatchEmitter interface {
	EmitToBatch(ctx context.Context, event string, emits []Targeted) error
}

// withDefaults fills what was left zero and checks the rest.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Conns < 1:
		return c, errors.New("conns must be at least 1")
	case c.Rate <= 0:
		return c, errors.New("rate must be more than 0")
	case c.Duration <= 0:
		return c, errors.New("duration must be more than 0")
	case c.EmitRate < 0:
		return c, errors.New("emit rate must be 0 or more")
	case c.Token == nil:
		return c, errors.New("no token source")
	case c.Users.Count < 1:
		return c, errors.New("the user range is empty")
	case c.Sources < 0:
		return c, errors.New("sources must be 0 or more")
	}
	if _, err := url.Parse(c.URL); err != nil || c.URL == "" {
		return c, fmt.Errorf("url %q: want http://host:port", c.URL)
	}
	switch c.Transport {
	case "":
		c.Transport = sioclient.Websocket
	case sioclient.Websocket, sioclient.Polling:
	default:
		return c, fmt.Errorf("transport %q: use websocket or polling", c.Transport)
	}
	if c.Shards < 1 {
		c.Shards = 1
	}
	if c.Shard < 0 || c.Shard >= c.Shards {
		return c, fmt.Errorf("shard %d of %d", c.Shard, c.Shards)
	}
	if c.Namespace == "" {
		c.Namespace = "/"
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 512
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 3 * time.Second
	}
	if c.BroadcastWait <= 0 {
		c.BroadcastWait = 10 * time.Second
	}
	if c.Emitters <= 0 {
		c.Emitters = 16
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return c, nil
}

// shardConns is how many of the n connections shard s of k opens.
func shardConns(n, s, k int) int {
	if s >= n {
		return 0
	}
	return (n - s + k - 1) / k
}

// userOf is the user id of global connection g.
func (c Config) userOf(g int) string { return strconv.Itoa(c.Users.First + g%c.Users.Count) }

// SourceAddr is the i-th loopback source address: 127.0.0.2, 127.0.0.3,
// ... 127.0.0.254, 127.0.1.2, ... (skipping .0, .1 and .255 of each /24).
func SourceAddr(i int) net.IP {
	return net.IPv4(127, byte(i/253>>8), byte(i/253), byte(2+i%253))
}

// IsLoopback reports whether the URL's host is a loopback address
// (127.0.0.0/8, ::1 or localhost): only then can sources be spread.
func IsLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
