package redisadapter_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// On a 3-master Redis Cluster every protocol delivers across servers: the
// classic one (PUBLISH reaches every node) and the sharded ones, whose
// channels live on all three masters.
func TestClusterBroadcastAcrossServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			opts := p.opts
			opts.Key = "t-" + p.name // one cluster for all: no cross-talk
			opts.Stream.Name = opts.Key
			checkBroadcastAcrossServers(t, c.URL(), opts)
			checkBurstArrivesInOrder(t, c.URL(), opts)
		})
	}
}

// The shard channels of one server are spread over every master: the
// adapter holds a subscriber link per master.
func TestClusterShardedSubscribesOnEveryMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	a := startGoServer(t, c.URL(), serverOptions{adapter: redisadapter.Options{Sharded: true}})
	var users []string
	for i := range 30 {
		users = append(users, fmt.Sprint(i))
	}
	for _, u := range users {
		join(t, a, u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	owners := map[string]bool{}
	for _, u := range users {
		ch := "socket.io#/#user:" + u + "#"
		m := c.MasterOf(ctx, c.Slot(ctx, ch))
		n, err := m.Client(t).PubSubShardNumSub(ctx, ch).Result()
		if err != nil || n[ch] != 1 {
			t.Errorf("SHARDNUMSUB %s on its master %s = %v, %v; want 1", ch, m.Addr(), n[ch], err)
		}
		owners[m.Addr()] = true
	}
	if len(owners) != 3 {
		t.Errorf("30 room channels on %d masters, want 3", len(owners))
	}
}

// A slot moving to another master (its subscribers get an unsolicited
// sunsubscribe) is followed: the channel is subscribed on the new owner
// and delivery goes on.
func TestClusterShardedSlotMigration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	opts := redisadapter.Options{Sharded: true}
	a := startGoServer(t, c.URL(), serverOptions{adapter: opts})
	b := startGoServer(t, c.URL(), serverOptions{adapter: opts})
	_, seven := join(t, a, "7")
	b.IO.To("user:7").Emit("before")
	seven.WaitN(t, "before", 1, 5*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := "socket.io#/#user:7#"
	slot := c.Slot(ctx, ch)
	from := c.MasterOf(ctx, slot)
	var to *redistest.Server
	for s := 0; s < 16384 && to == nil; s += 500 {
		if m := c.MasterOf(ctx, s); m != from {
			to = m
		}
	}
	c.MoveSlot(ctx, slot, to)
	waitFor(t, 15*time.Second, "the room's channel subscribed on its new master", func() bool {
		n, err := to.Client(t).PubSubShardNumSub(ctx, ch).Result()
		return err == nil && n[ch] == 1
	})
	for i := 0; ; i++ {
		b.IO.To("user:7").Emit("after", i)
		if len(seven.Named("after")) > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no delivery after slot %d moved from %s to %s: A %+v", slot, from.Addr(), to.Addr(), a.Adapter.Status())
		}
		time.Sleep(20 * time.Millisecond) // probe rate
	}
}

// A master fails (kill -9) and its replica takes over: delivery resumes,
// nothing is delivered twice. The gap is logged, not asserted.
func TestClusterMasterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a Redis Cluster master")
	}
	for _, p := range protocols[:2] { // classic and sharded-dynamic
		t.Run(p.name, func(t *testing.T) {
			c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
			a := startGoServer(t, c.URL()+"&client_name=frutos-a", serverOptions{adapter: p.opts})
			b := startGoServer(t, c.URL(), serverOptions{adapter: p.opts})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			victim := func() *redistest.Server {
				if p.opts.Sharded { // the master of the target room's channel
					return c.MasterOf(ctx, c.Slot(ctx, "socket.io#/#user:7#"))
				}
				return nodeWithClient(ctx, t, c, "frutos-a") // where A subscribes
			}()
			r := measureFailover(t, a, b, victim.Stop)
			t.Logf("cluster, %s, %s killed: %s", p.name, victim.Addr(), r)
		})
	}
	// The master B publishes to (classic: the master of the key's slot)
	// fails, while B's own links may be elsewhere: B must follow the
	// failover without waiting for go-redis's periodic reload.
	t.Run("classic-publisher", func(t *testing.T) {
		c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
		a := startGoServer(t, c.URL(), serverOptions{})
		b := startGoServer(t, c.URL(), serverOptions{})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		victim := c.MasterOf(ctx, c.Slot(ctx, "socket.io"))
		r := measureFailover(t, a, b, victim.Stop)
		t.Logf("cluster, classic, the publisher's master %s killed: %s", victim.Addr(), r)
	})
	t.Run("streams", func(t *testing.T) {
		c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
		opts := redisadapter.Options{Streams: true}
		a := startGoServer(t, c.URL(), serverOptions{adapter: opts})
		b := startGoServer(t, c.URL(), serverOptions{adapter: opts})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		victim := c.MasterOf(ctx, c.Slot(ctx, "socket.io")) // the stream's master
		r := measureFailover(t, a, b, victim.Stop)
		t.Logf("cluster, streams, %s (the stream's master) killed: %s", victim.Addr(), r)
	})
}

// On Redis Cluster a stream is one key, so one slot on one master: every
// XADD and XREAD of a namespace goes there (Node's streamCount spreads
// namespaces, not one namespace, over several). Sessions are keys of
// their own, spread over the slots. Shown with three namespaces on four
// streams (one of them the "<name>--<i>" of a negative hash, which Node
// servers never read), broadcasts across servers and a restore.
func TestClusterStreamsPlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	t.Parallel()
	c := redistest.StartCluster(t, redistest.ClusterOptions{})
	opts := redisadapter.Options{Streams: true, Key: "place", Stream: redisadapter.StreamOptions{Name: "place", Count: 4}}
	a := startGoServer(t, c.URL(), serverOptions{recovery: true, adapter: opts})
	b := startGoServer(t, c.URL(), serverOptions{recovery: true, adapter: opts})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streams := map[string]string{"/": "place-3", "/admin": "place-0", "/notificaciones": "place--3"}
	for nsp, stream := range streams {
		for _, g := range []*goServer{a, b} {
			g.IO.Of(nsp, nil).Use(func(s *socket.Socket, next func(*socket.ExtendedError)) {
				s.Join(socket.Room("user:" + subject(s.Handshake().Auth)))
				next(nil)
			})
		}
		rec := eventlog.New()
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		cl, err := sioclient.Dial(dctx, sioclient.Options{URL: a.URL, Namespace: nsp, Auth: map[string]any{"user": "7"}, OnEvent: rec.On})
		dcancel()
		if err != nil {
			t.Fatalf("%s: %v", nsp, err)
		}
		t.Cleanup(func() { cl.Close() })
		waitFor(t, 10*time.Second, "both servers read "+stream, func() bool { return a.Adapter.Ready() && b.Adapter.Ready() })
		b.IO.Of(nsp, nil).To("user:7").Emit("hola", nsp)
		rec.WaitN(t, "hola", 1, 10*time.Second)
		owner := c.MasterOf(ctx, c.Slot(ctx, stream))
		for _, m := range []*redistest.Server{c.MasterOf(ctx, 0), c.MasterOf(ctx, 6000), c.MasterOf(ctx, 12000)} {
			n := m.Client(t).Exists(ctx, stream).Val()
			if (m == owner) != (n == 1) {
				t.Errorf("stream %s of %s on %s: exists=%d (its master is %s)", stream, nsp, m.Addr(), n, owner.Addr())
			}
		}
	}

	// a restore on the other server, on the cluster
	c1, rec := recoverable(t, a, "8", nil)
	settled(t, a, "user:8")
	a.IO.To("user:8").Emit("live")
	rec.WaitN(t, "live", 1, 10*time.Second)
	waitFor(t, 10*time.Second, "the session in Redis", func() bool { return a.Adapter.Status().LiveSessions >= 1 })
	sess := c1.Session()
	_ = c1.Close()
	waitFor(t, 10*time.Second, "A sees the client gone", func() bool { return !roomHas(a, "user:8") })
	b.IO.To("user:8").Emit("missed")
	_, obs := join(t, b, "observer")
	b.IO.Emit("sentinel")
	obs.WaitN(t, "sentinel", 1, 10*time.Second)
	c2, rec2 := recoverable(t, b, "8", sess)
	if !c2.Recovered {
		t.Fatalf("not recovered on the cluster: %+v", b.Adapter.Status())
	}
	rec2.WaitN(t, "missed", 1, 10*time.Second)
}

// Sentinel promotes the replica when the master dies (kill -9): delivery
// resumes on the new master, nothing is delivered twice.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a Sentinel failover")
	}
	for _, p := range protocols[:2] {
		t.Run(p.name, func(t *testing.T) {
			st := redistest.StartSentinel(t)
			a := startGoServer(t, st.URL(), serverOptions{adapter: p.opts})
			b := startGoServer(t, st.URL(), serverOptions{adapter: p.opts})
			r := measureFailover(t, a, b, st.Master.Stop)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if m := st.MasterAddr(ctx); m != st.Replica.Addr() {
				t.Errorf("after the failover the sentinels name %q, want the replica %s", m, st.Replica.Addr())
			}
			t.Logf("sentinel, %s, master killed: %s", p.name, r)
		})
	}
}

// failoverReport is what a client lost while Redis failed over.
type failoverReport struct {
	sent, lost int
	gap        time.Duration // from the first event lost to the first delivered again
	resumed    time.Duration // from the kill to the first event emitted after it being delivered
}

func (r failoverReport) String() string {
	return fmt.Sprintf("%d events sent, one per 10ms, %d lost, delivery gap %.2fs, resumed %.2fs after the kill",
		r.sent, r.lost, r.gap.Seconds(), r.resumed.Seconds())
}

// measureFailover emits numbered events from b to a client of a, calls
// kill, and keeps emitting until delivery has resumed and 100 more events
// arrived. It fails the test if delivery does not resume within 45 s, if
// the last events are not all delivered, or if any event arrives twice.
func measureFailover(t *testing.T, a, b *goServer, kill func()) failoverReport {
	t.Helper()
	_, rec := join(t, a, "7")
	b.IO.To("user:7").Emit("seq", -1)
	rec.WaitN(t, "seq", 1, 10*time.Second)

	var sentAt []time.Time
	emit := func() {
		b.IO.To("user:7").Emit("seq", len(sentAt))
		sentAt = append(sentAt, time.Now())
	}
	for range 50 {
		emit()
		time.Sleep(10 * time.Millisecond) // the emit rate, not synchronisation
	}
	killedAt, killedSeq := time.Now(), len(sentAt)
	kill()
	var r failoverReport
	resumedSeq := -1
	for {
		emit()
		time.Sleep(10 * time.Millisecond) // the emit rate
		if resumedSeq < 0 {
			for _, seq := range delivered(rec) {
				if seq >= killedSeq {
					resumedSeq = len(sentAt) // 100 more from here
					r.resumed = time.Since(killedAt)
					break
				}
			}
			if resumedSeq < 0 && time.Since(killedAt) > 45*time.Second {
				t.Fatalf("no delivery within 45s of the kill: A %+v, B %+v", a.Adapter.Status(), b.Adapter.Status())
			}
		} else if len(sentAt) >= resumedSeq+100 {
			break
		}
	}
	last := len(sentAt) - 1
	waitFor(t, 10*time.Second, "the events emitted after delivery resumed", func() bool {
		return counts(rec)[last] > 0
	})
	got := counts(rec)
	r.sent = len(sentAt)
	firstLost := -1
	for seq := range sentAt {
		switch n := got[seq]; {
		case n > 1:
			t.Errorf("event %d delivered %d times", seq, n)
		case n == 0 && seq >= resumedSeq:
			t.Errorf("event %d, emitted after delivery resumed, was lost", seq)
		case n == 0:
			r.lost++
			if firstLost < 0 {
				firstLost = seq
			}
		case firstLost >= 0 && r.gap == 0:
			r.gap = sentAt[seq].Sub(sentAt[firstLost])
		}
	}
	return r
}

// delivered lists the sequence numbers the recorder got.
func delivered(rec *eventlog.Recorder) []int {
	var out []int
	for _, e := range rec.Named("seq") {
		if n, err := strconv.Atoi(fmt.Sprint(e.Args[0])); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func counts(rec *eventlog.Recorder) map[int]int {
	m := map[int]int{}
	for _, seq := range delivered(rec) {
		m[seq]++
	}
	return m
}

// nodeWithClient is the cluster node where a Pub/Sub client named name is
// connected.
func nodeWithClient(ctx context.Context, t *testing.T, c *redistest.Cluster, name string) *redistest.Server {
	t.Helper()
	for _, s := range c.Nodes {
		list, err := s.Query(ctx, "CLIENT", "LIST", "TYPE", "pubsub")
		if err == nil && strings.Contains(fmt.Sprint(list), "name="+name+" ") {
			return s
		}
	}
	t.Fatalf("no node has a pub/sub client named %s", name)
	return nil
}
