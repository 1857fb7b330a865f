package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
)

// testAuth accepts tokens "sub|role" (the real worker verifies JWTs; the
// binary-level tests cover that).
func testAuth(token string) (cluster.Identity, error) {
	sub, role, ok := strings.Cut(token, "|")
	if !ok {
		return cluster.Identity{}, errors.New("bad token")
	}
	return cluster.Identity{Sub: sub, Role: role}, nil
}

type testWorker struct {
	*cluster.Worker
	URL, AdminURL string
}

// startWorker runs a worker in this process on loopback ports.
func startWorker(t testing.TB, redisURL string, tweak func(*configs.Config)) *testWorker {
	t.Helper()
	cfg := configs.Default()
	if tweak != nil {
		tweak(cfg)
	}
	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(ropts)
	w, err := cluster.New(cluster.Options{Config: cfg, Redis: rc, Authenticate: testAuth, SessionPrefix: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	pub := serve(t, w.Handler())
	admin := serve(t, w.AdminHandler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Close(ctx)
		_ = rc.Close()
	})
	waitFor(t, 10*time.Second, "worker ready", w.Ready)
	return &testWorker{Worker: w, URL: pub, AdminURL: admin}
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

// recorder collects a Go client's events.
type recorder struct {
	mu     sync.Mutex
	events []sioclient.Event
	change chan struct{}
}

func newRecorder() *recorder { return &recorder{change: make(chan struct{}, 1)} }

func (r *recorder) on(e sioclient.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
}

func (r *recorder) named(name string) []sioclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sioclient.Event
	for _, e := range r.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) waitN(t testing.TB, name string, n int, within time.Duration) []sioclient.Event {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if got := r.named(name); len(got) >= n {
			return got
		}
		select {
		case <-r.change:
		case <-deadline.C:
			t.Fatalf("waited %v for %d %q events, got %d", within, n, name, len(r.named(name)))
		}
	}
}

func dial(t testing.TB, url, token string, header http.Header) (*sioclient.Client, *recorder, error) {
	t.Helper()
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Auth: map[string]any{"token": token}, Header: header, OnEvent: rec.on})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, rec, err
}

func mustDial(t testing.TB, url, token string) (*sioclient.Client, *recorder) {
	t.Helper()
	c, rec, err := dial(t, url, token, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c, rec
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func tok(sub, role string) string { return fmt.Sprintf("%s|%s", sub, role) }
