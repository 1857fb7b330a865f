package redisadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// The payload every interop test sends: nested JSON, unicode, a large
// array, numbers of every size.
func richPayload() map[string]any {
	big := make([]any, 500)
	for i := range big {
		big[i] = float64(i)
	}
	return map[string]any{
		"evidenciaId": 12345.0,
		"mensaje":     "Tu evidencia fue aprobada ✓ — ñandú 日本語 🍓",
		"nested":      map[string]any{"a": []any{1.0, "b", nil, true, map[string]any{"c": -2.5}}},
		"big":         big,
		"huge":        1099511627776.0, // 2^40
		"neg":         -12345678.0,
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A Node backend's @socket.io/redis-emitter reaches clients of Go servers,
// for every kind of target, binary and bursts included.
func TestNodeEmitterToGo(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rs := redistest.Start(t)
	g := startGoServer(t, rs.URL(), serverOptions{})
	captureSeeds(t, g)
	_, seven := dial(t, g.URL, "7")
	_, eight := dial(t, g.URL, "8")
	em := nodefix.StartEmitter(t, rs.URL(), "")
	ctx := ctxT(t)

	do := func(cmd map[string]any) {
		t.Helper()
		if _, err := em.Do(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	do(map[string]any{"op": "emit", "to": []string{"user:7"}, "event": "evidencia_aprobada", "args": []any{richPayload()}})
	do(map[string]any{"op": "emit", "to": []string{"user:7"}, "event": "bin", "args": []any{[]byte{0, 1, 2, 250}, map[string]any{"inner": []byte("héllo")}}})
	do(map[string]any{"op": "emit", "event": "sistema_mantenimiento", "args": []any{"a las 22:00"}})
	do(map[string]any{"op": "emit", "except": []string{"user:8"}, "event": "not-eight", "args": []any{}})
	do(map[string]any{"op": "emit", "to": []string{"user:7", "user:8"}, "event": "both", "args": []any{1}})

	got := seven.WaitN(t, "evidencia_aprobada", 1, 5*time.Second)[0]
	if a, b := jsonOf(t, got.Args[0]), jsonOf(t, richPayload()); a != b {
		t.Errorf("payload changed:\n got %s\nwant %s", a, b)
	}
	bin := seven.WaitN(t, "bin", 1, 5*time.Second)[0]
	if b, ok := bin.Args[0].([]byte); !ok || !bytes.Equal(b, []byte{0, 1, 2, 250}) {
		t.Errorf("top-level Buffer arrived as %T %v", bin.Args[0], bin.Args[0])
	}
	if m, ok := bin.Args[1].(map[string]any); !ok || !bytes.Equal(asBytes(m["inner"]), []byte("héllo")) {
		t.Errorf("nested Buffer arrived as %v", bin.Args[1])
	}
	seven.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)
	eight.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)
	seven.WaitN(t, "not-eight", 1, 5*time.Second)
	seven.WaitN(t, "both", 1, 5*time.Second)
	eight.WaitN(t, "both", 1, 5*time.Second)
	if n := len(eight.Named("not-eight")); n != 0 {
		t.Errorf("except ignored: user:8 got %d", n)
	}

	// a burst of 1,000 targeted emits arrives complete and in order
	const n = 1000
	for i := range n {
		if err := em.Send(map[string]any{"op": "emit", "to": []string{"user:8"}, "event": "seq", "args": []any{i}}); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range eight.WaitN(t, "seq", n, 20*time.Second) {
		if fmt.Sprint(e.Args[0]) != fmt.Sprint(i) {
			t.Fatalf("burst event %d carries %v", i, e.Args[0])
		}
	}

	// the emitter's cluster requests apply to Go sockets
	do(map[string]any{"op": "socketsJoin", "rooms": []string{"user:7"}, "join": []string{"cohorte-3"}})
	waitFor(t, 5*time.Second, "emitter socketsJoin", func() bool { return roomHas(g, "cohorte-3") })
	do(map[string]any{"op": "emit", "to": []string{"cohorte-3"}, "event": "cohort", "args": []any{}})
	seven.WaitN(t, "cohort", 1, 5*time.Second)
	do(map[string]any{"op": "socketsLeave", "rooms": []string{"user:7"}, "leave": []string{"cohorte-3"}})
	waitFor(t, 5*time.Second, "emitter socketsLeave", func() bool { return !roomHas(g, "cohorte-3") })

	heard := make(chan []any, 1)
	g.IO.On("recalcular", func(args ...any) { heard <- args })
	do(map[string]any{"op": "serverSideEmit", "event": "recalcular", "args": []any{"todo", 3}})
	select {
	case args := <-heard:
		if len(args) != 2 || args[0] != "todo" {
			t.Errorf("serverSideEmit args = %v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("emitter serverSideEmit never reached the Go server")
	}

	c8 := connectedID(t, g, "user:8")
	do(map[string]any{"op": "disconnectSockets", "rooms": []string{"user:8"}, "close": true})
	waitFor(t, 5*time.Second, "emitter disconnectSockets", func() bool { _, ok := g.IO.Sockets().Sockets().Load(c8); return !ok })
}

// A mixed fleet: Node and Go servers on one Redis see each other's
// broadcasts and answer each other's requests.
func TestMixedFleet(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rs := redistest.Start(t)
	g := startGoServer(t, rs.URL(), serverOptions{})
	captureSeeds(t, g)
	node := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: rs.URL()})
	ctx := ctxT(t)

	// clients: a Node client on the Node server (user 1, mentor), a Go client on the Go server (user 2)
	nodeClient := nodefix.StartClient(t, nodefix.ClientOptions{URL: node.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "1", "mentor", time.Hour)})
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("connect")); err != nil {
		t.Fatal(err)
	}
	goClient, two := dial(t, g.URL, "2")

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
	l, err = nodeClient.WaitEvent(ctx, "bin")
	if err != nil {
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

	// requests, Node asking Go
	count, err := node.Do(ctx, map[string]any{"op": "serverCount"})
	if err != nil || count != 2.0 {
		t.Fatalf("Node serverCount = %v (%v), want 2", count, err)
	}
	rooms, err := node.Do(ctx, map[string]any{"op": "allRooms"})
	if err != nil || !strings.Contains(jsonOf(t, rooms), `"user:2"`) {
		t.Errorf("Node allRooms = %v (%v), want the Go server's rooms too", rooms, err)
	}
	nodeFetchesGoSocket(t, ctx, node, goClient.ID)
	nodeAsksGoWithAck(t, ctx, node, g)
	nodeJoinsGoSocket(t, ctx, node, g)
	nodeEmitWithAckThroughGo(t, ctx, node, two)

	// requests, Go asking Node
	remote := goFetchesNodeSocket(t, g)
	if remote.Handshake() == nil || remote.Handshake().Auth == nil {
		t.Errorf("remote socket handshake not carried: %+v", remote.Handshake())
	}
	if _, err := node.Do(ctx, map[string]any{"op": "listen", "event": "hola", "ackReply": "desde node"}); err != nil {
		t.Fatal(err)
	}
	goAcksFromNode(t, g)
	g.IO.In("user:1").DisconnectSockets(false)
	if _, err := nodeClient.WaitFor(ctx, nodefix.Has("disconnect")); err != nil {
		t.Fatal(err)
	}
}

// The requests a Node server makes of a Go server in the mixed-fleet
// tests (Pub/Sub, sharded and streams adapters alike), with the Go client
// of user 2 on the Go server (its socket goID, its events in two).

// goFetchesNodeSocket: the Go server counts two servers, and its
// fetchSockets(user:1) finds the Node client's socket, in mentor:1 too.
func goFetchesNodeSocket(t *testing.T, g *goServer) *socket.RemoteSocket {
	t.Helper()
	if n := g.IO.Sockets().Adapter().ServerCount(); n != 2 {
		t.Errorf("Go serverCount = %d", n)
	}
	remote := fetch(t, g.IO, "user:1")
	if len(remote) != 1 || !remote[0].Rooms().Has("mentor:1") {
		t.Fatalf("Go fetchSockets(user:1) = %v", ids(remote))
	}
	return remote[0]
}

// nodeFetchesGoSocket: Node's fetchSockets(user:2) finds the Go socket.
func nodeFetchesGoSocket(t *testing.T, ctx context.Context, node *nodefix.Proc, goID string) {
	t.Helper()
	socks, err := node.Do(ctx, map[string]any{"op": "fetchSockets", "rooms": []string{"user:2"}})
	if err != nil {
		t.Fatalf("Node fetchSockets: %v", err)
	}
	if list, _ := socks.([]any); len(list) != 1 || list[0].(map[string]any)["id"] != goID {
		t.Errorf("Node fetchSockets(user:2) = %v, want the Go socket %s", socks, goID)
	}
}

// nodeAsksGoWithAck: Node's serverSideEmit with an ack gets the Go
// server's answer.
func nodeAsksGoWithAck(t *testing.T, ctx context.Context, node *nodefix.Proc, g *goServer) {
	t.Helper()
	g.IO.On("quien", func(args ...any) {
		if ack, ok := args[len(args)-1].(socket.Ack); ok {
			ack([]any{map[string]any{"from": "go"}}, nil)
		}
	})
	resp, err := node.Do(ctx, map[string]any{"op": "serverSideEmit", "event": "quien", "args": []any{}, "withAck": true, "timeoutMs": 3000})
	if err != nil {
		t.Fatalf("Node serverSideEmitWithAck to Go: %v", err)
	}
	if jsonOf(t, resp) != `[{"from":"go"}]` {
		t.Errorf("Node serverSideEmitWithAck responses = %v", resp)
	}
}

// nodeJoinsGoSocket: Node's socketsJoin(user:2 -> from-node) is applied
// on the Go server.
func nodeJoinsGoSocket(t *testing.T, ctx context.Context, node *nodefix.Proc, g *goServer) {
	t.Helper()
	if _, err := node.Do(ctx, map[string]any{"op": "socketsJoin", "rooms": []string{"user:2"}, "join": []string{"from-node"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "Node socketsJoin on a Go socket", func() bool { return roomHas(g, "from-node") })
}

// nodeEmitWithAckThroughGo: a Node broadcast with acks to user:2; the Go
// server relays its client's answer.
func nodeEmitWithAckThroughGo(t *testing.T, ctx context.Context, node *nodefix.Proc, two *eventlog.Recorder) {
	t.Helper()
	done := make(chan any, 1)
	go func() {
		r, err := node.Do(ctx, map[string]any{"op": "emitWithAck", "to": []string{"user:2"}, "event": "confirmar", "args": []any{}, "timeoutMs": 5000})
		if err != nil {
			r = err
		}
		done <- r
	}()
	answerAll(t, []*eventlog.Recorder{two}, "confirmar")
	if r := <-done; jsonOf(t, r) != `["answer"]` {
		t.Errorf("Node emitWithAck through Go = %v", r)
	}
}

func roomHas(g *goServer, room string) bool {
	ids, ok := g.IO.Sockets().Adapter().Rooms().Load(socket.Room(room))
	return ok && ids.Len() > 0
}

func connectedID(t testing.TB, g *goServer, room string) socket.SocketId {
	t.Helper()
	ids, ok := g.IO.Sockets().Adapter().Rooms().Load(socket.Room(room))
	if !ok || ids.Len() != 1 {
		t.Fatalf("room %s has no single socket", room)
	}
	return ids.Keys()[0]
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// goAcksFromNode checks the acknowledgements a Go server gets from a mixed
// fleet: its serverSideEmitWithAck("hola") answered by a Node server that
// listens for it (ack "desde node"), and its broadcast with ack to user:1,
// a Node client, answered by that client.
func goAcksFromNode(t *testing.T, g *goServer) {
	t.Helper()
	acked := make(chan []any, 1)
	if err := g.IO.ServerSideEmitWithAck("hola", "x")(func(r []any, err error) {
		if err != nil {
			t.Errorf("Go serverSideEmitWithAck to Node: %v", err)
		}
		acked <- r
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-acked:
		if jsonOf(t, r) != `["desde node"]` {
			t.Errorf("Go serverSideEmitWithAck responses = %v", r)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("Go serverSideEmitWithAck to Node never completed")
	}
	answers := make(chan []any, 1)
	g.IO.To("user:1").Timeout(5 * time.Second).EmitWithAck("confirmar")(func(r []any, err error) {
		if err != nil {
			t.Errorf("Go emitWithAck to a Node client: %v", err)
		}
		answers <- r
	})
	select {
	case r := <-answers:
		if len(r) != 1 || !strings.Contains(jsonOf(t, r), "node-client") {
			t.Errorf("Go emitWithAck answers = %v", r)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("Go emitWithAck to a Node client never completed")
	}
}
