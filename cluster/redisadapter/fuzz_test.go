package redisadapter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Fuzz targets for everything that decodes bytes from Redis, which any
// client of the Redis server can publish. The properties: no panic, no
// unbounded allocation (the decoder checks lengths against the input), and
// what decodes re-encodes to something that decodes the same.
//
// Seeds: the hand-made ones below, and testdata/fuzz/<target>/node-*,
// messages that real Node servers and emitters sent to a Go server in the
// interop tests (captured with FRUTOS_WRITE_FUZZ_SEEDS=1, see seeds_test.go).
//
//	go test -run '^$' -fuzz '^FuzzDecodeMsgpack$' -fuzztime 60s ./cluster/redisadapter/

func handSeeds(f *testing.F) {
	f.Helper()
	m := message{
		Kind: kindBroadcast, UID: "abc123", Nsp: "/",
		Data:   []any{"ev", 1.5, int64(-3), "ñ", []byte{0, 1}, map[string]any{"k": []any{nil, true}}, time.Unix(1700000000, 5).UTC()},
		Target: target{Rooms: []string{"user:7"}, Except: []string{"x"}, Flags: flags{Volatile: true}},
	}
	if b, err := encodeBroadcast(m); err == nil {
		f.Add(b)
	}
	m.RequestID = "r1"
	if b, err := encodeBroadcastRequest(m); err == nil {
		f.Add(b)
	}
	if b, err := encodeBroadcastAck("r1", map[string]any{"ok": []byte("x")}); err == nil {
		f.Add(b)
	}
	sc := newShardedCodec("socket.io", "/", "0123456789abcdef", SubscriptionDynamic)
	for _, k := range []message{
		m,
		{Kind: kindFetchSocketsResponse, RequestID: "r", To: "u", Sockets: []any{map[string]any{"id": "s", "rooms": []any{"a"}}}},
		{Kind: kindServerSideEmit, Data: []any{"e", []byte{1}}},
		{Kind: kindBroadcastClientCount, RequestID: "r", To: "u", ClientCount: 3},
	} {
		if out, err := sc.encode(k); err == nil {
			f.Add(out.payload)
		}
	}
	for _, s := range []string{
		`{"uid":"emitter","type":6,"data":["hello",1]}`,
		`{"requestId":"r","sockets":[{"id":"s","handshake":{"auth":{}},"rooms":["a"],"data":null}]}`,
		`{"type":3,"data":{"packet":{"type":2,"data":["ev"],"nsp":"/"},"opts":{"rooms":[],"except":[],"flags":{}}},"uid":"u","nsp":"/"}`,
		`{"type":2,"uid":"u","nsp":"/"}`,
		"\x93\xa3uid\x83\xa4type\x02\xa4data\x92\xa2ev\xd4\x00\x00\xa3nsp\xa1/\x80", // notepack's undefined
		"\xd6\xff\x00\x00\x00\x01",
		"\xc7\x0c\xff\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\xff",
		"\xdd\xff\xff\xff\xff",
	} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeMsgpack(f *testing.F) {
	handSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeValue(b)
		if err != nil {
			return
		}
		enc, err := appendValue(nil, v)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		v2, err := decodeValue(enc)
		if err != nil {
			t.Fatalf("re-encoded %x does not decode: %v", enc, err)
		}
		if !sameValue(v, v2) {
			t.Fatalf("round trip changed the value:\n %#v\n %#v", v, v2)
		}
	})
}

func FuzzDecodeBroadcast(f *testing.F) {
	handSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m1, err := decodeBroadcast(b)
		if err != nil {
			return
		}
		m2 := reencode(t, m1, encodeBroadcast, decodeBroadcast)
		m3 := reencode(t, m2, encodeBroadcast, decodeBroadcast)
		if m1.UID != m2.UID || m1.Nsp != m2.Nsp || !sameValue(m1.Data, m2.Data) ||
			!sameStrings(m1.Target.Rooms, m2.Target.Rooms) || !sameStrings(m1.Target.Except, m2.Target.Except) {
			t.Fatalf("round trip changed the broadcast:\n %#v\n %#v", m1, m2)
		}
		if !sameValue(m2.Target.Flags.toMap(), m3.Target.Flags.toMap()) {
			t.Fatalf("flags unstable: %v then %v", m2.Target.Flags.toMap(), m3.Target.Flags.toMap())
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	handSeeds(f)
	c := newClassicCodec("socket.io", "/", "selfuid")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			return
		}
		_, _ = r.asRequest()
		_ = r.asResponse()
		for _, ch := range []string{c.ch.request, c.ch.response, c.ch.response + "selfuid#"} {
			m, err := c.decode(ch, b)
			if err != nil || m.Kind == kindIgnored {
				continue
			}
			m.To = "peer"
			out, err := c.encode(m)
			if err != nil {
				continue // kinds this adapter never sends; values JSON cannot carry
			}
			m2, err := c.decode(out.channel, out.payload)
			if err != nil {
				t.Fatalf("re-encoded %q on %s does not decode: %v", out.payload, out.channel, err)
			}
			if m2.Kind != m.Kind || (carriesID(m.Kind) && !looseValue(m2.RequestID, m.RequestID)) {
				t.Fatalf("round trip changed kind %d/%q into %d/%q", m.Kind, m.RequestID, m2.Kind, m2.RequestID)
			}
		}
	})
}

func FuzzDecodeClusterMessage(f *testing.F) {
	handSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeClusterMessage(b)
		if err != nil || m.Kind == kindIgnored {
			return
		}
		c := newShardedCodec("socket.io", m.Nsp, m.UID, SubscriptionDynamic)
		m.To = "peer"
		out, err := c.encode(m)
		if err != nil {
			t.Fatalf("decoded message of kind %d does not encode: %v", m.Kind, err)
		}
		m2, err := decodeClusterMessage(out.payload)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", out.payload, err)
		}
		// JSON keeps numbers as JavaScript does (no integers) and strings as
		// valid UTF-8: compare loosely.
		if m2.Kind != m.Kind || !looseValue(m2.RequestID, m.RequestID) || !looseValue(m2.UID, m.UID) || !looseValue(m2.Nsp, m.Nsp) ||
			!looseValue(m.Data, m2.Data) || !looseValue(m.Value, m2.Value) || !looseValue(m.Sockets, m2.Sockets) ||
			!sameStrings(m.Rooms, m2.Rooms) || m.ClientCount != m2.ClientCount {
			t.Fatalf("round trip changed the message:\n %#v\n %#v", m, m2)
		}
	})
}

// carriesID: the kinds whose request id the protocol keeps (Node sends
// none with remote join/leave/disconnect; their legacy single-socket form,
// which has one, is never sent by this adapter).
func carriesID(k kind) bool {
	switch k {
	case kindSocketsJoin, kindSocketsLeave, kindDisconnectSockets:
		return false
	}
	return true
}

func reencode(t *testing.T, m message, enc func(message) ([]byte, error), dec func([]byte) (message, error)) message {
	t.Helper()
	b, err := enc(m)
	if err != nil {
		t.Fatalf("decoded %#v does not encode: %v", m, err)
	}
	m2, err := dec(b)
	if err != nil {
		t.Fatalf("re-encoded %x does not decode: %v", b, err)
	}
	return m2
}

// sameValue compares decoded trees: NaN equals NaN, times compare as
// instants, numbers by value and kind (integer or not).
func sameValue(a, b any) bool { return compareValues(a, b, false) }

// looseValue is sameValue across a JSON trip: integers may come back as
// floats, invalid UTF-8 as replacement characters, []any(nil) as [], and
// times as their RFC 3339 text (as a JavaScript Date does).
func looseValue(a, b any) bool { return compareValues(a, b, true) }

func compareValues(a, b any, loose bool) bool {
	// An argument decodeBroadcast transcoded is compared as a client reads
	// it: across a JSON trip.
	if v, ok := fromJSON(a); ok {
		a, loose = v, true
	}
	if v, ok := fromJSON(b); ok {
		b, loose = v, true
	}
	if loose {
		a, b = looseForm(a), looseForm(b)
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !compareValues(x[i], y[i], loose) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return false
		}
		if loose {
			x, y = looseKeys(x), looseKeys(y)
		}
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !compareValues(v, w, loose) {
				return false
			}
		}
		return true
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		if y, ok := b.(float64); ok && math.IsNaN(x) && math.IsNaN(y) {
			return true
		}
	}
	if fa, ok := number(a); ok {
		fb, ok := number(b)
		return ok && (fa == fb || math.IsNaN(fa) && math.IsNaN(fb)) && (loose || sameIntness(a, b))
	}
	return a == b
}

// fromJSON decodes a json.RawMessage as a client does.
func fromJSON(v any) (any, bool) {
	r, ok := v.(json.RawMessage)
	if !ok {
		return v, false
	}
	var out any
	if err := json.Unmarshal(r, &out); err != nil {
		return fmt.Sprintf("invalid JSON %q", r), true
	}
	return out, true
}

func looseForm(v any) any {
	switch x := v.(type) {
	case string:
		return string([]rune(x))
	case time.Time:
		return x.Format(time.RFC3339Nano)
	case []any:
		if x == nil {
			return []any{}
		}
	}
	return v
}

// looseKeys merges keys that JSON makes equal (invalid UTF-8); the last
// one wins, as in a JSON object with duplicate keys.
func looseKeys(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[string([]rune(k))] = v
	}
	return out
}

// sameIntness: an integer must not come back as a float or the reverse.
func sameIntness(a, b any) bool {
	_, fa := a.(float64)
	_, fb := b.(float64)
	return fa == fb
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A stream entry's data field (JSON or base64 msgpack), whatever Redis
// holds: decoding never panics; a broadcast read by the fast path (its
// selector only) decodes to the same selector as the full decode, and
// its arguments decode or fail cleanly; a session value never panics.
func FuzzDecodeStreamEntry(f *testing.F) {
	for _, s := range []string{
		`{"packet":{"type":2,"data":["e",1],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}}`,
		`{"opts":{"except":["x"],"flags":{"volatile":true},"rooms":[]},"packet":{"data":["e"],"nsp":"/","type":2}}`,
		`{"packet":{"type":2,"data":["e",{"opts":{"rooms":["evil"]}}],"nsp":"/"},"opts":{"rooms":["r"],"except":[],"flags":{}}}`,
		`{"opts":{"rooms":["a"],"except":[],"flags":{}},"rooms":["b"]}`,
		"hKZwYWNrZXSDpHR5cGUCpGRhdGGSoWLEAgECo25zcKEvpG9wdHODpXJvb21zkaFypmV4Y2VwdJClZmxhZ3OA",
	} {
		f.Add("3", s)
	}
	f.Add("4", `{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["x"]}`)
	f.Add("2", "")
	f.Fuzz(func(t *testing.T, typ, data string) {
		e, err := decodeStreamEntry(redis.XMessage{ID: "1-1", Values: map[string]any{"uid": "u", "nsp": "/", "type": typ, "data": data}})
		if err != nil || e.m.Kind != kindBroadcast {
			return
		}
		if _, ok := broadcastTarget(data); ok {
			var b jsonBroadcast
			if json.Unmarshal([]byte(data), &b) == nil && b.RequestID == nil && !sameTarget(b.Opts.target(), e.m.Target) {
				t.Fatalf("fast selector %+v, full decode %+v", e.m.Target, b.Opts.target())
			}
		}
		_, _ = e.args()
		_, _ = decodeSession(data)
	})
}

func sameTarget(a, b target) bool {
	return sameStrings(a.Rooms, b.Rooms) && sameStrings(a.Except, b.Except) && a.Flags.Volatile == b.Flags.Volatile
}
