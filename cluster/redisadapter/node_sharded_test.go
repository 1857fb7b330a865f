package redisadapter_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// A mixed fleet on sharded Pub/Sub: a Node server with createShardedAdapter
// and a Go server with Options.Sharded, in both subscription modes, see
// each other's broadcasts (rooms, socket ids, everyone, binary) and answer
// each other's requests.
func TestShardedMixedFleet(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	for _, mode := range []redisadapter.SubscriptionMode{redisadapter.SubscriptionDynamic, redisadapter.SubscriptionStatic} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			testShardedMixedFleet(t, mode)
		})
	}
}

func testShardedMixedFleet(t *testing.T, mode redisadapter.SubscriptionMode) {
	rs := redistest.Start(t)
	g := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: true, SubscriptionMode: mode}})
	captureSeeds(t, g)
	node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Sharded: true, Env: []string{"SUBSCRIPTION_MODE=" + string(mode)}})
	ctx := ctxT(t)

	nodeClient := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "1", "mentor", time.Hour)})
	l, err := nodeClient.WaitFor(ctx, nodefix.Has("connect"))
	if err != nil {
		t.Fatal(err)
	}
	nodeSocketID := l.Map("connect").String("id")
	goClient, two := join(t, g, "2")
	if mode == redisadapter.SubscriptionDynamic {
		// node-redis subscribes the room's channel in the background
		waitFor(t, 5*time.Second, "the Node server's room channel", func() bool {
			n, err := g.Client.PubSubShardNumSub(ctx, "socket.io#/#user:1#").Result()
			return err == nil && n["socket.io#/#user:1#"] == 1
		})
	}

	// Go server -> Node server's client
	g.IO.To("user:1").Emit("nueva_evidencia", richPayload())
	g.IO.To("user:1").Emit("bin", []byte{9, 8, 7})
	g.IO.To(socket.Room(nodeSocketID)).Emit("private", "by socket id")
	g.IO.To("user:1", "mentor:1").Emit("two-rooms")
	g.IO.Emit("actualizacion_disponible", "v2")
	l, err = nodeClient.WaitEvent(ctx, "nueva_evidencia")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := jsonOf(t, l.Args()[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("Go->Node payload changed:\n got %s\nwant %s", a, b)
	}
	l, err = nodeClient.WaitEvent(ctx, "bin")
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := nodefix.DecodeBin(l.Args()[0]); !ok || !bytes.Equal(b, []byte{9, 8, 7}) {
		t.Errorf("Go []byte reached the Node client as %v", l.Args()[0])
	}
	for _, ev := range []string{"private", "two-rooms", "actualizacion_disponible"} {
		if _, err := nodeClient.WaitEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(nodeClient.Events("two-rooms")); n != 1 {
		t.Errorf("a broadcast to two rooms of one socket arrived %d times", n)
	}

	// Node server -> Go server's client, including to the Go socket's own
	// room: its id has 24 characters, so Node sends it on the room's channel
	// in dynamic mode.
	for _, cmd := range []map[string]any{
		{"op": "emit", "to": []string{"user:2"}, "event": "mentor_mensaje", "args": []any{richPayload(), []byte{1, 2}}},
		{"op": "emit", "to": []string{goClient.ID}, "event": "private", "args": []any{"by socket id"}},
		{"op": "emit", "except": []string{"user:1"}, "event": "sistema_mantenimiento", "args": []any{}},
	} {
		if _, err := node.Do(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	got := two.WaitN(t, "mentor_mensaje", 1, 5*time.Second)[0]
	if a, b := jsonOf(t, got.Args[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("Node->Go payload changed:\n got %s\nwant %s", a, b)
	}
	if b, ok := got.Args[1].([]byte); !ok || !bytes.Equal(b, []byte{1, 2}) {
		t.Errorf("Node Buffer reached the Go client as %T %v", got.Args[1], got.Args[1])
	}
	two.WaitN(t, "private", 1, 5*time.Second)
	two.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)

	// requests, Node asking Go
	count, err := node.Do(ctx, map[string]any{"op": "serverCount"})
	if err != nil || count != 2.0 {
		t.Fatalf("Node serverCount = %v (%v), want 2", count, err)
	}
	nodeFetchesGoSocket(t, ctx, node, goClient.ID)
	heard := make(chan []any, 1)
	g.IO.On("bin-sse", func(args ...any) { heard <- args })
	if _, err := node.Do(ctx, map[string]any{"op": "serverSideEmit", "event": "bin-sse", "args": []any{[]byte{5, 6}, "x"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-heard:
		if b, ok := args[0].([]byte); !ok || !bytes.Equal(b, []byte{5, 6}) || args[1] != "x" {
			t.Errorf("Node serverSideEmit with a Buffer reached Go as %v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Node serverSideEmit never reached the Go server")
	}
	nodeAsksGoWithAck(t, ctx, node, g)
	nodeJoinsGoSocket(t, ctx, node, g)
	settled(t, g, "from-node")
	if _, err := node.Do(ctx, map[string]any{"op": "emit", "to": []string{"from-node"}, "event": "joined", "args": []any{}}); err != nil {
		t.Fatal(err)
	}
	two.WaitN(t, "joined", 1, 5*time.Second)
	nodeEmitWithAckThroughGo(t, ctx, node, two)

	// requests, Go asking Node
	if n := g.IO.Sockets().Adapter().ServerCount(); n != 2 {
		t.Errorf("Go serverCount = %d", n)
	}
	remote := fetch(t, g.IO, "user:1")
	if len(remote) != 1 || !remote[0].Rooms().Has("mentor:1") || string(remote[0].Id()) != nodeSocketID {
		t.Fatalf("Go fetchSockets(user:1) = %v", ids(remote))
	}
	if remote[0].Handshake() == nil || remote[0].Handshake().Auth == nil {
		t.Errorf("remote socket handshake not carried: %+v", remote[0].Handshake())
	}
	if _, err := node.Do(ctx, map[string]any{"op": "listen", "event": "hola", "ackReply": "desde node"}); err != nil {
		t.Fatal(err)
	}
	if err := g.IO.ServerSideEmit("hola", []byte{4, 2}, "plain"); err != nil {
		t.Fatal(err)
	}
	l, err = node.WaitFor(ctx, func(l nodefix.Line) bool { return l.String("serverSideEmit") == "hola" })
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := nodefix.DecodeBin(l.Args()[0]); !ok || !bytes.Equal(b, []byte{4, 2}) {
		t.Errorf("Go serverSideEmit with []byte reached Node as %v", l.Args())
	}
	goAcksFromNode(t, g)
	g.IO.In("user:1").SocketsJoin("from-go")
	waitFor(t, 5*time.Second, "Go socketsJoin on a Node socket", func() bool {
		socks, err := node.Do(ctx, map[string]any{"op": "localSockets"})
		return err == nil && strings.Contains(jsonOf(t, socks), "from-go")
	})
	g.IO.In("user:1").DisconnectSockets(false)
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("disconnect")); err != nil {
		t.Fatal(err)
	}
}

// Our Emitter in sharded mode reaches Node's sharded servers (which Node's
// own emitter cannot) and ours.
func TestShardedEmitter(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rs := redistest.Start(t)
	g := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: true}})
	node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL(), Sharded: true})
	ctx := ctxT(t)
	nodeClient := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "1", "student", time.Hour)})
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("connect")); err != nil {
		t.Fatal(err)
	}
	_, two := join(t, g, "2")
	waitFor(t, 5*time.Second, "the Node server's room channel", func() bool {
		n, err := g.Client.PubSubShardNumSub(ctx, "socket.io#/#user:1#").Result()
		return err == nil && n["socket.io#/#user:1#"] == 1
	})

	em := redisadapter.NewEmitter(g.Client, "").Sharded(redisadapter.SubscriptionDynamic)
	if n, err := em.To("user:1").Emit(ctx, "nueva_tarea", map[string]any{"id": 7}, []byte{1}); err != nil || n != 1 {
		t.Fatalf("emit to user:1 = %d receivers, %v; want 1", n, err)
	}
	if _, err := em.To("user:2").Emit(ctx, "nueva_tarea", map[string]any{"id": 8}); err != nil {
		t.Fatal(err)
	}
	if n, err := em.Emit(ctx, "sistema_mantenimiento", "22:00"); err != nil || n != 2 {
		t.Fatalf("emit to everyone = %d receivers, %v; want 2", n, err)
	}
	l, err := nodeClient.WaitEvent(ctx, "nueva_tarea")
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, l.Args()[0]) != `{"id":7}` {
		t.Errorf("Node client got %v", l.Args())
	}
	if _, err := nodeClient.WaitEvent(ctx, "sistema_mantenimiento"); err != nil {
		t.Fatal(err)
	}
	if e := two.WaitN(t, "nueva_tarea", 1, 5*time.Second)[0]; jsonOf(t, e.Args[0]) != `{"id":8}` {
		t.Errorf("Go client got %v", e.Args)
	}
	two.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)

	if err := em.To("user:1", "user:2").SocketsJoin(ctx, "cohorte"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "emitter socketsJoin on both servers", func() bool {
		socks, err := node.Do(ctx, map[string]any{"op": "localSockets"})
		return err == nil && strings.Contains(jsonOf(t, socks), "cohorte") && roomHas(g, "cohorte")
	})
	heard := make(chan []any, 1)
	g.IO.On("recalcular", func(args ...any) { heard <- args })
	if _, err := node.Do(ctx, map[string]any{"op": "listen", "event": "recalcular", "noAck": true}); err != nil {
		t.Fatal(err)
	}
	if err := em.ServerSideEmit(ctx, "recalcular", "todo"); err != nil {
		t.Fatal(err)
	}
	select {
	case args := <-heard:
		if len(args) != 1 || args[0] != "todo" {
			t.Errorf("serverSideEmit args = %v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emitter serverSideEmit never reached the Go server")
	}
	if _, err := node.WaitFor(ctx, func(l nodefix.Line) bool { return l.String("serverSideEmit") == "recalcular" }); err != nil {
		t.Fatal(err)
	}
	if err := em.To("user:1").DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("disconnect")); err != nil {
		t.Fatal(err)
	}

	// Node's own emitter publishes on the classic channels: sharded servers
	// never see it (receivers: 0), which is why ours has a sharded mode.
	nodeEm := nodefix.StartEmitter(t, rs.URL(), "")
	l, err = nodeEm.DoLine(ctx, map[string]any{"op": "emit", "to": []string{"user:2"}, "event": "never", "args": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := l["receivers"].(float64); r != 0 {
		t.Errorf("Node's emitter reached %v subscribers of a sharded fleet, want 0", r)
	}
}
