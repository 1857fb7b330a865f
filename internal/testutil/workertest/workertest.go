// Package workertest runs a real worker (cluster.Worker) in a test's
// process, on loopback ports, against a Redis of the test.
package workertest

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/testutil/eventlog"
)

// Options configures a test worker.
type Options struct {
	// RedisURL is required.
	RedisURL string
	// Authenticate checks tokens; by default HS256 JWTs signed with Secret,
	// as a real worker does.
	Authenticate cluster.Authenticator
	Secret       string
	// Tweak changes the default configuration.
	Tweak func(*configs.Config)
	// SessionPrefix is the worker's tag.
	SessionPrefix string
}

// Worker is a running worker and where it serves.
type Worker struct {
	*cluster.Worker
	URL      string // Socket.IO (http://127.0.0.1:port)
	AdminURL string // /health, /stats, /metrics
	Redis    *redis.Client
}

// Start runs a worker until the test ends and waits until it is ready.
func Start(t testing.TB, o Options) *Worker {
	t.Helper()
	cfg := configs.Default()
	if o.Tweak != nil {
		o.Tweak(cfg)
	}
	ropts, err := redis.ParseURL(o.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ropts)
	auth := o.Authenticate
	if auth == nil {
		auth = cluster.VerifyJWT(o.Secret, cfg.Auth.Leeway.Duration())
	}
	w, err := cluster.New(cluster.Options{Config: cfg, Redis: rc, Authenticate: auth, SessionPrefix: o.SessionPrefix})
	if err != nil {
		t.Fatal(err)
	}
	pub := serve(t, w.Handler())
	admin := serve(t, w.AdminHandler())
	t.Cleanup(func() { // registered last, runs first: connections, then listeners
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
		_ = rc.Close()
	})
	eventlog.WaitFor(t, 10*time.Second, "worker ready", w.Ready)
	return &Worker{Worker: w, URL: pub, AdminURL: admin, Redis: rc}
}

func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
