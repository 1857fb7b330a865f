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
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Two Go servers on one Redis: what one emits reaches the clients of the
// other, for every way of addressing them.
func TestBroadcastAcrossServers(t *testing.T) {
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{})
	b := startGoServer(t, rs.URL(), serverOptions{})
	_, seven := dial(t, a.URL, "7")
	_, eight := dial(t, a.URL, "8")
	_, nine := dial(t, b.URL, "9")

	payload := map[string]any{"n": 1.5, "s": "ñandú ✓ 日本", "deep": map[string]any{"list": []any{1.0, "two", nil, true}}}
	b.IO.To("user:7").Emit("one-room", payload)
	b.IO.To("user:7", "user:8").Emit("two-rooms", "x")
	b.IO.Except("user:8").Emit("except", "y")
	b.IO.Emit("everyone", "z")
	b.IO.To("user:7").Emit("binary", []byte{0, 1, 2, 255})
	b.IO.Local().Emit("local-only", "never remote")
	b.IO.To("user:7").Emit("marker") // published after local-only: once it is in, local-only would be too

	got := seven.waitN(t, "one-room", 1, 5*time.Second)[0]
	if js := jsonOf(t, got.Args[0]); js != jsonOf(t, payload) {
		t.Errorf("payload changed on the way: got %s want %s", js, jsonOf(t, payload))
	}
	seven.waitN(t, "two-rooms", 1, 5*time.Second)
	eight.waitN(t, "two-rooms", 1, 5*time.Second)
	seven.waitN(t, "except", 1, 5*time.Second)
	nine.waitN(t, "except", 1, 5*time.Second)
	for _, r := range []*recorder{seven, eight, nine} {
		r.waitN(t, "everyone", 1, 5*time.Second)
	}
	bin := seven.waitN(t, "binary", 1, 5*time.Second)[0]
	if b, ok := bin.Args[0].([]byte); !ok || !bytes.Equal(b, []byte{0, 1, 2, 255}) {
		t.Errorf("binary arrived as %T %v", bin.Args[0], bin.Args[0])
	}
	seven.waitN(t, "marker", 1, 5*time.Second)
	if n := len(eight.named("except")); n != 0 {
		t.Errorf("user:8 got %d events sent except to user:8", n)
	}
	if n := len(seven.named("local-only")); n != 0 {
		t.Errorf("a local broadcast crossed servers (%d)", n)
	}
	if n := len(nine.named("one-room")) + len(nine.named("two-rooms")); n != 0 {
		t.Errorf("user:9 got %d events for other rooms", n)
	}
	if n := len(nine.named("local-only")); n != 1 {
		t.Errorf("local broadcast on its own server: %d deliveries, want 1", n)
	}
}

// A burst of targeted emits reaches a websocket client complete and in order.
func TestBurstArrivesInOrder(t *testing.T) {
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{})
	b := startGoServer(t, rs.URL(), serverOptions{})
	_, rec := dial(t, a.URL, "42")
	const n = 1000
	for i := range n {
		b.IO.To("user:42").Emit("seq", i)
	}
	got := rec.waitN(t, "seq", n, 20*time.Second)
	for i, e := range got {
		if v := fmt.Sprint(e.Args[0]); v != fmt.Sprint(i) {
			t.Fatalf("event %d carries %s: out of order or lost", i, v)
		}
	}
}

// The cluster-wide operations of Node's adapter work between Go servers.
func TestClusterRequests(t *testing.T) {
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{})
	b := startGoServer(t, rs.URL(), serverOptions{})
	c7, rec7 := dial(t, a.URL, "7")
	_, rec8 := dial(t, b.URL, "8")

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
	b.IO.To("team").Emit("team-news", 1)
	rec7.waitN(t, "team-news", 1, 5*time.Second)
	b.IO.In("user:7").SocketsLeave("team")
	waitFor(t, 5*time.Second, "remote leave", func() bool { return len(fetch(t, b.IO, "team")) == 0 })

	// serverSideEmit with acks: each other server answers once.
	b.IO.On("hello", func(args ...any) {
		if ack, ok := args[len(args)-1].(socket.Ack); ok {
			ack([]any{"hi from b"}, nil)
		}
	})
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
	_ = rec8 // the clients answer through their ack functions
	answerAll(t, []*recorder{rec7, rec8}, "question")
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
}

// A server that is subscribed but never answers (it died mid-request, or
// it is wedged) makes fetchSockets fail after the request timeout with what
// did answer, instead of hanging.
func TestRequestsTimeOutWithPartialAnswers(t *testing.T) {
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{adapter: redisadapter.Options{RequestTimeout: 500 * time.Millisecond}})
	b := startGoServer(t, rs.URL(), serverOptions{})
	dial(t, b.URL, "1")
	// a silent subscriber: counted by PUBSUB NUMSUB, answers nothing
	ps := a.Client.Subscribe(context.Background(), "socket.io-request#/#")
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil {
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
}

// Garbage on the adapter's channels is counted and skipped; delivery goes on.
func TestMalformedMessagesAreSkipped(t *testing.T) {
	rs := redistest.Start(t)
	log := &testLogger{}
	a := startGoServer(t, rs.URL(), serverOptions{logger: log})
	_, rec := dial(t, a.URL, "5")
	ctx := context.Background()
	for _, m := range []struct{ ch, payload string }{
		{"socket.io#/#", "\x93\xa3abc"},                 // truncated
		{"socket.io#/#", "\xc1"},                        // invalid code
		{"socket.io#/#", "{\"json\": true}"},            // not msgpack
		{"socket.io#/#", "\x93\xa3abc\x80\x80"},         // packet without data
		{"socket.io#/#user:5#", "\xdd\xff\xff\xff\xff"}, // array claiming 4G elements
		{"socket.io-request#/#", "{not json"},
		{"socket.io-request#/#", "\x81\xa4type\xa1x"},
		{"socket.io-response#/#", "["},
	} {
		if err := a.Client.Publish(ctx, m.ch, m.payload).Err(); err != nil {
			t.Fatal(err)
		}
	}
	e := redisadapter.NewEmitter(a.Client, "")
	if _, err := e.To("user:5").Emit(ctx, "still-alive", 1); err != nil {
		t.Fatal(err)
	}
	rec.waitN(t, "still-alive", 1, 5*time.Second)
	if m := a.Adapter.Status().Malformed; m < 5 {
		t.Errorf("malformed = %d, want at least 5", m)
	}
	if n := log.count("malformed"); n != 1 {
		t.Errorf("%d log lines for a burst of malformed messages, want 1 (throttled)", n)
	}
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

func answerAll(t testing.TB, recs []*recorder, name string) {
	t.Helper()
	for _, r := range recs {
		e := r.waitN(t, name, 1, 5*time.Second)[0]
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
