package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
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

func dial(t testing.TB, url, token string, header http.Header) (*sioclient.Client, *eventlog.Recorder, error) {
	t.Helper()
	rec := eventlog.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Auth: map[string]any{"token": token}, Header: header, OnEvent: rec.On})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, rec, err
}

func mustDial(t testing.TB, url, token string) (*sioclient.Client, *eventlog.Recorder) {
	t.Helper()
	c, rec, err := dial(t, url, token, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c, rec
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	eventlog.WaitFor(t, within, what, cond)
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
