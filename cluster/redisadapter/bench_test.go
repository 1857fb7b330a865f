package redisadapter_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// The adapter path, measured end to end: an emit on server B to a room
// whose only member is a websocket client of server A (through Redis),
// against the same emit made on A itself (no Redis on the way).
//
//	go test -run '^$' -bench 'CrossServer' -benchtime 20000x ./cluster/redisadapter/
//
// BenchmarkCrossServerThroughput: B emits b.N events as fast as they are
// delivered, with at most 1,000 in flight (beyond the publish queue, 8,192
// by default, the adapter drops rather than block the emitter: a sustained
// rate is what counts); the clock stops when the client has them all.
// emits/s is what one client on another server receives per second.
//
// BenchmarkCrossServerLatency: one emit at a time, each sent when the
// previous one arrived; it reports p50 and p99 of emit-to-arrival for
// same-server and cross-server delivery, and their difference.

func BenchmarkCrossServerThroughput(b *testing.B) {
	for _, p := range benchProtocols() {
		b.Run(p.name, func(b *testing.B) {
			rs := redistest.Start(b)
			a := startGoServer(b, rs.URL(), serverOptions{adapter: p.opts})
			from := startGoServer(b, rs.URL(), serverOptions{adapter: p.opts})
			const window = 1000
			arrived := make(chan struct{}, window)
			credit := make(chan struct{}, window)
			for range window {
				credit <- struct{}{}
			}
			benchClient(b, a, "1", func(sioclient.Event) { arrived <- struct{}{} })
			payload := map[string]any{"evidenciaId": 12345, "mensaje": "Tu evidencia fue aprobada ✓"}
			b.ResetTimer()
			start := time.Now()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for i := range b.N {
					select {
					case <-credit:
					case <-stop:
						return
					}
					from.IO.To("user:1").Emit("bench", i, payload)
				}
			}()
			for range b.N {
				select {
				case <-arrived:
					credit <- struct{}{}
				case <-time.After(10 * time.Second):
					b.Fatalf("an emit never arrived (status %+v)", from.Adapter.Status())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "emits/s")
		})
	}
}

func BenchmarkCrossServerLatency(b *testing.B) {
	for _, p := range benchProtocols() {
		b.Run(p.name, func(b *testing.B) {
			rs := redistest.Start(b)
			a := startGoServer(b, rs.URL(), serverOptions{adapter: p.opts})
			from := startGoServer(b, rs.URL(), serverOptions{adapter: p.opts})
			arrived := make(chan time.Time, 1)
			benchClient(b, a, "1", func(sioclient.Event) { arrived <- time.Now() })
			measure := func(io *socket.Server, n int) []time.Duration {
				out := make([]time.Duration, 0, n)
				for range n {
					sent := time.Now()
					io.To("user:1").Emit("bench", 1)
					select {
					case at := <-arrived:
						out = append(out, at.Sub(sent))
					case <-time.After(10 * time.Second):
						b.Fatal("an emit never arrived")
					}
				}
				return out
			}
			measure(a.IO, 200) // warm up both paths
			measure(from.IO, 200)
			b.ResetTimer()
			local := measure(a.IO, b.N)
			remote := measure(from.IO, b.N)
			b.StopTimer()
			lp50, lp99 := percentiles(local)
			rp50, rp99 := percentiles(remote)
			b.ReportMetric(us(lp50), "same-p50-µs")
			b.ReportMetric(us(lp99), "same-p99-µs")
			b.ReportMetric(us(rp50), "cross-p50-µs")
			b.ReportMetric(us(rp99), "cross-p99-µs")
			b.ReportMetric(us(rp50-lp50), "added-p50-µs")
			b.ReportMetric(us(rp99-lp99), "added-p99-µs")
		})
	}
}

func benchProtocols() []struct {
	name string
	opts redisadapter.Options
} {
	return []struct {
		name string
		opts redisadapter.Options
	}{
		{"classic", redisadapter.Options{}},
		{"sharded-dynamic", redisadapter.Options{Sharded: true}},
	}
}

// benchClient connects a websocket client as user to g and waits until
// its room is subscribed.
func benchClient(b *testing.B, g *goServer, user string, on func(sioclient.Event)) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: g.URL, Auth: map[string]any{"user": user}, OnEvent: func(e sioclient.Event) {
		if e.Name == "bench" {
			on(e)
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Close() })
	settled(b, g, "user:"+user)
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return at(0.50), at(0.99)
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
