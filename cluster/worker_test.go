package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/workertest"
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

// startWorker runs a worker in this process on loopback ports, with the
// "sub|role" tokens of testAuth.
func startWorker(t testing.TB, redisURL string, tweak func(*configs.Config)) *workertest.Worker {
	t.Helper()
	return workertest.Start(t, workertest.Options{RedisURL: redisURL, Authenticate: testAuth, Tweak: tweak, SessionPrefix: "t1"})
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
