package redisadapter_test

import (
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Redis stops for 10 s: local delivery never stops, the adapters report
// the outage, cross-server delivery resumes within seconds of Redis coming
// back, and the error log stays a handful of lines.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("10 s outage")
	}
	rs := redistest.Start(t)
	logA, logB := &testLogger{}, &testLogger{}
	a := startGoServer(t, rs.URL(), serverOptions{logger: logA})
	b := startGoServer(t, rs.URL(), serverOptions{logger: logB})
	_, seven := dial(t, a.URL, "7") // on A, the target of B's emits
	_, eight := dial(t, a.URL, "8") // on A, the target of A's own emits

	b.IO.To("user:7").Emit("before")
	seven.WaitN(t, "before", 1, 5*time.Second)

	rs.Stop()
	waitFor(t, 10*time.Second, "A reports the outage", func() bool {
		return a.Adapter.Status().State == redisadapter.StateReconnecting
	})
	const outage = 10 * time.Second
	sent := 0
	for end := time.Now().Add(outage); time.Now().Before(end); sent++ {
		a.IO.To("user:8").Emit("local", sent)
		b.IO.To("user:7").Emit("lost-remote", sent) // B cannot reach A now
		time.Sleep(100 * time.Millisecond)          // the emit rate of the test, not synchronisation
	}
	eight.WaitN(t, "local", sent, 5*time.Second) // every local emit arrived during the outage

	restarted := time.Now()
	rs.Restart()
	var back time.Duration
	for i := 0; ; i++ {
		b.IO.To("user:7").Emit("after", i)
		if len(seven.Named("after")) > 0 {
			back = time.Since(restarted)
			break
		}
		if time.Since(restarted) > 15*time.Second {
			t.Fatalf("cross-server delivery did not resume within 15s of Redis restarting (state A=%s B=%s)",
				a.Adapter.Status().State, b.Adapter.Status().State)
		}
		time.Sleep(50 * time.Millisecond) // probe rate
	}
	t.Logf("outage %v: %d local emits delivered; remote delivery back %v after Redis restarted", outage, sent, back.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "both adapters connected", func() bool {
		return a.Adapter.Status().State == redisadapter.StateConnected && b.Adapter.Status().State == redisadapter.StateConnected
	})
	if r := a.Adapter.Status().Reconnects; r < 1 {
		t.Errorf("reconnects = %d, want >= 1", r)
	}
	for name, l := range map[string]*testLogger{"A": logA, "B": logB} {
		n := len(l.lines)
		t.Logf("server %s: %d adapter log lines over the outage", name, n)
		if n > 8 {
			t.Errorf("server %s wrote %d log lines in a %v outage; want a handful:\n%v", name, n, outage, l.lines)
		}
		if l.count("restored") != 1 {
			t.Errorf("server %s: want exactly one 'restored' line, log:\n%v", name, l.lines)
		}
	}
}

// Sharded subscriptions survive an outage too: go-redis subscribes its
// shard channels again when it reconnects, including the room channels of
// the dynamic mode and those of rooms created while Redis was away.
func TestShardedOutageResubscribes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	opts := redisadapter.Options{Sharded: true}
	a := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
	b := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
	_, seven := join(t, a, "7")

	rs.Stop()
	waitFor(t, 10*time.Second, "A reports the outage", func() bool {
		return a.Adapter.Status().State == redisadapter.StateReconnecting
	})
	_, nine := dial(t, a.URL, "9") // its room's channel is subscribed while Redis is away
	waitFor(t, 5*time.Second, "user:9 joined", func() bool { return roomHas(a, "user:9") })
	rs.Restart()
	waitFor(t, 15*time.Second, "both adapters connected, every subscription confirmed", func() bool {
		sa, sb := a.Adapter.Status(), b.Adapter.Status()
		return sa.State == redisadapter.StateConnected && sb.State == redisadapter.StateConnected &&
			sa.Unconfirmed == 0 && a.Adapter.Ready() && b.Adapter.Ready()
	})
	b.IO.To("user:7").Emit("after", 7)
	b.IO.To("user:9").Emit("after", 9)
	seven.WaitN(t, "after", 1, 5*time.Second)
	nine.WaitN(t, "after", 1, 5*time.Second)
}

// Bug: after Redis froze (SIGSTOP) for longer than two health checks and
// came back, the adapters delivered again and said "connected" but never
// became ready again (their permanent subscriptions were not confirmed),
// so the front door sent no new session to any worker. Found by the chaos
// suite (redis-frozen).
func TestReadyAgainAfterRedisFroze(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("a 10 s freeze")
	}
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{})
	b := startGoServer(t, rs.URL(), serverOptions{})
	_, seven := dial(t, a.URL, "7")
	rs.Freeze()
	waitFor(t, 15*time.Second, "A notices", func() bool { return !a.Adapter.Ready() || a.Adapter.Status().State != redisadapter.StateConnected })
	frozen := time.Now()
	for time.Since(frozen) < 10*time.Second {
		time.Sleep(100 * time.Millisecond) // the length of the freeze, not synchronisation
	}
	rs.Thaw()
	waitFor(t, 20*time.Second, "both adapters ready again", func() bool {
		return a.Adapter.Ready() && b.Adapter.Ready() &&
			a.Adapter.Status().State == redisadapter.StateConnected && b.Adapter.Status().State == redisadapter.StateConnected
	})
	b.IO.To("user:7").Emit("after")
	seven.WaitN(t, "after", 1, 5*time.Second)
}
