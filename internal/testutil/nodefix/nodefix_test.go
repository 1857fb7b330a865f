package nodefix_test

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

const secret = "nodefix-test-secret"

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// payload is sent by the emitter and by server B: nested JSON, unicode and
// a binary argument.
func payload() []any {
	return []any{
		map[string]any{"a": map[string]any{"b": []any{1, 2.5, "x", nil, true}, "empty": map[string]any{}}},
		"héllo — 世界 🍓 \u2028 \"quoted\"",
		[]byte{0, 1, 2, 0x7f, 0x80, 0xff},
		42,
	}
}

// wantPayload is payload as the client reports it (JSON numbers are float64,
// binary is {"$bin": ...}).
func wantPayload() []any {
	return []any{
		map[string]any{"a": map[string]any{"b": []any{1.0, 2.5, "x", nil, true}, "empty": map[string]any{}}},
		"héllo — 世界 🍓 \u2028 \"quoted\"",
		nodefix.Bin([]byte{0, 1, 2, 0x7f, 0x80, 0xff}),
		42.0,
	}
}

func TestNodeCluster(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rds := redistest.Start(t)
	em := nodefix.StartEmitter(t, rds.URL(), "")
	servers := nodefix.StartServers(t,
		nodefix.ServerOptions{RedisURL: rds.URL(), Secret: secret},
		nodefix.ServerOptions{RedisURL: rds.URL(), Secret: secret, RequestsTimeout: 2 * time.Second})
	a, b := servers[0], servers[1]
	ctx := ctxFor(t, 30*time.Second)

	if n, err := b.Do(ctx, map[string]any{"op": "serverCount"}); err != nil || n != 2.0 {
		t.Fatalf("serverCount = %v, %v; want 2", n, err)
	}

	t.Run("serverSideEmit", func(t *testing.T) {
		if _, err := a.Do(ctx, map[string]any{"op": "listen", "event": "hello", "ackReply": map[string]any{"from": "A"}}); err != nil {
			t.Fatal(err)
		}
		got, err := b.Do(ctx, map[string]any{"op": "serverSideEmit", "event": "hello", "args": []any{"x", []byte{9}}, "withAck": true, "timeoutMs": 3000})
		if err != nil {
			t.Fatal(err)
		}
		if want := []any{map[string]any{"from": "A"}}; !reflect.DeepEqual(got, want) {
			t.Fatalf("serverSideEmitWithAck = %#v, want %#v", got, want)
		}
		l, err := a.WaitFor(ctx, func(l nodefix.Line) bool { return l["serverSideEmit"] == "hello" })
		if err != nil {
			t.Fatal(err)
		}
		// The classic adapter sends server-side emits as JSON (JSON.stringify),
		// so a Buffer arrives as Node's Buffer.toJSON() form, not as binary.
		if want := []any{"x", map[string]any{"type": "Buffer", "data": []any{9.0}}}; !reflect.DeepEqual(l.Args(), want) {
			t.Fatalf("A got args %#v, want %#v", l.Args(), want)
		}
		// The emitter's serverSideEmit reaches every server (no ack possible).
		if _, err := em.Do(ctx, map[string]any{"op": "serverSideEmit", "event": "hello", "args": []any{"from-emitter"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.WaitFor(ctx, func(l nodefix.Line) bool {
			return l["serverSideEmit"] == "hello" && reflect.DeepEqual(l.Args(), []any{"from-emitter"})
		}); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name       string
		transports []string
		role       string
		want       string // transport reported on connect
	}{
		{"default", nil, "student", ""},
		{"websocket", []string{"websocket"}, "mentor", "websocket"},
		{"polling", []string{"polling"}, "admin", "polling"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sub := "user-" + tc.name
			c := nodefix.StartClient(t, nodefix.ClientOptions{
				URL: a.URL(), Token: nodefix.MintToken(secret, sub, tc.role, time.Minute),
				Transports: tc.transports, NoReconnect: true,
			})
			conn, err := c.WaitFor(ctx, nodefix.Has("connect"))
			if err != nil {
				t.Fatal(err)
			}
			id := conn.Map("connect").String("id")
			if tr := conn.Map("connect").String("transport"); tc.want != "" && tr != tc.want {
				t.Errorf("connected over %q, want %q", tr, tc.want)
			}
			if _, err := a.WaitFor(ctx, func(l nodefix.Line) bool {
				c := l.Map("connection")
				return c != nil && c.String("id") == id && c.String("sub") == sub && c.String("role") == tc.role
			}); err != nil {
				t.Fatal(err)
			}

			// Emitter -> Redis -> server A -> client.
			if _, err := em.Do(ctx, map[string]any{"op": "emit", "to": []any{"user:" + sub}, "event": "fromEmitter", "args": payload()}); err != nil {
				t.Fatal(err)
			}
			ev, err := c.WaitEvent(ctx, "fromEmitter")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev.Args(), wantPayload()) {
				t.Fatalf("fromEmitter args = %#v\nwant %#v", ev.Args(), wantPayload())
			}
			if bin, ok := nodefix.DecodeBin(ev.Args()[2]); !ok || !bytes.Equal(bin, []byte{0, 1, 2, 0x7f, 0x80, 0xff}) {
				t.Fatalf("binary arg = %v", ev.Args()[2])
			}

			// Server B -> Redis -> server A -> client, after the emitter's message.
			if _, err := b.Do(ctx, map[string]any{"op": "emit", "to": []any{"user:" + sub}, "event": "fromB", "args": payload()}); err != nil {
				t.Fatal(err)
			}
			ev, err = c.WaitEvent(ctx, "fromB")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ev.Args(), wantPayload()) {
				t.Fatalf("fromB args = %#v\nwant %#v", ev.Args(), wantPayload())
			}
			var order []string
			for _, l := range c.Lines() {
				if e := l.String("event"); e == "fromEmitter" || e == "fromB" {
					order = append(order, e)
				}
			}
			if !slices.Equal(order, []string{"fromEmitter", "fromB"}) {
				t.Errorf("event order = %v", order)
			}

			// fetchSockets from B sees the client connected to A.
			got, err := b.Do(ctx, map[string]any{"op": "fetchSockets", "rooms": []any{"user:" + sub}})
			if err != nil {
				t.Fatal(err)
			}
			socks, _ := got.([]any)
			if len(socks) != 1 {
				t.Fatalf("fetchSockets = %#v, want one socket", got)
			}
			s := nodefix.Line(socks[0].(map[string]any))
			wantRooms := []string{id, "user:" + sub}
			if tc.role == "mentor" {
				wantRooms = append(wantRooms, "mentor:"+sub)
			}
			var rooms []string
			for _, r := range s["rooms"].([]any) {
				rooms = append(rooms, r.(string))
			}
			slices.Sort(rooms)
			slices.Sort(wantRooms)
			if s.String("id") != id || !slices.Equal(rooms, wantRooms) ||
				!reflect.DeepEqual(s["data"], map[string]any{"sub": sub, "role": tc.role}) {
				t.Fatalf("fetchSockets entry = %#v (want id %s rooms %v)", s, id, wantRooms)
			}

			// Client emitWithAck("ping") -> server ack.
			ack, err := c.Do(ctx, map[string]any{"op": "emitWithAck", "event": "ping", "args": []any{"hi"}, "timeoutMs": 3000})
			if err != nil {
				t.Fatal(err)
			}
			resp, _ := ack.([]any)
			if len(resp) != 1 || nodefix.Line(resp[0].(map[string]any))["pong"] != true {
				t.Fatalf("ping ack = %#v", ack)
			}
		})
	}

	for _, tc := range []struct{ name, token string }{
		{"wrong secret", nodefix.MintToken("other-secret", "u", "student", time.Minute)},
		{"expired", nodefix.MintToken(secret, "u", "student", -time.Minute)},
		{"bad role", nodefix.MintToken(secret, "u", "guest", time.Minute)},
		{"no sub", nodefix.MintTokenClaims(secret, map[string]any{"role": "admin"})},
		{"no token", ""},
	} {
		t.Run("unauthorized/"+tc.name, func(t *testing.T) {
			t.Parallel()
			c := nodefix.StartClient(t, nodefix.ClientOptions{URL: a.URL(), Token: tc.token, NoReconnect: true})
			l, err := c.WaitFor(ctx, func(l nodefix.Line) bool { return l["connect"] != nil || l["connect_error"] != nil })
			if err != nil {
				t.Fatal(err)
			}
			if msg := l.Map("connect_error").String("message"); msg != "Unauthorized" {
				t.Fatalf("got %v, want connect_error Unauthorized", l)
			}
		})
	}
}

// TestShardedAdapter checks the sharded adapter (SPUBLISH/SSUBSCRIBE) across
// two Node servers.
func TestShardedAdapter(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rds := redistest.Start(t)
	opts := nodefix.ServerOptions{RedisURL: rds.URL(), Secret: secret, Sharded: true, Key: "sharded"}
	servers := nodefix.StartServers(t, opts, opts)
	a, b := servers[0], servers[1]
	ctx := ctxFor(t, 20*time.Second)

	if n, err := b.Do(ctx, map[string]any{"op": "serverCount"}); err != nil || n != 2.0 {
		t.Fatalf("serverCount = %v, %v; want 2", n, err)
	}
	c := nodefix.StartClient(t, nodefix.ClientOptions{URL: a.URL(), Token: nodefix.MintToken(secret, "s1", "student", time.Minute), Transports: []string{"websocket"}})
	conn, err := c.WaitFor(ctx, nodefix.Has("connect"))
	if err != nil {
		t.Fatal(err)
	}
	id := conn.Map("connect").String("id")
	// With subscriptionMode "dynamic", A SSUBSCRIBEs to the channel of room
	// user:s1 when the socket joins it, without awaiting the reply, so an
	// emit right after "connect" could in theory beat it. The fetchSockets
	// round trip below makes it safe: A answers only after flushing that
	// SSUBSCRIBE, and Redis reads it before B can publish again.
	got, err := b.Do(ctx, map[string]any{"op": "fetchSockets", "rooms": []any{"user:s1"}})
	if err != nil {
		t.Fatal(err)
	}
	if socks, _ := got.([]any); len(socks) != 1 || socks[0].(map[string]any)["id"] != id {
		t.Fatalf("fetchSockets = %#v", got)
	}
	// Unlike the classic adapter, the sharded one msgpack-encodes messages
	// with binary, so a Buffer in a server-side emit stays binary.
	if _, err := a.Do(ctx, map[string]any{"op": "listen", "event": "hello"}); err != nil {
		t.Fatal(err)
	}
	acks, err := b.Do(ctx, map[string]any{"op": "serverSideEmit", "event": "hello", "args": []any{[]byte{9}}, "withAck": true, "timeoutMs": 3000})
	if want := []any{map[string]any{"from": "node", "args": []any{nodefix.Bin([]byte{9})}}}; err != nil || !reflect.DeepEqual(acks, want) {
		t.Fatalf("serverSideEmitWithAck = %#v, %v; want %#v", acks, err, want)
	}

	if _, err := b.Do(ctx, map[string]any{"op": "emit", "to": []any{"user:s1"}, "event": "fromB", "args": payload()}); err != nil {
		t.Fatal(err)
	}
	ev, err := c.WaitEvent(ctx, "fromB")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ev.Args(), wantPayload()) {
		t.Fatalf("fromB args = %#v", ev.Args())
	}
}

// TestProcExit checks that waiting on an exited process fails at once.
func TestProcExit(t *testing.T) {
	t.Parallel()
	nodefix.Require(t)
	rds := redistest.Start(t)
	em := nodefix.StartEmitter(t, rds.URL(), "")
	em.Stop()
	start := time.Now()
	_, err := em.WaitFor(ctxFor(t, 10*time.Second), func(nodefix.Line) bool { return false })
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("WaitFor on an exited process: err=%v after %v", err, time.Since(start))
	}
	t.Logf("WaitFor error: %v", err)
	if _, err := em.Do(ctxFor(t, 10*time.Second), map[string]any{"op": "emit", "event": "x"}); err == nil {
		t.Fatal("Do on an exited process succeeded")
	}
}
