package bench_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/internal/testutil/workertest"
)

const testSecret = "bench-test-secret-0123456789abcdef"

type target struct {
	URL   string
	Redis *redis.Client
}

// startWorker runs a real worker in this process, verifying real JWTs
// signed with testSecret.
func startWorker(t *testing.T) target {
	t.Helper()
	w := workertest.Start(t, workertest.Options{RedisURL: redistest.Start(t).URL(), Secret: testSecret})
	return target{URL: w.URL, Redis: w.Redis}
}

func mint(secret string) func(string) (string, error) {
	return func(user string) (string, error) { return jwtauth.Mint(secret, user, jwtauth.RoleStudent, time.Hour) }
}

func baseConfig(tg target, conns int) bench.Config {
	return bench.Config{
		URL: tg.URL, Conns: conns, Rate: 2000, Duration: 3 * time.Second,
		EmitRate: 300, Broadcast: true, Users: bench.UserRange{First: 1, Count: conns},
		Sources: 2, Token: mint(testSecret), Emitter: bench.RedisEmitter(tg.Redis, "socket.io", "/"),
		Grace: 5 * time.Second,
	}
}

// With a healthy server every emit is delivered exactly once: the counts
// add up, nothing is lost or doubled, the broadcast reaches everyone.
func TestBenchCountsEveryDelivery(t *testing.T) {
	tg := startWorker(t)
	res, err := bench.Run(context.Background(), baseConfig(tg, 200))
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report()
	c, e, b := rep.Connections, rep.Events, rep.Broadcast
	if c.Established != 200 || c.Failed != 0 || c.Dropped != 0 || c.HeldAtEnd != 200 || c.ConnectMS.Count != 200 {
		t.Fatalf("connections = %+v", c)
	}
	if e.Sent == 0 || e.Expected != e.Sent || e.Delivered != e.Sent || e.Lost != 0 || e.Duplicates != 0 || e.Unexpected != 0 {
		t.Fatalf("events = %+v (one connection per user: every emit is expected once)", e)
	}
	if e.LatencyMS.Count != uint64(e.Delivered) {
		t.Fatalf("%d latency samples for %d deliveries", e.LatencyMS.Count, e.Delivered)
	}
	if !b.Sent || b.Expected != 200 || b.Received != 200 || b.Missed != 0 || b.FanOutMS == nil || b.LatencyMS.Count != 200 {
		t.Fatalf("broadcast = %+v", b)
	}
	if rep.LoadTool.Procs != 1 || rep.Timeline.RampEndMS < rep.Timeline.StartedMS {
		t.Fatalf("load tool %+v timeline %+v", rep.LoadTool, rep.Timeline)
	}
}

// lossy drops some emits (reporting success, as a broken server or bus
// would lose them) and publishes others twice.
type lossy struct {
	bench.Emitter
	n, dropped, doubled atomic.Int64
}

func (l *lossy) EmitTo(ctx context.Context, room, event string, arg any) error {
	switch n := l.n.Add(1); {
	case n%5 == 0:
		l.dropped.Add(1)
		return nil
	case n%7 == 0:
		l.doubled.Add(1)
		if err := l.Emitter.EmitTo(ctx, room, event, arg); err != nil {
			return err
		}
	}
	return l.Emitter.EmitTo(ctx, room, event, arg)
}

// Loss and duplicates are counted by sequence, exactly: two connections
// per user, so every emit is expected twice.
func TestBenchCountsLossAndDuplicates(t *testing.T) {
	tg := startWorker(t)
	cfg := baseConfig(tg, 200)
	cfg.Users = bench.UserRange{First: 1000, Count: 100}
	cfg.Broadcast = false
	cfg.Grace = time.Second // the lost ones never come
	em := &lossy{Emitter: cfg.Emitter}
	cfg.Emitter = em
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := res.Report().Events
	if em.dropped.Load() == 0 || em.doubled.Load() == 0 {
		t.Fatalf("the lossy emitter dropped %d and doubled %d: run too short", em.dropped.Load(), em.doubled.Load())
	}
	if e.Expected != 2*e.Sent {
		t.Errorf("expected %d for %d sent, want 2 per emit", e.Expected, e.Sent)
	}
	if e.Lost != 2*em.dropped.Load() {
		t.Errorf("lost = %d, want %d (2 per dropped emit)", e.Lost, 2*em.dropped.Load())
	}
	if e.Duplicates != 2*em.doubled.Load() {
		t.Errorf("duplicates = %d, want %d (2 per doubled emit)", e.Duplicates, 2*em.doubled.Load())
	}
	if e.Delivered != e.Expected-e.Lost || e.Unexpected != 0 {
		t.Errorf("delivered %d, expected %d, lost %d, unexpected %d", e.Delivered, e.Expected, e.Lost, e.Unexpected)
	}
}

// A refused handshake is counted by its reason.
func TestBenchCountsFailuresByReason(t *testing.T) {
	tg := startWorker(t)
	cfg := baseConfig(tg, 30)
	cfg.Token = mint("not-the-server-secret-0123456789abcdef")
	cfg.Duration, cfg.EmitRate, cfg.Broadcast = time.Second, 0, false
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Report().Connections
	if c.Established != 0 || c.Failed != 30 || c.FailedBy["connect_error: Unauthorized"] != 30 {
		t.Fatalf("connections = %+v", c)
	}
}

// The polling transport carries the same load, counted the same way.
func TestBenchPolling(t *testing.T) {
	tg := startWorker(t)
	cfg := baseConfig(tg, 40)
	cfg.Transport = "polling"
	cfg.EmitRate = 100
	res, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report()
	c, e, b := rep.Connections, rep.Events, rep.Broadcast
	if rep.Transport != "polling" || c.Established != 40 || c.Dropped != 0 {
		t.Fatalf("transport %s, connections %+v", rep.Transport, c)
	}
	if e.Sent == 0 || e.Delivered != e.Expected || e.Lost != 0 || e.Duplicates != 0 || b.Received != 40 {
		t.Fatalf("events %+v broadcast %+v", e, b)
	}
}

// Shards (load processes, here goroutines on pipes) split the connections
// and merge into one result; the coordinator's broadcast reaches all.
func TestBenchShardsMerge(t *testing.T) {
	tg := startWorker(t)
	cfg := baseConfig(tg, 150)
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	spawn := func(ctx context.Context, shard, shards int, runID string) (*bench.ShardConn, error) {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		sc := cfg
		sc.Shard, sc.Shards, sc.RunID = shard, shards, runID
		done := make(chan error, 1)
		wg.Go(func() {
			err := bench.ServeShard(ctx, sc, inR, outW)
			outW.Close()
			done <- err
		})
		return &bench.ShardConn{In: inW, Out: outR, Wait: func() error { return <-done }}, nil
	}
	var progress atomic.Int64
	cfg.Progress = func(bench.Progress) { progress.Add(1) }
	res, err := bench.RunProcs(context.Background(), cfg, 3, spawn)
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report()
	c, e, b := rep.Connections, rep.Events, rep.Broadcast
	if rep.LoadTool.Procs != 3 || rep.LoadTool.ConnsPerProc != 50 || rep.Requested.Conns != 150 {
		t.Fatalf("load tool %+v requested %+v", rep.LoadTool, rep.Requested)
	}
	if c.Established != 150 || c.Failed != 0 || c.ConnectMS.Count != 150 {
		t.Fatalf("connections = %+v", c)
	}
	if e.Sent == 0 || e.Delivered != e.Expected || e.Expected != e.Sent || e.Lost != 0 || e.Duplicates != 0 {
		t.Fatalf("events = %+v", e)
	}
	if !b.Sent || b.Expected != 150 || b.Received != 150 || b.FanOutMS == nil {
		t.Fatalf("broadcast = %+v", b)
	}
	if progress.Load() == 0 {
		t.Fatal("no progress reported")
	}
}
