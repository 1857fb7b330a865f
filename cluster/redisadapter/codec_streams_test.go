package redisadapter

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Stream names per namespace are Node's (computeStreamName): the values
// below were printed by the adapter's hashCode in Node 20.
func TestStreamForNamespace(t *testing.T) {
	so := StreamOptions{Count: 4}
	so.withDefaults()
	for nsp, want := range map[string]string{
		"/": "socket.io-3", "/admin": "socket.io-0", "/chat": "socket.io-3", "/ñandú": "socket.io-1",
		"/日本": "socket.io-2", "/🍓": "socket.io-2", "/notificaciones": "socket.io--3", "/mentores": "socket.io-2",
	} {
		if got := so.streamFor(nsp); got != want {
			t.Errorf("stream of %q = %s, want %s", nsp, got, want)
		}
	}
	one := StreamOptions{}
	one.withDefaults()
	if got := one.streamFor("/admin"); got != "socket.io" {
		t.Errorf("one stream: %s", got)
	}
}

// The selector of a broadcast is read without decoding its packet, in
// Node's key order and ours, and not fooled by "opts" in the payload.
func TestBroadcastTarget(t *testing.T) {
	for _, c := range []struct {
		data string
		ok   bool
		want string
	}{
		{`{"packet":{"type":2,"data":["e",1],"nsp":"/"},"opts":{"rooms":["user:1"],"except":[],"flags":{}}}`, true, `{[user:1] [] {false <nil> false <nil>}}`},
		{`{"opts":{"except":["x"],"flags":{"volatile":true},"rooms":[]},"packet":{"data":["e"],"nsp":"/","type":2}}`, true, `{[] [x] {true <nil> false <nil>}}`},
		{`{"packet":{"type":2,"data":["e",{"a":1,"opts":{"rooms":["evil"]}}],"nsp":"/"},"opts":{"rooms":["user:2"],"except":[],"flags":{}}}`, true, `{[user:2] [] {false <nil> false <nil>}}`},
		{`{"opts":{"rooms":["r"],"except":[],"flags":{}},"packet":{"data":["e",{"opts":{"rooms":["evil"]}}],"nsp":"/","type":2}}`, true, `{[r] [] {false <nil> false <nil>}}`},
		{`{"packet":{"type":2,"data":["e"],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}},"requestId":"abc"}`, false, ""},
		{`{"packet":{"type":2,"data":["e"],"nsp":"/"},"opts":{"rooms":["r"]},"extra":1}`, false, ""},
		{`{"packet":{"type":2,"data":["e"],"nsp":"/"}}`, false, ""},
	} {
		got, ok := broadcastTarget(c.data)
		if ok != c.ok || ok && fmt.Sprint(got) != c.want {
			t.Errorf("%s: %v %v, want %v %s", c.data, fmt.Sprint(got), ok, c.ok, c.want)
		}
	}
}

// Entries as Node writes them decode; malformed ones are refused, never
// a panic.
func TestDecodeStreamEntry(t *testing.T) {
	bin, _ := appendValue(nil, map[string]any{"packet": map[string]any{"type": 2, "data": []any{"b", []byte{1, 2}}, "nsp": "/"},
		"opts": map[string]any{"rooms": []any{"r"}, "except": []any{}, "flags": map[string]any{}}})
	for _, c := range []struct {
		name   string
		values map[string]any
		ok     bool
		kind   kind
	}{
		{"json broadcast", map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": `{"packet":{"type":2,"data":["e",1],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}}`}, true, kindBroadcast},
		{"binary broadcast", map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": base64.StdEncoding.EncodeToString(bin)}, true, kindBroadcast},
		{"sockets join", map[string]any{"uid": "u", "nsp": "/", "type": "4", "data": `{"opts":{"rooms":["a"],"except":[],"flags":{}},"rooms":["b"]}`}, true, kindSocketsJoin},
		{"heartbeat of 0.2.x", map[string]any{"uid": "u", "nsp": "/", "type": "2"}, true, kindIgnored},
		{"no type", map[string]any{"uid": "u", "nsp": "/", "data": "{}"}, false, 0},
		{"bad base64", map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": "!!"}, false, 0},
		{"bad json", map[string]any{"uid": "u", "nsp": "/", "type": "3", "data": `{"packet":`}, false, 0},
	} {
		e, err := decodeStreamEntry(redis.XMessage{ID: "1-1", Values: c.values})
		if (err == nil) != c.ok || c.ok && e.m.Kind != c.kind {
			t.Errorf("%s: kind %d err %v", c.name, e.m.Kind, err)
			continue
		}
		if c.ok && c.kind == kindBroadcast {
			if data, err := e.args(); err != nil || len(data) != 2 {
				t.Errorf("%s: args %v %v", c.name, data, err)
			}
		}
	}
}

// Sessions round-trip in Node's format (base64 of msgpack), frutosFrom
// included; a value Node wrote without it is read too.
func TestSessionValue(t *testing.T) {
	in := storedSession{sid: "s", pid: "p", rooms: []string{"s", "user:1"}, data: map[string]any{"sub": "1"},
		from: streamID{5, 2}, hasFrom: true}
	v, err := encodeSession(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeSession(v)
	if err != nil || fmt.Sprint(out) != fmt.Sprint(in) {
		t.Errorf("round trip: %+v %v", out, err)
	}
	node, _ := appendValue(nil, map[string]any{"sid": "s", "pid": "p", "rooms": []any{"s"}, "data": nil})
	out, err = decodeSession(base64.StdEncoding.EncodeToString(node))
	if err != nil || out.hasFrom || out.sid != "s" {
		t.Errorf("Node's value: %+v %v", out, err)
	}
	for _, bad := range []string{"", "!!", base64.StdEncoding.EncodeToString([]byte{0xc0})} {
		if _, err := decodeSession(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
