package redisadapter_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/redisctl"
)

// goServer is a Socket.IO v3 server with the Redis adapter, on a loopback
// port, as a worker would run it (without the worker's auth).
type goServer struct {
	IO      *socket.Server
	Adapter *redisadapter.Adapter
	URL     string
	Client  redis.UniversalClient
}

type serverOptions struct {
	recovery bool
	window   time.Duration // recovery: MaxDisconnectionDuration, 60s by default
	logger   *testLogger
	adapter  redisadapter.Options
}

// startGoServer starts a server; sockets join "user:<sub>" where sub comes
// from auth.user or from the (unverified) JWT in auth.token.
func startGoServer(t testing.TB, redisURL string, o serverOptions) *goServer {
	t.Helper()
	target, err := redisctl.Parse(redisURL) // standalone, Sentinel or Cluster
	if err != nil {
		t.Fatal(err)
	}
	client := target.NewClient()
	if o.logger != nil {
		o.adapter.Logger = o.logger.slog()
	}
	ad := redisadapter.New(client, o.adapter)
	opts := socket.DefaultServerOptions()
	opts.SetAdapter(ad)
	if o.recovery {
		csr := socket.DefaultConnectionStateRecovery()
		csr.SetMaxDisconnectionDuration(60_000)
		if o.window > 0 {
			csr.SetMaxDisconnectionDuration(o.window.Milliseconds())
		}
		csr.SetSkipMiddlewares(true)
		opts.SetConnectionStateRecovery(csr)
		if o.adapter.Streams {
			opts.SetParser(ad.Parser(opts.Parser()))
		}
	}
	io := socket.NewServer(nil, opts)
	io.Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
		sub := subject(s.Handshake().Auth)
		if sub == "" {
			next(socket.NewExtendedError("Unauthorized", nil))
			return
		}
		next(nil)
	})
	io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		s.Join(socket.Room("user:" + subject(s.Handshake().Auth)))
		s.On("ping", func(a ...any) {
			if ack, ok := a[len(a)-1].(socket.Ack); ok {
				ack([]any{map[string]any{"pong": true}}, nil)
			}
		})
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io.ServeHandler(nil))
	hs := &http.Server{Handler: mux}
	go func() { _ = hs.Serve(l) }()
	g := &goServer{IO: io, Adapter: ad, URL: "http://" + l.Addr().String(), Client: client}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		io.Close(nil)
		_ = hs.Close()
		_ = ad.Close(ctx)
		_ = client.Close()
	})
	waitFor(t, 10*time.Second, "adapter subscriptions confirmed", ad.Ready)
	return g
}

// protocols are the adapter configurations every protocol-neutral test
// runs with.
var protocols = []struct {
	name string
	opts redisadapter.Options
}{
	{"classic", redisadapter.Options{}},
	{"sharded-dynamic", redisadapter.Options{Sharded: true}},
	{"sharded-static", redisadapter.Options{Sharded: true, SubscriptionMode: redisadapter.SubscriptionStatic}},
	{"sharded-dynamic-private", redisadapter.Options{Sharded: true, SubscriptionMode: redisadapter.SubscriptionDynamicPrivate}},
	{"streams", redisadapter.Options{Streams: true}},
	{"streams-sharded", redisadapter.Options{Streams: true, Sharded: true}},
}

// forEachProtocol runs test once per protocol, in parallel subtests.
func forEachProtocol(t *testing.T, test func(t *testing.T, opts redisadapter.Options)) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			test(t, p.opts)
		})
	}
}

// join dials server g as user and waits until the user's room exists on
// g and every subscription of g (the room's own channel, in the sharded
// dynamic modes) is confirmed, so that other servers' emits reach it.
func join(t testing.TB, g *goServer, user string) (*sioclient.Client, *eventlog.Recorder) {
	t.Helper()
	c, rec := dial(t, g.URL, user)
	settled(t, g, "user:"+user)
	return c, rec
}

// settled waits until rooms exist on g and g's subscriptions are confirmed.
func settled(t testing.TB, g *goServer, rooms ...string) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("rooms %v subscribed", rooms), func() bool {
		for _, r := range rooms {
			if !roomHas(g, r) {
				return false
			}
		}
		return g.Adapter.Status().Unconfirmed == 0
	})
}

func subject(auth map[string]any) string {
	if u, ok := auth["user"].(string); ok {
		return u
	}
	tok, _ := auth["token"].(string)
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(raw, &claims)
	return claims.Sub
}

func dial(t testing.TB, url, user string) (*sioclient.Client, *eventlog.Recorder) {
	t.Helper()
	rec := eventlog.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Auth: map[string]any{"user": user}, OnEvent: rec.On})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", url, user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	eventlog.WaitFor(t, within, what, cond)
}

// eventually polls cond until it holds (true) or the deadline passes (false).
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
	return true
}

// testLogger counts and keeps the adapter's log lines.
type testLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *testLogger) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (l *testLogger) slog() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
