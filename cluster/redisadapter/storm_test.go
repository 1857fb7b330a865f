package redisadapter_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// stormSize is how many clients TestRestoreStorm restores at once: 200 in
// the suite; FRUTOS_RESTORE_STORM=3000 for the README's measurement.
func stormSize() int {
	if n, err := strconv.Atoi(os.Getenv("FRUTOS_RESTORE_STORM")); err == nil && n > 0 {
		return n
	}
	return stormDefault
}

// stormDefault is the storm of `go test`, small enough for Node to
// restore every client.
const stormDefault = 200

// commandCalls reads INFO commandstats: calls per command.
func commandCalls(t testing.TB, c *redis.Client) map[string]int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		out[strings.TrimPrefix(name, "cmdstat_")], _ = strconv.ParseInt(calls, 10, 64)
	}
	return out
}

// The clients of a server that died all reconnect at once to another:
// each restore reads its missed events from the entries that server has
// read (warm: no read of Redis at all) or, on a server that started after
// their last event (fresh), from one read shared by all; Node's adapter
// reads the stream for each client (an XRANGE of the offset, then of
// everything after it, until one comes back empty). It logs the time until
// every client is back with its missed event, and the Redis calls made.
func TestRestoreStorm(t *testing.T) {
	n := stormSize()
	for _, kind := range []string{"warm", "fresh", "node"} {
		t.Run(kind, func(t *testing.T) {
			if kind == "node" {
				nodefix.Require(t)
			}
			rs := redistest.Start(t)
			raw := rs.Client(t)
			a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
			var warm *goServer
			if kind == "warm" {
				warm = startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
			}
			em := redisadapter.NewEmitter(raw, "").Streams(redisadapter.StreamOptions{})
			emitToAll := func(event string) {
				t.Helper()
				_, err := raw.Pipelined(context.Background(), func(p redis.Pipeliner) error {
					for i := range n {
						x, err := em.To(fmt.Sprint("user:", i)).XAddArgs(event, i)
						if err != nil {
							return err
						}
						p.XAdd(context.Background(), x)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}

			// n clients on A, each with an offset; their sessions in Redis
			var got atomic.Int64
			clients := make([]*sioclient.Client, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					c, err := sioclient.Dial(ctx, sioclient.Options{URL: a.URL, Auth: map[string]any{"user": fmt.Sprint(i)},
						OnEvent: func(sioclient.Event) { got.Add(1) }})
					if err != nil {
						t.Error(err)
						return
					}
					clients[i] = c
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			waitFor(t, 30*time.Second, "every client in its room", func() bool { return a.IO.Sockets().Sockets().Len() == n })
			emitToAll("first")
			waitFor(t, 30*time.Second, "every client got its first event", func() bool { return got.Load() == int64(n) })
			waitFor(t, 30*time.Second, "every session in Redis", func() bool {
				keys, _ := raw.Keys(context.Background(), "sio:session:*").Result()
				return len(keys) == n
			})

			// A dies without a word to Redis; its clients see their
			// connections close
			sessions := make([]*sioclient.Session, n)
			for i, c := range clients {
				sessions[i] = c.Session()
			}
			_ = a.Client.Close()
			a.IO.Close(nil)
			for _, c := range clients {
				<-c.Done()
			}
			emitToAll("missed")

			url := ""
			var status func() redisadapter.Status
			switch kind {
			case "warm":
				url, status = warm.URL, warm.Adapter.Status
			case "fresh":
				g := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
				url, status = g.URL, g.Adapter.Status
			case "node":
				node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Streams: true, Recovery: time.Minute})
				url = node.URL()
			}
			before := commandCalls(t, raw)
			var st0 redisadapter.Status
			if status != nil {
				st0 = status()
			}
			var back, recovered, missed, failed atomic.Int64
			var firstErr atomic.Pointer[error]
			t0 := time.Now()
			for i := range n {
				wg.Go(func() {
					done := make(chan struct{})
					var once sync.Once
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Auth: map[string]any{"user": fmt.Sprint(i)},
						Resume: sessions[i], OnEvent: func(e sioclient.Event) {
							if e.Name == "missed" {
								missed.Add(1)
								once.Do(func() { close(done) })
							}
						}})
					if err != nil {
						failed.Add(1) // counted: Node gives up on some under a storm
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					defer c.Close()
					if c.Recovered {
						recovered.Add(1)
					}
					select {
					case <-done:
						back.Add(1)
					case <-ctx.Done():
					}
				})
			}
			wg.Wait()
			took := time.Since(t0)
			after := commandCalls(t, raw)
			calls := func(cmd string) int64 { return after[cmd] - before[cmd] }
			line := fmt.Sprintf("%s: %d clients restored at once: %d recovered, %d back with their missed event, %d missed events, %d connections failed, all done in %v; "+
				"Redis calls: xrange %d, xrevrange %d, xread %d, get %d, getdel %d, exec %d",
				kind, n, recovered.Load(), back.Load(), missed.Load(), failed.Load(), took.Round(time.Millisecond),
				calls("xrange"), calls("xrevrange"), calls("xread"), calls("get"), calls("getdel"), calls("exec"))
			if e := firstErr.Load(); e != nil {
				line += fmt.Sprintf("; first connection error: %v", *e)
			}
			if status != nil {
				st := status()
				line += fmt.Sprintf("; the server's own count: %d range reads, %d XREAD", st.StreamRanges-st0.StreamRanges, st.StreamReads-st0.StreamReads)
			}
			t.Log(line)
			if kind == "node" {
				// Node's restores are measured, not judged: under a storm
				// its connect timeout ends some before their restore does
				// (at 3,000 on 2 loaded cores, from none to a few hundred
				// restored, the rest timed out in the websocket handshake).
				r := recovered.Load()
				if calls("xrange") < 2*r {
					t.Errorf("Node read the stream %d times for %d restores (its source says 2 or more each)", calls("xrange"), r)
				}
				if r == 0 && n <= stormDefault {
					t.Errorf("Node restored none of %d clients", n)
				}
				return
			}
			if recovered.Load() != int64(n) || back.Load() != int64(n) || missed.Load() != int64(n) {
				t.Errorf("%d of %d recovered, %d back, %d missed events", recovered.Load(), n, back.Load(), missed.Load())
			}
			switch kind {
			case "warm":
				if r := calls("xrange") + calls("xrevrange"); r != 0 {
					t.Errorf("a warm server read the stream %d times to restore", r)
				}
			case "fresh":
				if r := calls("xrange") + calls("xrevrange"); r != 1 {
					t.Errorf("a fresh server read the stream %d times for %d restores, want 1", r, n)
				}
			}
		})
	}
}
