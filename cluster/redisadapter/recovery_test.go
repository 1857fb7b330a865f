package redisadapter_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Connection state recovery across the adapter: the official client's
// transport drops; while it is away, ANOTHER server emits to it through
// Redis (to its user room, of which it was the only member, to its own
// socket id, to everyone); it comes back to the same server and gets every
// one of those events, in order, with its session restored.
func TestRecoveryReplaysEventsFromAnotherServer(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	for _, p := range []struct {
		name string
		opts redisadapter.Options
	}{
		{"classic", redisadapter.Options{}},
		{"sharded-dynamic", redisadapter.Options{Sharded: true}},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			testRecovery(t, p.opts)
		})
	}
}

func testRecovery(t *testing.T, opts redisadapter.Options) {
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: opts})
	b := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
	_, observer := join(t, a, "observer") // tells when A has processed what B sent
	ctx := ctxT(t)

	// No automatic reconnection: the test reconnects the client itself, once
	// the missed events are stored on A, instead of racing its timer.
	client := nodefix.StartClient(t, nodefix.ClientOptions{
		URL: a.URL, Token: nodefix.MintToken(nodefix.DefaultSecret, "77", "student", time.Hour), NoReconnect: true,
	})
	l, err := client.WaitFor(ctx, nodefix.Has("connect"))
	if err != nil {
		t.Fatal(err)
	}
	sid := l.Map("connect").String("id")
	settled(t, a, "user:77")
	b.IO.To("user:77").Emit("live", 0) // the client needs an offset to recover from
	if _, err := client.WaitEvent(ctx, "live"); err != nil {
		t.Fatal(err)
	}

	if _, err := client.Do(ctx, map[string]any{"op": "close_transport"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "A sees the client gone", func() bool { return !roomHas(a, "user:77") })

	for i := 1; i <= 5; i++ {
		b.IO.To("user:77").Emit("missed", i, map[string]any{"n": i})
	}
	b.IO.To("user:77").Emit("missed-binary", []byte{7, 7})
	b.IO.To(socket.Room(sid)).Emit("missed-private", "to the old socket id")
	b.IO.Except("user:77").Emit("not-for-77") // must not be replayed
	// On the room's channel, where A keeps messages unread: what only the
	// message says (its exceptions, its flags) is checked at the restore.
	b.IO.To("user:77").Except(socket.Room(sid)).Emit("not-for-77")
	b.IO.To("user:77").Volatile().Emit("not-for-77")
	b.IO.Emit("sentinel") // on one Redis connection after the rest
	observer.WaitN(t, "sentinel", 1, 5*time.Second)

	if _, err := client.Do(ctx, map[string]any{"op": "connect"}); err != nil {
		t.Fatal(err)
	}
	lines, err := client.WaitCount(ctx, 2, nodefix.Has("connect"))
	if err != nil {
		t.Fatal(err)
	}
	if id := lines[1].Map("connect").String("id"); id != sid {
		t.Errorf("socket id after recovery = %s, want the old %s", id, sid)
	}
	rec, err := client.WaitCount(ctx, 2, nodefix.Has("recovered"))
	if err != nil {
		t.Fatal(err)
	}
	if rec[1]["recovered"] != true {
		t.Fatalf("the client was not recovered: %v", rec[1])
	}
	if _, err := client.WaitEvent(ctx, "sentinel"); err != nil {
		t.Fatal(err)
	}

	// Everything emitted while away arrives after the drop, in order, each
	// with its offset as last argument. (The server sends the missed
	// packets before the CONNECT packet: the client emits them before
	// "connect".)
	all := client.Lines()
	drop := len(all)
	for i, l := range all {
		if _, ok := l["disconnect"]; ok {
			drop = i
			break
		}
	}
	var names []string
	for _, l := range all[drop:] {
		ev := l.String("event")
		if ev == "" {
			continue
		}
		names = append(names, ev)
		args := l.Args()
		if off, ok := args[len(args)-1].(string); !ok || off == "" {
			t.Errorf("%s arrived without an offset: %v", ev, args)
		}
		if ev == "missed" && args[0] != float64(len(names)) {
			t.Errorf("missed event %d carries %v", len(names), args[0])
		}
	}
	want := []string{"missed", "missed", "missed", "missed", "missed", "missed-binary", "missed-private", "sentinel"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("events after recovery:\n got %v\nwant %v", names, want)
	}
	if b, ok := nodefix.DecodeBin(firstArgOf(client.Events("missed-binary"))); !ok || !bytes.Equal(b, []byte{7, 7}) {
		t.Errorf("binary event replayed as %v", client.Events("missed-binary"))
	}
	if n := len(client.Events("not-for-77")); n != 0 {
		t.Errorf("an event excluding the client was replayed %d times", n)
	}
}

func firstArg(l nodefix.Line) any {
	if args := l.Args(); len(args) > 0 {
		return args[0]
	}
	return nil
}

func firstArgOf(ls []nodefix.Line) any {
	if len(ls) == 0 {
		return nil
	}
	return firstArg(ls[0])
}
