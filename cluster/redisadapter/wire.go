package redisadapter

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"time"
)

// What both protocols share: the broadcast selector and its flags, the
// event packet, uids, and tolerant readers for values decoded from JSON or
// msgpack (numbers may be float64, int64 or uint64; rooms may be numbers).

// Socket.IO packet types that can travel in a broadcast.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
)

// EmitterUID is the uid the Node emitter (and ours) puts in its messages.
const EmitterUID = "emitter"

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
	if ms, ok := number(m["timeout"]); ok && ms >= 0 && ms < float64(math.MaxInt64/time.Millisecond) {
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

// targetFrom reads a {rooms, except, flags} selector.
func targetFrom(v any) target {
	m, _ := v.(map[string]any)
	return target{Rooms: stringList(m["rooms"]), Except: stringList(m["except"]), Flags: flagsFrom(m["flags"])}
}

// targetMap is a selector as both protocols write it.
func targetMap(t target) map[string]any {
	return map[string]any{"rooms": nonNil(t.Rooms), "except": nonNil(t.Except), "flags": t.Flags.toMap()}
}

// eventPacket is the Socket.IO packet a broadcast carries. Node publishes
// it before its encoder turns binary events into BINARY_EVENT, so it is
// always an EVENT with the bytes inline.
func eventPacket(nsp string, data []any) map[string]any {
	return map[string]any{"type": packetEvent, "data": data, "nsp": nsp}
}

// eventData reads the data of an event packet: [event, ...args].
func eventData(v any) ([]any, error) {
	p, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("packet is not a map")
	}
	if t, ok := number(p["type"]); ok && t != packetEvent && t != packetBinaryEvent {
		return nil, fmt.Errorf("packet type %v is not an event", t)
	}
	data, ok := p["data"].([]any)
	if !ok || len(data) == 0 {
		return nil, fmt.Errorf("packet data is not [event, ...args]")
	}
	return data, nil
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
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			return fmt.Sprintf("%.0f", x)
		}
	}
	return keyString(v)
}

// hasBinary reports whether v holds bytes anywhere, as Node's hasBinary
// does: the sharded protocol then switches from JSON to msgpack. Values
// of other types (structs) are JSON-encoded by both encoders, so their
// bytes never stay binary and do not count.
func hasBinary(v any) bool {
	switch x := v.(type) {
	case nil, string, bool, float64, int, int64:
		return false
	case []byte:
		return true
	case interface{ Bytes() []byte }:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
		return false
	case map[string]any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
		return false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return true
		}
		for i := range rv.Len() {
			if hasBinary(rv.Index(i).Interface()) {
				return true
			}
		}
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String || rv.Type().Implements(jsonMarshalerType) {
			return false
		}
		it := rv.MapRange()
		for it.Next() {
			if hasBinary(it.Value().Interface()) {
				return true
			}
		}
	case reflect.Pointer:
		if !rv.IsNil() && rv.Elem().Kind() != reflect.Struct {
			return hasBinary(rv.Elem().Interface())
		}
	}
	return false
}

// jsLength is the length JavaScript gives a string (UTF-16 code units).
func jsLength(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// looksLikeASocketId is Node's test (sharded adapter) for a room that is a
// socket's own: 20 characters, the length of Node's socket ids. Broadcasts
// to such a room go on the namespace channel in dynamic mode.
func looksLikeASocketId(room string) bool { return jsLength(room) == 20 }

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

// newHexID returns 2n hex digits, like Node's randomBytes(n).toString("hex")
// (the ClusterAdapter's uids and request ids).
func newHexID(n int) string {
	const hex = "0123456789abcdef"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	out := make([]byte, 2*n)
	for i, c := range b {
		out[2*i], out[2*i+1] = hex[c>>4], hex[c&15]
	}
	return string(out)
}
