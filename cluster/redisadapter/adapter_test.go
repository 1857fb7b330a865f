package redisadapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Two Go servers on one Redis: what one emits reaches the clients of the
// other, for every way of addressing them, in every protocol.
func TestBroadcastAcrossServers(t *testing.T) {
	t.Parallel()
	forEachProtocol(t, func(t *testing.T, opts redisadapter.Options) {
		checkBroadcastAcrossServers(t, redistest.Start(t).URL(), opts)
	})
}

// checkBroadcastAcrossServers is TestBroadcastAcrossServers on the Redis
// at redisURL (standalone, Sentinel or Cluster).
func checkBroadcastAcrossServers(t *testing.T, redisURL string, opts redisadapter.Options) {
	a := startGoServer(t, redisURL, serverOptions{adapter: opts})
	b := startGoServer(t, redisURL, serverOptions{adapter: opts})
	c7, seven := join(t, a, "7")
	_, eight := join(t, a, "8")
	_, nine := join(t, b, "9")

	payload := map[string]any{"n": 1.5, "s": "ñandú ✓ 日本 <&>", "deep": map[string]any{"list": []any{1.0, "two", nil, true}}}
	b.IO.To("user:7").Emit("one-room", payload)
	b.IO.To("user:7", "user:8").Emit("two-rooms", "x")
	b.IO.Except("user:8").Emit("except", "y")
	b.IO.Emit("everyone", "z")
	b.IO.To("user:7").Emit("binary", []byte{0, 1, 2, 255}, map[string]any{"inner": []byte("héllo")})
	b.IO.To(socket.Room(c7.ID)).Emit("private", "to the socket's own room")
	b.IO.Local().Emit("local-only", "never remote")
	b.IO.To("user:7").Emit("marker") // published after local-only: once it is in, local-only would be too

	got := seven.WaitN(t, "one-room", 1, 5*time.Second)[0]
	if js := jsonOf(t, got.Args[0]); js != jsonOf(t, payload) {
		t.Errorf("payload changed on the way: got %s want %s", js, jsonOf(t, payload))
	}
	seven.WaitN(t, "two-rooms", 1, 5*time.Second)
	eight.WaitN(t, "two-rooms", 1, 5*time.Second)
	seven.WaitN(t, "except", 1, 5*time.Second)
	nine.WaitN(t, "except", 1, 5*time.Second)
	for _, r := range []*eventlog.Recorder{seven, eight, nine} {
		r.WaitN(t, "everyone", 1, 5*time.Second)
	}
	bin := seven.WaitN(t, "binary", 1, 5*time.Second)[0]
	if b, ok := bin.Args[0].([]byte); !ok || !bytes.Equal(b, []byte{0, 1, 2, 255}) {
		t.Errorf("binary arrived as %T %v", bin.Args[0], bin.Args[0])
	}
	if m, ok := bin.Args[1].(map[string]any); !ok || !bytes.Equal(asBytes(m["inner"]), []byte("héllo")) {
		t.Errorf("nested binary arrived as %v", bin.Args[1])
	}
	seven.WaitN(t, "private", 1, 5*time.Second)
	seven.WaitN(t, "marker", 1, 5*time.Second)
	if n := len(eight.Named("except")); n != 0 {
		t.Errorf("user:8 got %d events sent except to user:8", n)
	}
	if n := len(seven.Named("local-only")); n != 0 {
		t.Errorf("a local broadcast crossed servers (%d)", n)
	}
	if n := len(nine.Named("one-room")) + len(nine.Named("two-rooms")) + len(eight.Named("private")); n != 0 {
		t.Errorf("%d events reached sockets outside their rooms", n)
	}
	if n := len(nine.Named("local-only")); n != 1 {
		t.Errorf("local broadcast on its own server: %d deliveries, want 1", n)
	}
}

// In the sharded dynamic mode a room's channel is subscribed while the
// room exists on the server, and dropped with it.
func TestShardedRoomChannels(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: true}})
	base := a.Adapter.Status().Subscriptions // the namespace channel and the response channel
	if base != 2 {
		t.Errorf("a fresh sharded namespace holds %d subscriptions, want 2", base)
	}
	c, _ := join(t, a, "7")
	numsub := func(ch string) int64 {
		n, err := a.Client.PubSubShardNumSub(context.Background(), ch).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n[ch]
	}
	if n := numsub("socket.io#/#user:7#"); n != 1 {
		t.Errorf("SHARDNUMSUB of the room's channel = %d, want 1", n)
	}
	// Go socket ids (24 characters) do not look like Node's (20), so
	// publishers send to their own channel: it must be subscribed.
	if n := numsub("socket.io#/#" + c.ID + "#"); n != 1 {
		t.Errorf("SHARDNUMSUB of the socket's own channel = %d, want 1", n)
	}
	if got := a.Adapter.Status().Subscriptions; got != base+2 {
		t.Errorf("subscriptions = %d, want %d", got, base+2)
	}
	_ = c.Close()
	waitFor(t, 5*time.Second, "room channels dropped with the rooms", func() bool {
		return a.Adapter.Status().Subscriptions == base && numsub("socket.io#/#user:7#") == 0
	})
}

// With recovery on, the channel of a room whose only member went away stays
// subscribed while the session may come back, and is dropped once it has
// expired.
func TestShardedAwayRoomKeptUntilSessionExpires(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	const window = 500 * time.Millisecond
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, window: window, adapter: redisadapter.Options{Sharded: true}})
	c, _ := join(t, a, "7")
	numsub := func() int64 {
		n, err := a.Client.PubSubShardNumSub(context.Background(), "socket.io#/#user:7#").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n["socket.io#/#user:7#"]
	}
	_ = c.Close() // a dropped transport: the session is kept for the window
	gone := time.Now()
	waitFor(t, 5*time.Second, "the room gone from A", func() bool { return !roomHas(a, "user:7") })
	if n := numsub(); n != 1 && time.Since(gone) < window {
		t.Errorf("the away room's channel was dropped at once (SHARDNUMSUB %d)", n)
	}
	waitFor(t, 5*time.Second, "the channel dropped after the window", func() bool { return numsub() == 0 })
	if el := time.Since(gone); el < window {
		t.Errorf("dropped after %v, before the %v window ended", el, window)
	}
}

// A burst of targeted emits reaches a websocket client complete and in order.
func TestBurstArrivesInOrder(t *testing.T) {
	t.Parallel()
	forEachProtocol(t, func(t *testing.T, opts redisadapter.Options) {
		checkBurstArrivesInOrder(t, redistest.Start(t).URL(), opts)
	})
}

// checkBurstArrivesInOrder is TestBurstArrivesInOrder on the Redis at
// redisURL.
func checkBurstArrivesInOrder(t *testing.T, redisURL string, opts redisadapter.Options) {
	a := startGoServer(t, redisURL, serverOptions{adapter: opts})
	b := startGoServer(t, redisURL, serverOptions{adapter: opts})
	_, rec := join(t, a, "42")
	const n = 1000
	for i := range n {
		b.IO.To("user:42").Emit("seq", i)
	}
	eventually(20*time.Second, func() bool { return len(rec.Named("seq")) >= n })
	got := rec.Named("seq")
	if len(got) < n {
		seen := map[string]bool{}
		for _, e := range got {
			seen[fmt.Sprint(e.Args[0])] = true
		}
		var miss []int
		for i := range n {
			if !seen[fmt.Sprint(i)] {
				miss = append(miss, i)
			}
		}
		t.Fatalf("missing %v; a %+v b %+v", miss, a.Adapter.Status(), b.Adapter.Status())
	}
	for i, e := range got {
		if v := fmt.Sprint(e.Args[0]); v != fmt.Sprint(i) {
			t.Fatalf("event %d carries %s: out of order or lost", i, v)
		}
	}
}

// The cluster-wide operations of Node's adapter work between Go servers.
func TestClusterRequests(t *testing.T) {
	t.Parallel()
	forEachProtocol(t, func(t *testing.T, opts redisadapter.Options) {
		rs := redistest.Start(t)
		a := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
		b := startGoServer(t, rs.URL(), serverOptions{adapter: opts})
		c7, rec7 := join(t, a, "7")
		_, rec8 := join(t, b, "8")

		if n := a.IO.Sockets().Adapter().ServerCount(); n != 2 {
			t.Errorf("serverCount = %d, want 2", n)
		}

		sockets := fetch(t, b.IO, "user:7")
		if len(sockets) != 1 || string(sockets[0].Id()) != c7.ID {
			t.Fatalf("fetchSockets(user:7) from the other server = %v, want [%s]", ids(sockets), c7.ID)
		}
		if !sockets[0].Rooms().Has("user:7") {
			t.Errorf("remote socket rooms = %v", sockets[0].Rooms().Keys())
		}
		if all := fetch(t, a.IO); len(all) != 2 {
			t.Errorf("fetchSockets() = %v, want 2 sockets", ids(all))
		}

		// socketsJoin on B moves A's socket into a room B then emits to.
		b.IO.In("user:7").SocketsJoin("team")
		waitFor(t, 5*time.Second, "remote join", func() bool { return len(fetch(t, b.IO, "team")) == 1 })
		settled(t, a, "team")
		b.IO.To("team").Emit("team-news", 1)
		rec7.WaitN(t, "team-news", 1, 5*time.Second)
		b.IO.In("user:7").SocketsLeave("team")
		waitFor(t, 5*time.Second, "remote leave", func() bool { return len(fetch(t, b.IO, "team")) == 0 })

		// serverSideEmit with acks: each other server answers once.
		b.IO.On("hello", func(args ...any) {
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack([]any{"hi from b"}, nil)
			}
		})
		heard := make(chan []any, 1)
		b.IO.On("plain", func(args ...any) { heard <- args })
		if err := a.IO.ServerSideEmit("plain", "no ack", []byte{7}); err != nil {
			t.Fatal(err)
		}
		select {
		case args := <-heard:
			if len(args) != 2 || args[0] != "no ack" {
				t.Errorf("serverSideEmit args = %v", args)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serverSideEmit never arrived")
		}
		done := make(chan []any, 1)
		if err := a.IO.ServerSideEmitWithAck("hello", 1)(func(responses []any, err error) {
			if err != nil {
				t.Errorf("serverSideEmitWithAck: %v", err)
			}
			done <- responses
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-done:
			if len(r) != 1 || r[0] != "hi from b" {
				t.Errorf("serverSideEmit responses = %v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("serverSideEmitWithAck never answered")
		}

		// broadcast with acks across servers: one answer per client.
		answered := make(chan []any, 1)
		a.IO.Timeout(5 * time.Second).EmitWithAck("question")(func(responses []any, err error) {
			if err != nil {
				t.Errorf("emitWithAck: %v", err)
			}
			answered <- responses
		})
		answerAll(t, []*eventlog.Recorder{rec7, rec8}, "question")
		select {
		case r := <-answered:
			if len(r) != 2 {
				t.Errorf("emitWithAck got %d answers, want 2: %v", len(r), r)
			}
		case <-time.After(6 * time.Second):
			t.Fatal("emitWithAck never completed")
		}

		// disconnectSockets from B closes A's client.
		b.IO.In("user:7").DisconnectSockets(true)
		select {
		case <-c7.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("remote disconnectSockets did not disconnect")
		}
	})
}

// A server that is subscribed but never answers (it died mid-request, or
// it is wedged) makes fetchSockets fail after the request timeout with what
// did answer, instead of hanging.
func TestRequestsTimeOutWithPartialAnswers(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			a := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: sharded, RequestTimeout: 500 * time.Millisecond}})
			b := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: sharded}})
			dial(t, b.URL, "1")
			// a silent subscriber: counted by PUBSUB (SHARD)NUMSUB, answers nothing
			ctx := context.Background()
			ps := a.Client.Subscribe(ctx, "socket.io-request#/#")
			if sharded {
				ps.Close()
				ps = a.Client.SSubscribe(ctx, "socket.io#/#")
			}
			defer ps.Close()
			if _, err := ps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var got []socket.SocketDetails
			var gotErr error
			a.IO.Sockets().Adapter().FetchSockets(&socket.BroadcastOptions{Rooms: roomSet(), Except: roomSet()})(func(s []socket.SocketDetails, err error) {
				got, gotErr = s, err
			})
			if gotErr == nil || !strings.Contains(gotErr.Error(), "only 1 responses received out of 2") {
				t.Errorf("err = %v, want a timeout naming 1 of 2", gotErr)
			}
			if len(got) != 1 {
				t.Errorf("got %d sockets, want the 1 that answered", len(got))
			}
			if el := time.Since(start); el > 3*time.Second {
				t.Errorf("took %v with a 500ms timeout", el)
			}
		})
	}
}

// Garbage on the adapter's channels is counted and skipped; delivery goes on.
func TestMalformedMessagesAreSkipped(t *testing.T) {
	t.Parallel()
	garbage := []string{
		"\x93\xa3abc",          // truncated
		"\xc1",                 // invalid code
		"{\"json\": true}",     // JSON without the expected shape
		"\x93\xa3abc\x80\x80",  // packet without data
		"\xdd\xff\xff\xff\xff", // array claiming 4G elements
		"{not json",            // broken JSON
		"\x81\xa4type\xa1x",    // type is not a number
		"[",                    // not an object
		"{\"type\":3,\"data\":{\"packet\":{\"type\":2,\"data\":[]}}}", // event without a name
	}
	t.Run("classic", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		log := &testLogger{}
		a := startGoServer(t, rs.URL(), serverOptions{logger: log})
		_, rec := join(t, a, "5")
		ctx := context.Background()
		for _, ch := range []string{"socket.io#/#", "socket.io#/#user:5#", "socket.io-request#/#", "socket.io-response#/#"} {
			for _, g := range garbage {
				if err := a.Client.Publish(ctx, ch, g).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		e := redisadapter.NewEmitter(a.Client, "")
		if _, err := e.To("user:5").Emit(ctx, "still-alive", 1); err != nil {
			t.Fatal(err)
		}
		rec.WaitN(t, "still-alive", 1, 5*time.Second)
		if m := a.Adapter.Status().Malformed; m < 20 {
			t.Errorf("malformed = %d, want at least 20", m)
		}
		if n := log.count("malformed"); n != 1 {
			t.Errorf("%d log lines for a burst of malformed messages, want 1 (throttled)", n)
		}
	})
	t.Run("sharded", func(t *testing.T) {
		t.Parallel()
		rs := redistest.Start(t)
		log := &testLogger{}
		a := startGoServer(t, rs.URL(), serverOptions{logger: log, adapter: redisadapter.Options{Sharded: true}})
		_, rec := join(t, a, "5")
		ctx := context.Background()
		for _, ch := range []string{"socket.io#/#", "socket.io#/#user:5#"} {
			for _, g := range garbage {
				if err := a.Client.SPublish(ctx, ch, g).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		e := redisadapter.NewEmitter(a.Client, "").Sharded("")
		if _, err := e.To("user:5").Emit(ctx, "still-alive", 1); err != nil {
			t.Fatal(err)
		}
		rec.WaitN(t, "still-alive", 1, 5*time.Second)
		if m := a.Adapter.Status().Malformed; m < uint64(2*len(garbage)) {
			t.Errorf("malformed = %d, want %d", m, 2*len(garbage))
		}
		if n := log.count("malformed"); n != 1 {
			t.Errorf("%d log lines for a burst of malformed messages, want 1 (throttled)", n)
		}
	})
}

func fetch(t testing.TB, io *socket.Server, rooms ...string) []*socket.RemoteSocket {
	t.Helper()
	var out []*socket.RemoteSocket
	op := io.Sockets().(interface {
		In(...socket.Room) *socket.BroadcastOperator
	}).In(roomsOf(rooms)...)
	if len(rooms) == 0 {
		op = socket.NewBroadcastOperator(io.Sockets().Adapter(), nil, nil, nil)
	}
	op.FetchSockets()(func(s []*socket.RemoteSocket, err error) {
		if err != nil {
			t.Errorf("fetchSockets: %v", err)
		}
		out = s
	})
	return out
}

func answerAll(t testing.TB, recs []*eventlog.Recorder, name string) {
	t.Helper()
	for _, r := range recs {
		e := r.WaitN(t, name, 1, 5*time.Second)[0]
		if e.Ack == nil {
			t.Fatalf("%q arrived without an ack id", name)
		}
		if err := e.Ack("answer"); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(s []*socket.RemoteSocket) []string {
	var out []string
	for _, x := range s {
		out = append(out, string(x.Id()))
	}
	return out
}

func roomsOf(rooms []string) []socket.Room {
	var out []socket.Room
	for _, r := range rooms {
		out = append(out, socket.Room(r))
	}
	return out
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var norm any
	_ = json.Unmarshal(b, &norm)
	b, _ = json.Marshal(norm)
	return string(b)
}

func roomSet(rooms ...socket.Room) *types.Set[socket.Room] { return types.NewSet(rooms...) }

// Every message published reaches the subscriber, whatever the frame
// boundaries on the connection: go-redis's RESP3 reader dropped the
// messages whose header straddled two reads (redis/go-redis#3839), about
// one in a thousand in a burst, until v9.23.
func TestNoMessageLostAtReadBoundaries(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprintf("sharded=%v", sharded), func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			a := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{Sharded: sharded}})
			em := redisadapter.NewEmitter(a.Client, "").To("nobody", "here") // the namespace channel, decoded and dropped
			if sharded {
				em = em.Sharded("")
			}
			const n = 10000
			ctx := context.Background()
			for sent := 0; sent < n; {
				pipe := a.Client.Pipeline()
				for i := 0; i < 500; i++ {
					msg, err := em.Encode("e", strings.Repeat("x", (sent*7919)%700))
					if err != nil {
						t.Fatal(err)
					}
					if sharded {
						pipe.SPublish(ctx, em.Channel(), msg)
					} else {
						pipe.Publish(ctx, em.Channel(), msg)
					}
					sent++
				}
				if _, err := pipe.Exec(ctx); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 20*time.Second, fmt.Sprintf("%d messages received", n), func() bool {
				return a.Adapter.Status().Received >= n
			})
			if st := a.Adapter.Status(); st.Received != n || st.Malformed != 0 {
				t.Errorf("received %d (malformed %d), want %d", st.Received, st.Malformed, n)
			}
		})
	}
}
