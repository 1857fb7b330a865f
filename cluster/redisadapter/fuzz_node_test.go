package redisadapter

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"
)

// Fuzz targets that write what Node writes, so the fuzzer explores the
// decoder with inputs of known meaning instead of bytes that are rejected
// early: msgpack as notepack.io (and msgpackr) encode it, with the
// extension types (timestamps, notepack's undefined, unknown ones), and
// the JSON requests and responses of @socket.io/redis-adapter.
//
//	go test -run '^$' -fuzz '^FuzzNodeMsgpack$' -fuzztime 60s -parallel 1 ./cluster/redisadapter/
//	go test -run '^$' -fuzz '^FuzzNodeJSONRequest$' -fuzztime 60s -parallel 1 ./cluster/redisadapter/

// FuzzNodeMsgpack reads the fuzz input as a recipe for a msgpack value,
// writes it in any of the encodings a Node encoder may choose (every
// length width, ext types), and checks that decodeValue gives the value the
// recipe describes, that it re-encodes to the same value, and that a
// broadcast carrying it as an argument decodes with it intact.
func FuzzNodeMsgpack(f *testing.F) {
	for _, s := range []string{
		"",
		"\x00",                             // nil
		"\x0c\x0d\x0e",                     // timestamps 32, 64, 96
		"\x0f",                             // notepack's undefined
		"\x10\x03\x05abc",                  // an unknown ext type
		"\x07\x03\x09\x0b\x0c\x0f",         // [timestamp, undefined, ...]
		"\x08\x02\x05\x02k1\x0f\x05\x02k2", // {k1: undefined, k2: ...}
		"\x02\xff\x03\x80\x04\x01",         // wide ints, floats
		"\x05\x02\xc3\x28\x06\x03\x00\x01\x02",
		"\x11\x00\x00\x00\x00\x00\x00\x00\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, recipe []byte) {
		g := &nodeGen{in: recipe}
		b, want := g.value(nil, 0)
		got, err := decodeValue(b)
		if err != nil {
			t.Fatalf("decode %x: %v", b, err)
		}
		if !sameValue(got, want) {
			t.Fatalf("decode %x:\n got %#v\nwant %#v", b, got, want)
		}
		enc, err := appendValue(nil, got)
		if err != nil {
			t.Fatalf("%#v does not encode: %v", got, err)
		}
		if again, err := decodeValue(enc); err != nil || !sameValue(again, want) {
			t.Fatalf("re-encoded %x decodes to %#v, %v; want %#v", enc, again, err, want)
		}

		// As Node's adapter publishes an event with it as the argument.
		msg := appendArrayHeader(nil, 3)
		msg = appendString(msg, "nodeuid")
		msg = appendMapHeader(msg, 3)
		msg = appendString(append(appendString(msg, "type"), packetEvent), "data")
		msg = append(appendString(appendArrayHeader(msg, 2), "ev"), b...)
		msg = appendString(appendString(msg, "nsp"), "/chat")
		msg = appendMapHeader(msg, 3)
		msg = appendStrings(appendString(msg, "rooms"), []string{"room"})
		msg = appendStrings(appendString(msg, "except"), []string{})
		msg = appendMapHeader(appendString(msg, "flags"), 0)
		m, err := decodeBroadcast(msg)
		if err != nil {
			t.Fatalf("broadcast %x: %v", msg, err)
		}
		if m.UID != "nodeuid" || m.Nsp != "/chat" || len(m.Data) != 2 || m.Data[0] != "ev" || !sameValue(m.Data[1], want) ||
			!sameStrings(m.Target.Rooms, []string{"room"}) {
			t.Fatalf("broadcast %x decoded as %#v", msg, m)
		}
	})
}

// nodeGen turns fuzz bytes into a msgpack encoding and the value it
// means; when the bytes run out it writes nil.
type nodeGen struct {
	in []byte
}

func (g *nodeGen) byte() byte {
	if len(g.in) == 0 {
		return 0
	}
	c := g.in[0]
	g.in = g.in[1:]
	return c
}

func (g *nodeGen) bytes(n int) []byte {
	n = min(n, len(g.in))
	p := g.in[:n]
	g.in = g.in[n:]
	return p
}

func (g *nodeGen) uint(size int) uint64 {
	var buf [8]byte
	copy(buf[8-size:], g.bytes(size))
	return binary.BigEndian.Uint64(buf[:])
}

// header writes a length header in a width the input picks: the fix form
// (fix|n) when there is one and n fits, else codes[i], followed by n in 1,
// 2 or 4 bytes (a width without a code, 0, or too small for n takes the
// next).
func (g *nodeGen) header(b []byte, n int, fix byte, fixMax int, codes [3]byte) []byte {
	w := int(g.byte() % 4) // 0: fix, 1, 2, 3: codes[w-1]
	if w == 0 && fix != 0 && n <= fixMax {
		return append(b, fix|byte(n))
	}
	w = max(w, 1)
	for w < 3 && (codes[w-1] == 0 || n > []int{math.MaxUint8, math.MaxUint16}[w-1]) {
		w++
	}
	return appendN(append(b, codes[w-1]), []int{1, 2, 4}[w-1], uint64(n))
}

func appendN(b []byte, size int, n uint64) []byte {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], n)
	return append(b, buf[8-size:]...)
}

const maxGenDepth = 8

func (g *nodeGen) value(b []byte, depth int) ([]byte, any) {
	op := g.byte()
	if depth >= maxGenDepth && op%18 >= 7 && op%18 <= 8 {
		op = 0 // no deeper containers
	}
	switch op % 18 {
	case 0:
		return append(b, 0xc0), nil
	case 1:
		if g.byte()%2 == 0 {
			return append(b, 0xc2), false
		}
		return append(b, 0xc3), true
	case 2: // unsigned, in any width
		size := []int{0, 1, 2, 4, 8}[g.byte()%5]
		if size == 0 {
			n := g.byte() & 0x7f
			return append(b, n), int64(n)
		}
		n := g.uint(size)
		b = appendN(append(b, map[int]byte{1: 0xcc, 2: 0xcd, 4: 0xce, 8: 0xcf}[size]), size, n)
		if n > math.MaxInt64 {
			return b, n
		}
		return b, int64(n)
	case 3: // signed, in any width
		size := []int{0, 1, 2, 4, 8}[g.byte()%5]
		switch size {
		case 0:
			n := g.byte() | 0xe0
			return append(b, n), int64(int8(n))
		case 1:
			n := g.uint(1)
			return appendN(append(b, 0xd0), 1, n), int64(int8(n))
		case 2:
			n := g.uint(2)
			return appendN(append(b, 0xd1), 2, n), int64(int16(n))
		case 4:
			n := g.uint(4)
			return appendN(append(b, 0xd2), 4, n), int64(int32(n))
		}
		n := g.uint(8)
		return appendN(append(b, 0xd3), 8, n), int64(n)
	case 4: // float32 or float64
		if g.byte()%2 == 0 {
			n := g.uint(4)
			return appendN(append(b, 0xca), 4, n), float64(math.Float32frombits(uint32(n)))
		}
		n := g.uint(8)
		return appendN(append(b, 0xcb), 8, n), math.Float64frombits(n)
	case 5: // str
		s := g.bytes(int(g.byte()))
		b = g.header(b, len(s), 0xa0, 31, [3]byte{0xd9, 0xda, 0xdb})
		return append(b, s...), string(s)
	case 6: // bin (a Buffer)
		p := g.bytes(int(g.byte()))
		b = g.header(b, len(p), 0, 0, [3]byte{0xc4, 0xc5, 0xc6})
		return append(b, p...), append([]byte{}, p...)
	case 7: // array
		n := int(g.byte() % 8)
		b = g.header(b, n, 0x90, 15, [3]byte{0, 0xdc, 0xdd})
		arr := make([]any, n)
		for i := range arr {
			b, arr[i] = g.value(b, depth+1)
		}
		return b, arr
	case 8: // map with string or integer keys; a repeated key: the last wins
		n := int(g.byte() % 8)
		b = g.header(b, n, 0x80, 15, [3]byte{0, 0xde, 0xdf})
		m := make(map[string]any, n)
		for range n {
			var key string
			if c := g.byte(); c%4 == 0 {
				b = append(b, c>>1)
				key = strconv.Itoa(int(c >> 1))
			} else {
				k := g.bytes(int(c % 8))
				b = append(append(b, 0xa0|byte(len(k))), k...)
				key = string(k)
			}
			var v any
			b, v = g.value(b, depth+1)
			m[key] = v
		}
		return b, m
	case 9: // timestamp 32: seconds
		sec := g.uint(4)
		return appendN(append(b, 0xd6, 0xff), 4, sec), time.Unix(int64(sec), 0).UTC()
	case 10: // timestamp 64: 30-bit nanoseconds, 34-bit seconds
		nsec, sec := g.uint(4)%1e9, g.uint(8)&0x3ffffffff
		return appendN(append(b, 0xd7, 0xff), 8, nsec<<34|sec), time.Unix(int64(sec), int64(nsec)).UTC()
	case 11: // timestamp 96: what notepack writes for dates before 1970
		nsec, sec := g.uint(4)%1e9, int64(g.uint(8))
		b = appendN(append(b, 0xc7, 12, 0xff), 4, nsec)
		return appendN(b, 8, uint64(sec)), time.Unix(sec, int64(nsec)).UTC()
	case 12: // notepack's undefined: fixext 1, type 0
		return append(b, 0xd4, 0x00, 0x00), nil
	case 13, 14: // another ext type, in a fixext: JavaScript has no value for it
		typ := g.byte()
		if typ == 0xff {
			typ = 0x7f
		}
		size := 1 << (g.byte() % 5)
		return append(append(b, 0xd4+byte(bitsOf(size)), typ), g.padded(size)...), nil
	case 15: // another ext type, in ext 8/16/32
		typ := g.byte()
		if typ == 0xff {
			typ = 0x7f
		}
		p := g.bytes(int(g.byte()))
		b = g.header(b, len(p), 0, 0, [3]byte{0xc7, 0xc8, 0xc9})
		return append(append(b, typ), p...), nil
	case 16: // a timestamp of a size the spec does not define: read as nothing
		p := g.bytes(int(g.byte() % 20))
		if n := len(p); n == 4 || n == 8 || n == 12 {
			p = p[:n-1]
		}
		return append(append(appendN(append(b, 0xc7), 1, uint64(len(p))), 0xff), p...), nil
	}
	s := g.bytes(int(g.byte() % 32)) // a short string, the common case
	return append(append(b, 0xa0|byte(len(s))), s...), string(s)
}

// padded takes n bytes of input, zero-filled when the input runs out.
func (g *nodeGen) padded(n int) []byte {
	p := make([]byte, n)
	copy(p, g.bytes(n))
	return p
}

// bitsOf is log2 of a fixext size (1, 2, 4, 8, 16).
func bitsOf(size int) int {
	n := 0
	for size > 1 {
		size >>= 1
		n++
	}
	return n
}

// FuzzNodeJSONRequest writes the JSON requests and responses of Node's
// classic adapter (JSON.stringify of its objects, numbers as JavaScript
// writes them) from fuzzed fields, and checks what the classic codec reads
// from them: the kind, and the uid, request id, rooms, selector, close
// flag and data that were written.
func FuzzNodeJSONRequest(f *testing.F) {
	f.Add(uint8(reqRemoteJoin), "abc123", "", "user:7", "x", true, []byte(`["ev",1]`))
	f.Add(uint8(reqRemoteFetch), "abc123", "r1", "", "", false, []byte(`null`))
	f.Add(uint8(reqServerSideEmit), "abc123", "r2", "", "", false, []byte(`["hello",{"a":[1.5,"ñ",null]}]`))
	f.Add(uint8(reqBroadcastClientCount), "", "r3", "", "", false, []byte(`3`))
	f.Add(uint8(reqSockets), "n", "r4", "room", "", false, []byte(`[]`))
	f.Add(uint8(reqAllRooms), "n", "12345678901234567890123", "", "", false, []byte(`{}`))
	f.Add(uint8(reqBroadcast), "n", "r5", "a", "b", true, []byte(`["ev",{"_placeholder":true,"num":0}]`))
	f.Add(uint8(100), "n", "r6", "", "", false, []byte(`[1e308,-0,0.1]`))
	f.Add(uint8(200), "", "r7", "a", "", false, []byte(`[{"id":"s","rooms":["a"],"data":{}}]`))
	c := newClassicCodec("socket.io", "/", "selfuid")
	f.Fuzz(func(t *testing.T, typ uint8, uid, requestID, room, except string, close bool, data []byte) {
		var value any
		if json.Unmarshal(data, &value) != nil {
			return
		}
		// What JSON.stringify would write: strings as valid UTF-8.
		uid, requestID, room, except = jsonString(uid), jsonString(requestID), jsonString(room), jsonString(except)
		opts := map[string]any{"rooms": []string{room}, "except": []string{except}, "flags": map[string]any{"volatile": close}}
		var obj map[string]any
		var channel string
		switch {
		case typ <= reqBroadcastAck:
			channel, obj = c.ch.request, map[string]any{"uid": uid, "type": typ, "requestId": requestID, "opts": opts,
				"rooms": []string{room}, "close": close, "data": value, "packet": map[string]any{"type": packetEvent, "data": value, "nsp": "/"}}
		case typ < 200: // a response, by shape
			channel, obj = c.ch.response, map[string]any{"requestId": requestID, "rooms": []string{room}}
		default:
			channel, obj = c.ch.response, map[string]any{"requestId": requestID, "sockets": value}
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		m, err := c.decode(channel, b)
		if err != nil {
			if (typ == reqServerSideEmit || typ == reqBroadcast) && !isEvent(value) {
				return // not [event, ...args]: refused, as it should be
			}
			if typ == reqBroadcast && requestID == "" {
				return
			}
			t.Fatalf("decode %s: %v", b, err)
		}
		checkNodeRequest(t, typ, m, b, uid, requestID, room, except, close, value)
	})
}

func checkNodeRequest(t *testing.T, typ uint8, m message, b []byte, uid, requestID, room, except string, close bool, value any) {
	t.Helper()
	fail := func(what string) { t.Fatalf("decode %s: %s: %#v", b, what, m) }
	if m.RequestID != requestID {
		fail("request id")
	}
	rooms := []string{room}
	switch typ {
	case reqSockets:
		if m.Kind != kindSockets || !sameStrings(m.Rooms, rooms) {
			fail("SOCKETS")
		}
	case reqAllRooms:
		if m.Kind != kindAllRooms {
			fail("ALL_ROOMS")
		}
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		want := map[uint8]kind{reqRemoteJoin: kindSocketsJoin, reqRemoteLeave: kindSocketsLeave, reqRemoteDisconnect: kindDisconnectSockets}[typ]
		if m.Kind != want || m.UID != uid || !sameStrings(m.Rooms, rooms) || m.Close != close || m.Legacy ||
			!sameStrings(m.Target.Rooms, rooms) || !sameStrings(m.Target.Except, []string{except}) || m.Target.Flags.Volatile != close {
			fail("remote join/leave/disconnect")
		}
	case reqRemoteFetch:
		if m.Kind != kindFetchSockets || m.UID != uid || !sameStrings(m.Target.Rooms, rooms) {
			fail("REMOTE_FETCH")
		}
	case reqServerSideEmit, reqBroadcast:
		want := kindServerSideEmit
		if typ == reqBroadcast {
			want = kindBroadcast
		}
		if m.Kind != want || m.UID != uid || !looseValue(any(m.Data), value) {
			fail("SERVER_SIDE_EMIT or BROADCAST")
		}
	case reqBroadcastClientCount, reqBroadcastAck:
		// requests a server never receives: Node sends them as responses
		if m.Kind != kindIgnored {
			fail("a response type on the request channel")
		}
	default:
		if typ <= reqBroadcastAck {
			return
		}
		if typ < 200 {
			if m.Kind != kindAllRoomsResponse || !sameStrings(m.Rooms, rooms) {
				fail("ALL_ROOMS response")
			}
			return
		}
		if s, ok := value.([]any); ok {
			if m.Kind != kindFetchSocketsResponse || !looseValue(any(m.Sockets), any(s)) {
				fail("REMOTE_FETCH response")
			}
		} else if m.Kind != kindLegacyDone {
			fail("a response without sockets")
		}
	}
}

// jsonString is s as it comes back from JSON: invalid UTF-8 replaced.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func isEvent(v any) bool {
	arr, ok := v.([]any)
	return ok && len(arr) > 0
}
