package redisadapter

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// The wire protocol of @socket.io/redis-adapter v8 (createAdapter) and
// @socket.io/redis-emitter v5, read from their sources (dist/index.js) and
// checked against the running packages in this package's tests.
//
//	broadcast   PUBLISH <key>#<nsp>#          msgpack [uid, packet, opts]
//	            PUBLISH <key>#<nsp>#<room>#   (exactly one room)
//	requests    PUBLISH <key>-request#<nsp>#  JSON (msgpack for BROADCAST)
//	responses   PUBLISH <key>-response#<nsp>#[<uid>#]  JSON (msgpack for BROADCAST_ACK)
//
// packet = {type: 2, data: [event, ...args], nsp}; opts = {rooms, except, flags}.
// A server's uid is random per namespace adapter; the emitter's is "emitter";
// a receiver skips only messages carrying its own uid.

// Request types of the classic Redis adapter.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// Socket.IO packet types that can travel in a broadcast.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
)

// EmitterUID is the uid the Node emitter (and ours) puts in its messages.
const EmitterUID = "emitter"

// channels are the Redis channel names of one namespace.
type channels struct {
	broadcast string // <key>#<nsp>#; a room is appended as <room>#
	pattern   string // broadcast + "*"
	request   string // <key>-request#<nsp>#
	response  string // <key>-response#<nsp>#
}

func channelsFor(key, nsp string) channels {
	b := key + "#" + nsp + "#"
	return channels{
		broadcast: b,
		pattern:   b + "*",
		request:   key + "-request#" + nsp + "#",
		response:  key + "-response#" + nsp + "#",
	}
}

// broadcastChannel is where a broadcast to rooms goes: the room's own channel
// when there is exactly one (receivers without the room skip it unread).
func (c channels) broadcastChannel(rooms []string) string {
	if len(rooms) == 1 {
		return c.broadcast + rooms[0] + "#"
	}
	return c.broadcast
}

// flags are the broadcast flags that cross the wire.
type flags struct {
	Volatile bool
	Compress *bool
	Local    bool
	Timeout  *time.Duration // broadcast with ack only
}

func (f flags) toMap() map[string]any {
	m := map[string]any{}
	if f.Volatile {
		m["volatile"] = true
	}
	if f.Compress != nil {
		m["compress"] = *f.Compress
	}
	if f.Local {
		m["local"] = true
	}
	if f.Timeout != nil {
		m["timeout"] = f.Timeout.Milliseconds()
	}
	return m
}

func flagsFrom(v any) flags {
	m, _ := v.(map[string]any)
	var f flags
	f.Volatile, _ = m["volatile"].(bool)
	f.Local, _ = m["local"].(bool)
	if c, ok := m["compress"].(bool); ok {
		f.Compress = &c
	}
	if ms, ok := number(m["timeout"]); ok && ms >= 0 {
		d := time.Duration(ms * float64(time.Millisecond))
		f.Timeout = &d
	}
	return f
}

// target selects sockets: in any of Rooms (all when empty), not in Except.
type target struct {
	Rooms  []string
	Except []string
	Flags  flags
}

// broadcastMessage is one message of a broadcast channel.
type broadcastMessage struct {
	UID    string
	Nsp    string
	Data   []any // [event, ...args]
	Target target
}

// encodeBroadcast writes [uid, {type, data, nsp}, {rooms, except, flags}]
// with the key order Node uses.
func encodeBroadcast(m broadcastMessage) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = appendArrayHeader(b, 3)
	b = appendString(b, m.UID)
	b = appendMapHeader(b, 3)
	b = appendString(b, "type")
	b = appendInt(b, packetEvent)
	b = appendString(b, "data")
	var err error
	if b, err = appendValue(b, m.Data); err != nil {
		return nil, err
	}
	b = appendString(b, "nsp")
	b = appendString(b, m.Nsp)
	return appendTarget(b, m.Target)
}

func appendTarget(b []byte, t target) ([]byte, error) {
	b = appendMapHeader(b, 3)
	b = appendString(b, "rooms")
	b = appendStrings(b, t.Rooms)
	b = appendString(b, "except")
	b = appendStrings(b, t.Except)
	b = appendString(b, "flags")
	return appendValue(b, t.Flags.toMap())
}

func appendStrings(b []byte, s []string) []byte {
	b = appendArrayHeader(b, len(s))
	for _, e := range s {
		b = appendString(b, e)
	}
	return b
}

// decodeBroadcast reads a broadcast message. A missing nsp means "/", as in Node.
func decodeBroadcast(payload []byte) (broadcastMessage, error) {
	v, err := decodeValue(payload)
	if err != nil {
		return broadcastMessage{}, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 3 {
		return broadcastMessage{}, errors.New("broadcast: not an array of 3")
	}
	uid, _ := arr[0].(string)
	packet, ok := arr[1].(map[string]any)
	if !ok {
		return broadcastMessage{}, errors.New("broadcast: packet is not a map")
	}
	m := broadcastMessage{UID: uid, Nsp: "/"}
	if nsp, ok := packet["nsp"].(string); ok {
		m.Nsp = nsp
	}
	if t, ok := number(packet["type"]); ok && t != packetEvent && t != packetBinaryEvent {
		return broadcastMessage{}, fmt.Errorf("broadcast: packet type %v is not an event", t)
	}
	if m.Data, ok = packet["data"].([]any); !ok || len(m.Data) == 0 {
		return broadcastMessage{}, errors.New("broadcast: packet data is not [event, ...args]")
	}
	m.Target = targetFrom(arr[2])
	return m, nil
}

func targetFrom(v any) target {
	m, _ := v.(map[string]any)
	return target{Rooms: stringList(m["rooms"]), Except: stringList(m["except"]), Flags: flagsFrom(m["flags"])}
}

// request is a message of the request or response channel, decoded from
// either encoding. Field names follow Node's.
type request struct {
	UID       string
	RequestID string
	Type      int
	Opts      map[string]any // selector {rooms, except, flags}
	Rooms     []string       // rooms to join/leave, the SOCKETS selector, or the ALL_ROOMS answer
	Sid       string         // legacy single-socket requests
	Room      string
	Close     bool
	Data      any // SERVER_SIDE_EMIT: the packet; its response: the ack value
	Packet    any // BROADCAST: the packet; BROADCAST_ACK: the ack value

	Sockets     []any   // SOCKETS and REMOTE_FETCH responses
	ClientCount *uint64 // BROADCAST_CLIENT_COUNT
}

// decodeRequest reads a request or response: JSON when the first byte is
// '{', msgpack otherwise (Node's rule).
func decodeRequest(payload []byte) (request, error) {
	var raw map[string]any
	if len(payload) > 0 && payload[0] == '{' {
		if err := json.Unmarshal(payload, &raw); err != nil {
			return request{}, err
		}
	} else {
		v, err := decodeValue(payload)
		if err != nil {
			return request{}, err
		}
		var ok bool
		if raw, ok = v.(map[string]any); !ok {
			return request{}, errors.New("request: not a map")
		}
	}
	t, ok := number(raw["type"])
	if !ok && raw["requestId"] == nil {
		return request{}, errors.New("request: no type")
	}
	r := request{Type: -1}
	if ok {
		r.Type = int(t)
	}
	r.UID, _ = raw["uid"].(string)
	r.RequestID = idString(raw["requestId"])
	r.Opts, _ = raw["opts"].(map[string]any)
	r.Rooms = stringList(raw["rooms"])
	r.Sid, _ = raw["sid"].(string)
	r.Room = keyStringOrEmpty(raw["room"])
	r.Close, _ = raw["close"].(bool)
	r.Data = raw["data"]
	r.Packet = raw["packet"]
	if s, ok := raw["sockets"].([]any); ok {
		r.Sockets = s
	}
	if n, ok := number(raw["clientCount"]); ok && n >= 0 {
		c := uint64(n)
		r.ClientCount = &c
	}
	return r, nil
}

// encodeBroadcastRequest is the msgpack request of broadcast-with-ack.
func encodeBroadcastRequest(uid, requestID, nsp string, data []any, t target) ([]byte, error) {
	b := make([]byte, 0, 160)
	b = appendMapHeader(b, 5)
	b = appendString(b, "uid")
	b = appendString(b, uid)
	b = appendString(b, "requestId")
	b = appendString(b, requestID)
	b = appendString(b, "type")
	b = appendInt(b, reqBroadcast)
	b = appendString(b, "packet")
	b = appendMapHeader(b, 3)
	b = appendString(b, "type")
	b = appendInt(b, packetEvent)
	b = appendString(b, "data")
	var err error
	if b, err = appendValue(b, data); err != nil {
		return nil, err
	}
	b = appendString(b, "nsp")
	b = appendString(b, nsp)
	b = appendString(b, "opts")
	return appendTarget(b, t)
}

// encodeBroadcastAck is the msgpack response carrying one client's ack.
func encodeBroadcastAck(requestID string, value any) ([]byte, error) {
	b := appendMapHeader(make([]byte, 0, 64), 3)
	b = appendString(b, "type")
	b = appendInt(b, reqBroadcastAck)
	b = appendString(b, "requestId")
	b = appendString(b, requestID)
	b = appendString(b, "packet")
	return appendValue(b, value)
}

// optsTarget reads the {rooms, except, flags} selector of a request.
func optsTarget(opts map[string]any) target {
	return targetFrom(opts)
}

func targetJSON(t target) map[string]any {
	return map[string]any{"rooms": nonNil(t.Rooms), "except": nonNil(t.Except)}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// number reads a JSON or msgpack number.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// stringList reads an array of room names; Node rooms may be numbers.
func stringList(v any) []string {
	arr, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if e != nil {
			out = append(out, keyString(e))
		}
	}
	return out
}

func keyStringOrEmpty(v any) string {
	if v == nil {
		return ""
	}
	return keyString(v)
}

func idString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		if x == math.Trunc(x) {
			return fmt.Sprintf("%.0f", x)
		}
	}
	return keyString(v)
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newID returns n random URL-safe characters, like Node's uid2(n).
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	for i := range b {
		b[i] = idAlphabet[b[i]&63]
	}
	return string(b)
}
