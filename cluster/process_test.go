package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/internal/testutil/syncbuf"
	"github.com/frutos/frutos/internal/workerproto"
)

func processConfig(redisURL string) *configs.Config {
	cfg := configs.Default()
	cfg.Redis.URL = redisURL
	cfg.Auth.Secret = "process-test-secret"
	cfg.Restart.KillTimeout = configs.Duration(2 * time.Second)
	return cfg
}

// A worker as the daemon runs it: its Spec's sockets, stats the daemon can
// read, session ids with its tag, and an orderly stop when the daemon's
// pipe ends.
func TestRunKeepsTheDaemonsContract(t *testing.T) {
	rs := redistest.Start(t)
	dir, err := os.MkdirTemp("", "wp") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	spec := workerproto.Supervised(dir, 3, 7)
	pipe, daemon := io.Pipe()
	var out, errOut syncbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- cluster.Run(context.Background(), cluster.ProcessOptions{Spec: spec, Config: processConfig(rs.URL()),
			Daemon: pipe, Out: &out, Err: &errOut})
	}()

	stats := workerproto.NewClient(spec.Socket)
	defer stats.Close()
	var st *workerproto.Polled
	waitFor(t, 10*time.Second, "the worker reports ready", func() bool {
		st, err = stats.Stats(context.Background())
		return err == nil && st.Ready
	})
	if st.PID != os.Getpid() || st.Redis.State != "connected" || st.Draining {
		t.Errorf("stats %+v", st)
	}
	if _, err := os.Stat(spec.Handoff); err != nil {
		t.Errorf("no handoff socket: %v", err)
	}

	// An Engine.IO handshake on the private socket, as the front door
	// proxies it: the session id names this worker.
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", spec.Socket)
	}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("http://worker" + workerproto.EnginePath + "?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var open struct {
		SID string `json:"sid"`
	}
	if !bytes.HasPrefix(body, []byte("0")) || json.Unmarshal(body[1:], &open) != nil {
		t.Fatalf("handshake answered %d %q", resp.StatusCode, body)
	}
	if tag, ok := workerproto.TagOf(open.SID); !ok || tag != spec.Tag {
		t.Errorf("session id %q does not name worker %s", open.SID, spec.Tag)
	}

	daemon.Close() // the daemon is gone
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker outlived its daemon")
	}
	if !strings.Contains(out.String(), "worker stopped") || !strings.Contains(out.String(), "worker=3") {
		t.Errorf("log:\n%s", out.String())
	}
}

// What stops a worker from starting says at which step, for the exit
// status.
func TestRunStartErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	rs := redistest.Start(t)
	for _, tc := range []struct {
		name  string
		tweak func(*configs.Config, *workerproto.Spec)
		step  cluster.StartStep
	}{
		{"no secret in production", func(c *configs.Config, _ *workerproto.Spec) {
			c.Env, c.Auth.Secret = configs.Production, ""
		}, cluster.StepSecret},
		{"no Redis URL in production", func(c *configs.Config, _ *workerproto.Spec) {
			c.Env, c.Redis.URL = configs.Production, ""
		}, cluster.StepRedisURL},
		{"a Redis URL that does not parse", func(c *configs.Config, _ *workerproto.Spec) {
			c.Redis.URL = "redis://127.0.0.1:99999"
		}, cluster.StepRedis},
		{"the port is taken", func(_ *configs.Config, s *workerproto.Spec) {
			s.Listen = taken.Addr().String()
		}, cluster.StepListen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := processConfig(rs.URL())
			var spec workerproto.Spec
			tc.tweak(cfg, &spec)
			err := cluster.Run(context.Background(), cluster.ProcessOptions{Spec: spec, Config: cfg, Out: io.Discard, Err: io.Discard})
			var se *cluster.StartError
			if !errors.As(err, &se) || se.Step != tc.step {
				t.Fatalf("Run = %v, want a StartError at step %d", err, tc.step)
			}
		})
	}
	err = cluster.Run(context.Background(), cluster.ProcessOptions{Spec: workerproto.Spec{Tag: "no.dots"},
		Config: processConfig(rs.URL()), Out: io.Discard, Err: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "session prefix") {
		t.Fatalf("a bad tag: %v", err)
	}
}
