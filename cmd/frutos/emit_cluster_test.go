package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/redisctl"
)

// `frutos emit` on a Redis Cluster URL: PUBLISH (classic), or SPUBLISH to
// the channel's master when redis.sharded is on; a subscriber on the
// cluster gets the event.
func TestEmitOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	const channel = "socket.io#/#user:42#"

	t.Run("classic", func(t *testing.T) {
		ps := subscribeVia(t, c.URL(), func(ctx context.Context, cl redis.UniversalClient) *redis.PubSub {
			return cl.PSubscribe(ctx, "socket.io#*")
		})
		_, stderr := emitOK(t, c.URL(), "")
		if !strings.Contains(stderr, "Redis Cluster does not count") || strings.Contains(stderr, "warning") {
			t.Errorf("stderr %q: want the uncounted form, no warning", stderr)
		}
		wantEvent(t, ps, channel, "evidencia_aprobada")
	})
	t.Run("sharded", func(t *testing.T) {
		ps := subscribeVia(t, c.URL(), func(ctx context.Context, cl redis.UniversalClient) *redis.PubSub {
			return cl.SSubscribe(ctx, channel) // on the channel's master
		})
		_, stderr := emitOK(t, c.URL(), "redis:\n  sharded: true\n")
		if !strings.Contains(stderr, ": 1 server received it") {
			t.Errorf("stderr %q: want 1 server (SPUBLISH counts exactly)", stderr)
		}
		wantEvent(t, ps, channel, "evidencia_aprobada")
	})
}

// `frutos emit` on a Sentinel URL publishes on the master the Sentinels name.
func TestEmitThroughSentinel(t *testing.T) {
	st := redistest.StartSentinel(t)
	for _, p := range []struct{ name, config string }{{"classic", ""}, {"sharded", "redis:\n  sharded: true\n"}} {
		t.Run(p.name, func(t *testing.T) {
			ps := subscribeVia(t, st.URL(), func(ctx context.Context, cl redis.UniversalClient) *redis.PubSub {
				if p.config != "" {
					return cl.SSubscribe(ctx, "socket.io#/#user:42#")
				}
				return cl.PSubscribe(ctx, "socket.io#*")
			})
			_, stderr := emitOK(t, st.URL(), p.config)
			if !strings.Contains(stderr, ": 1 server received it") {
				t.Errorf("stderr %q: want 1 server", stderr)
			}
			wantEvent(t, ps, "socket.io#/#user:42#", "evidencia_aprobada")
		})
	}
}

// emitOK runs `frutos emit user 42 evidencia_aprobada {...}` on redisURL
// with the configuration file config (none when empty).
func emitOK(t *testing.T, redisURL, config string) (stdout, stderr string) {
	t.Helper()
	args := []string{"emit", "user", "42", "evidencia_aprobada", `{"evidenciaId": 7}`, "--redis", redisURL}
	if config != "" {
		f := filepath.Join(t.TempDir(), "frutos.yaml")
		if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", f)
	}
	code, stdout, stderr := runCLI(t, map[string]string{"FRUTOS_HOME": t.TempDir()}, "", args...)
	if code != 0 {
		t.Fatalf("frutos %v: exit %d: %s", args, code, stderr)
	}
	return stdout, stderr
}

// subscribeVia opens a client for redisURL and subscribes with sub, waiting
// for the confirmation.
func subscribeVia(t *testing.T, redisURL string, sub func(context.Context, redis.UniversalClient) *redis.PubSub) *redis.PubSub {
	t.Helper()
	tg, err := redisctl.Open(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps := sub(ctx, tg.Client)
	t.Cleanup(func() { ps.Close() })
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return ps
}

// wantEvent waits for a message on channel whose payload holds want.
func wantEvent(t *testing.T, ps *redis.PubSub, channel, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			t.Fatalf("waiting for the event on %s: %v", channel, err)
		}
		if m, ok := msg.(*redis.Message); ok {
			if m.Channel != channel || !strings.Contains(m.Payload, want) {
				t.Fatalf("got %q on %s, want %s on %s", m.Payload, m.Channel, want, channel)
			}
			return
		}
	}
}
