package redisadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// nodeReads waits until the Node server reads the stream (its reader
// starts at "$" when its first XREAD runs, some time after it is ready):
// the Go server emits probes to a Node client until one arrives.
func nodeReads(t *testing.T, g *goServer, client *nodefix.Proc, room string) {
	t.Helper()
	ok := eventually(15*time.Second, func() bool {
		g.IO.To(socket.Room(room)).Emit("probe")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := client.WaitEvent(ctx, "probe")
		return err == nil
	})
	if !ok {
		t.Fatal("the Node server never delivered what the Go server appended to the stream")
	}
}

// A mixed fleet on @socket.io/redis-streams-adapter 0.3.1: a Node server
// with the real package and a Go server see each other's broadcasts
// (binary included) and answer each other's requests (serverCount,
// fetchSockets, serverSideEmit with acks, socketsJoin, broadcasts with
// acks, disconnectSockets), both ways.
func TestStreamsMixedFleet(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	for _, sharded := range []bool{false, true} {
		t.Run(map[bool]string{false: "pubsub", true: "sharded-pubsub"}[sharded], func(t *testing.T) {
			t.Parallel()
			testStreamsMixedFleet(t, sharded)
		})
	}
}

func testStreamsMixedFleet(t *testing.T, sharded bool) {
	rs := redistest.Start(t)
	opts := streamsOpts(0)
	opts.Sharded = sharded
	g := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
	captureSeeds(t, g)
	node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Streams: true, Sharded: sharded})
	ctx := ctxT(t)

	nodeClient := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "1", "mentor", time.Hour)})
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("connect")); err != nil {
		t.Fatal(err)
	}
	goClient, two := dial(t, g.URL, "2")
	nodeReads(t, g, nodeClient, "user:1")

	// Go server -> Node server's client
	g.IO.To("user:1").Emit("nueva_evidencia", richPayload())
	g.IO.To("user:1").Emit("bin", []byte{9, 8, 7})
	g.IO.Emit("actualizacion_disponible", "v2")
	l, err := nodeClient.WaitEvent(ctx, "nueva_evidencia")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(t, l.Args()[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("Go->Node payload changed:\n got %s\nwant %s", a, b)
	}
	if l, err = nodeClient.WaitEvent(ctx, "bin"); err != nil {
		t.Fatal(err)
	}
	if b, ok := nodefix.DecodeBin(l.Args()[0]); !ok || !bytes.Equal(b, []byte{9, 8, 7}) {
		t.Errorf("Go []byte reached the Node client as %v", l.Args()[0])
	}
	if _, err := nodeClient.WaitEvent(ctx, "actualizacion_disponible"); err != nil {
		t.Fatal(err)
	}

	// Node server -> Go server's client
	if _, err := node.Do(ctx, map[string]any{"op": "emit", "to": []string{"user:2"}, "event": "mentor_mensaje", "args": []any{richPayload(), []byte{1, 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Do(ctx, map[string]any{"op": "emit", "event": "sistema_mantenimiento", "args": []any{}}); err != nil {
		t.Fatal(err)
	}
	got := two.WaitN(t, "mentor_mensaje", 1, 5*time.Second)[0]
	if a, b := jsonOf(t, got.Args[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("Node->Go payload changed:\n got %s\nwant %s", a, b)
	}
	if b, ok := got.Args[1].([]byte); !ok || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("Node Buffer reached the Go client as %T %v", got.Args[1], got.Args[1])
	}
	two.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)

	// a burst from Node arrives complete and in order
	const n = 300
	for i := range n {
		if err := node.Send(map[string]any{"op": "emit", "to": []string{"user:2"}, "event": "seq", "args": []any{i}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range two.WaitN(t, "seq", n, 20*time.Second) {
		if fmt.Sprint(e.Args[0]) != fmt.Sprint(i) {
			t.Fatalf("burst event %d carries %v", i, e.Args[0])
		}
	}

	// requests, Node asking Go
	count, err := node.Do(ctx, map[string]any{"op": "serverCount"})
	if err != nil || count != 2.0 {
		t.Fatalf("Node serverCount = %v (%v), want 2", count, err)
	}
	nodeFetchesGoSocket(t, ctx, node, goClient.ID)
	nodeAsksGoWithAck(t, ctx, node, g)
	nodeJoinsGoSocket(t, ctx, node, g)
	nodeEmitWithAckThroughGo(t, ctx, node, two)

	// requests, Go asking Node
	goFetchesNodeSocket(t, g)
	if _, err := node.Do(ctx, map[string]any{"op": "listen", "event": "hola", "ackReply": "desde node"}); err != nil {
		t.Fatal(err)
	}
	goAcksFromNode(t, g)
	g.IO.In("user:1").SocketsJoin("from-go")
	waitFor(t, 5*time.Second, "Go socketsJoin on a Node socket", func() bool {
		r, err := node.Do(ctx, map[string]any{"op": "localSockets"})
		return err == nil && jsonOf(t, r) != "" && bytes.Contains([]byte(jsonOf(t, r)), []byte(`"from-go"`))
	})
	g.IO.In("user:1").DisconnectSockets(false)
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("disconnect")); err != nil {
		t.Fatal(err)
	}
}

// Sessions cross between Node and Go servers: a session the Go server
// kept is restored by the Node server (GETDEL, XRANGE from the offset),
// and one the Node server stored is restored by the Go server, each with
// the events emitted by both while the client was away, in order. (Where
// the format does not allow it: a client that had received no event
// sends no offset; Node does not try, and a session Node stored has no
// frutosFrom for Go to start from, so that client starts anew.)
func TestStreamsSessionsCrossNodeAndGo(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	for _, from := range []string{"go", "node"} {
		t.Run("from-"+from, func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			g := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
			node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Streams: true, Recovery: time.Minute})
			first, second := g.URL, node.URL()
			if from == "node" {
				first, second = second, first
			}
			ctx := ctxT(t)
			watcher := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "w", "student", time.Hour)})
			if _, err := watcher.WaitFor(ctx, nodefix.Has("connect")); err != nil {
				t.Fatal(err)
			}
			nodeReads(t, g, watcher, "user:w")

			client := nodefix.StartClient(t, nodefix.ClientOptions{URL: first, NoReconnect: true, Transports: []string{"websocket"},
				Token: nodefix.MintToken(nodefix.DefaultSecret, "77", "student", time.Hour)})
			l, err := client.WaitFor(ctx, nodefix.Has("connect"))
			if err != nil {
				t.Fatal(err)
			}
			sid := l.Map("connect").String("id")
			waitFor(t, 5*time.Second, "the client's room", func() bool {
				if from == "go" {
					return roomHas(g, "user:77")
				}
				return len(fetch(t, g.IO, "user:77")) == 1
			})
			g.IO.To("user:77").Emit("live", 0) // an offset to recover from
			if _, err := client.WaitEvent(ctx, "live"); err != nil {
				t.Fatal(err)
			}
			if from == "go" {
				waitFor(t, 5*time.Second, "the Go server keeps the session", func() bool { return g.Adapter.Status().LiveSessions == 1 })
			}
			if _, err := client.Do(ctx, map[string]any{"op": "close_transport"}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the session stored", func() bool {
				keys, _ := g.Client.Keys(context.Background(), "sio:session:*").Result()
				if from == "go" {
					return !roomHas(g, "user:77") && len(keys) >= 1
				}
				return len(keys) >= 1
			})

			// one at a time: two publishers' entries take the stream's
			// order, not the order of the calls
			appended := func(k int64) {
				t.Helper()
				waitFor(t, 5*time.Second, "the entry appended", func() bool {
					return g.Client.XLen(context.Background(), "socket.io").Val() >= k
				})
			}
			n := g.Client.XLen(context.Background(), "socket.io").Val()
			g.IO.To("user:77").Emit("missed", 1)
			appended(n + 1)
			if _, err := node.Do(ctx, map[string]any{"op": "emit", "to": []string{"user:77"}, "event": "missed", "args": []any{2}}); err != nil {
				t.Fatal(err)
			}
			appended(n + 2)
			g.IO.To(socket.Room(sid)).Emit("missed", 3)
			appended(n + 3)
			if _, err := node.Do(ctx, map[string]any{"op": "emit", "to": []string{"user:77"}, "event": "missed", "args": []any{[]byte{4}}}); err != nil {
				t.Fatal(err)
			}
			appended(n + 4)
			g.IO.Except("user:77").Emit("not-for-77")
			appended(n + 5)
			g.IO.Emit("sentinel")
			if _, err := watcher.WaitEvent(ctx, "sentinel"); err != nil { // Node read them all
				t.Fatal(err)
			}
			_, observer := join(t, g, "observer")
			g.IO.Emit("sentinel-2")
			observer.WaitN(t, "sentinel-2", 1, 5*time.Second) // Go read them all

			if _, err := client.Do(ctx, map[string]any{"op": "connect", "url": second}); err != nil {
				t.Fatal(err)
			}
			lines, err := client.WaitCount(ctx, 2, nodefix.Has("connect"))
			if err != nil {
				t.Fatal(err)
			}
			if id := lines[1].Map("connect").String("id"); id != sid {
				t.Fatalf("socket id after recovery on the other kind = %s, want %s", id, sid)
			}
			if rec, err := client.WaitCount(ctx, 2, nodefix.Has("recovered")); err != nil || rec[1]["recovered"] != true {
				t.Fatalf("not recovered: %v %v", rec, err)
			}
			all := client.Lines()
			var got []string
			drop := false
			for _, l := range all {
				if _, ok := l["disconnect"]; ok {
					drop = true
				}
				if ev := l.String("event"); drop && ev != "" {
					args := l.Args()
					if off, ok := args[len(args)-1].(string); !ok || off == "" {
						t.Errorf("%s arrived without an offset: %v", ev, args)
					}
					arg := fmt.Sprint(args[0])
					if b, ok := nodefix.DecodeBin(args[0]); ok {
						arg = fmt.Sprint(b)
					}
					got = append(got, ev+":"+arg)
				}
			}
			want := "[missed:1 missed:2 missed:3 missed:[4] sentinel:" + fmt.Sprint(eventArgOrEmpty(all, "sentinel")) + " sentinel-2:" + fmt.Sprint(eventArgOrEmpty(all, "sentinel-2")) + "]"
			if fmt.Sprint(got) != want {
				t.Errorf("events after recovery on the other kind:\n got %v\nwant %s", got, want)
			}
		})
	}
}

// eventArgOrEmpty is what the events test prints for an event without
// arguments (its only argument is the offset).
func eventArgOrEmpty(ls []nodefix.Line, name string) any {
	for _, l := range ls {
		if l.String("event") == name {
			return l.Args()[0]
		}
	}
	return nil
}

// The Go emitter in the streams protocol reaches a Node server on the
// streams adapter (Node has no streams emitter package).
func TestStreamsEmitterToNode(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rs := redistest.Start(t)
	g := startGoServer(t, rs.URL(), serverOptions{adapter: streamsOpts(0)})
	node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Streams: true})
	ctx := ctxT(t)
	client := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "3", "student", time.Hour)})
	if _, err := client.WaitFor(ctx, nodefix.Has("connect")); err != nil {
		t.Fatal(err)
	}
	nodeReads(t, g, client, "user:3")
	em := redisadapter.NewEmitter(g.Client, "").Streams(redisadapter.StreamOptions{})
	if _, err := em.To("user:3").Emit(ctx, "evidencia_aprobada", richPayload(), []byte{5, 6}); err != nil {
		t.Fatal(err)
	}
	l, err := client.WaitEvent(ctx, "evidencia_aprobada")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(t, l.Args()[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("payload changed:\n got %s\nwant %s", a, b)
	}
	if b, ok := nodefix.DecodeBin(l.Args()[1]); !ok || !bytes.Equal(b, []byte{5, 6}) {
		t.Errorf("binary arrived as %v", l.Args()[1])
	}
	if n, err := em.ServerCount(ctx); err != nil || n != 2 {
		t.Errorf("emitter ServerCount = %d, %v; want 2", n, err)
	}
	if _, err := node.Do(ctx, map[string]any{"op": "listen", "event": "recalcular"}); err != nil {
		t.Fatal(err)
	}
	if err := em.ServerSideEmit(ctx, "recalcular", "todo"); err != nil {
		t.Fatal(err)
	}
	if _, err := node.WaitFor(ctx, func(l nodefix.Line) bool { return l.String("serverSideEmit") == "recalcular" }); err != nil {
		t.Fatal(err)
	}
}
