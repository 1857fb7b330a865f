package redisadapter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/redis/go-redis/v9"
)

// The streams protocol: @socket.io/redis-streams-adapter 0.3.x
// (lib/adapter.ts, lib/util.ts), which speaks socket.io-adapter's
// ClusterAdapter messages (the same types as the sharded protocol,
// codec_sharded.go) over one Redis stream plus Pub/Sub:
//
//	broadcasts, socketsJoin,    XADD <stream> MAXLEN ~ <maxLen> * uid <uid> nsp <nsp> type <n> data <d>
//	socketsLeave, disconnect
//	broadcasts with ack,        PUBLISH <prefix>#<nsp>#          msgpack({uid, nsp, type, data})
//	fetchSockets, serverSideEmit
//	responses                   PUBLISH <prefix>#<nsp>#<uid>#    msgpack({uid, nsp, type, data}), uid of the requester
//
// In a stream entry, type is the decimal message type ("3"), and data is
// JSON.stringify(data), or, when the message is of a type that may carry
// binary (BROADCAST, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT and its
// response, BROADCAST_ACK) and its data does, the base64 of its msgpack;
// a reader tells them apart by the first character ("{": JSON). Messages
// without data (heartbeats of 0.2.x) have no data field. Entries are read
// with XREAD BLOCK from the last id read ("$" at start), so a server that
// loses Redis resumes where it was. The entry id is the recovery offset of
// a broadcast: it is appended to the event's arguments, and a session is
// restored by reading the stream after it (XRANGE).
//
// The stream is <streamName> ("socket.io"), or with streamCount > 1
// <streamName>-<i> where i = hashCode(nsp) % streamCount (Java's
// String.hashCode on UTF-16 units, as a signed 32-bit int, so i may be
// negative: "socket.io--1"). Pub/Sub uses <channelPrefix> ("socket.io");
// useShardedPubSub selects SPUBLISH/SSUBSCRIBE. Servers SUBSCRIBE their
// namespace channel and their own response channel; serverCount is PUBSUB
// NUMSUB (SHARDNUMSUB) of the namespace channel. uids and request ids are
// 16 hex digits. 0.3.x sends no heartbeats (0.2.x put them in the stream;
// they are read and ignored).
//
// Sessions (connection state recovery): SET <sessionKeyPrefix><pid>
// base64(msgpack({sid, pid, rooms, data})) PX <maxDisconnectionDuration>
// ("sio:session:"), read back with GET and DEL in a MULTI. See
// streams_sessions.go for what this package adds.

// StreamOptions are the settings of the streams protocol, Node's
// createAdapter options of @socket.io/redis-streams-adapter. Every server
// and emitter of a namespace must agree on Name, Count and, for recovery,
// SessionPrefix. The zero value is Node's defaults.
type StreamOptions struct {
	// Name is the stream (streamName), "socket.io" by default; with Count
	// > 1 the prefix of the streams.
	Name string
	// Count spreads namespaces over that many streams (streamCount, 1):
	// each namespace stays on one stream, so its messages keep their order.
	Count int
	// MaxLen bounds the stream (maxLen, 10,000): XADD trims it with MAXLEN
	// ~. A session whose offset was trimmed away cannot be restored.
	MaxLen int64
	// ReadCount is how many entries one XREAD returns at most (readCount:
	// 100 in Node; 1,000 here by default).
	ReadCount int64
	// Block is how long one XREAD waits for entries (blockTimeInMs, 5s).
	Block time.Duration
	// SessionPrefix starts the keys of stored sessions (sessionKeyPrefix,
	// "sio:session:").
	SessionPrefix string
	// SessionRefresh is how often the sessions of connected sockets are
	// written again (frutos only; 15s): a client idle for longer than that
	// is restored even once Redis trimmed its offset (streams_sessions.go).
	SessionRefresh time.Duration
}

func (o *StreamOptions) withDefaults() {
	if o.Name == "" {
		o.Name = "socket.io"
	}
	if o.Count < 1 {
		o.Count = 1
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 10_000
	}
	if o.ReadCount <= 0 {
		o.ReadCount = 1000
	}
	if o.Block <= 0 {
		o.Block = 5 * time.Second
	}
	if o.SessionPrefix == "" {
		o.SessionPrefix = "sio:session:"
	}
	if o.SessionRefresh <= 0 {
		o.SessionRefresh = 15 * time.Second
	}
}

// streamFor is the stream of a namespace (Node's computeStreamName).
func (o StreamOptions) streamFor(nsp string) string {
	if o.Count <= 1 {
		return o.Name
	}
	return o.Name + "-" + strconv.Itoa(int(jsHashCode(nsp)%int32(o.Count)))
}

// jsHashCode is the adapter's hashCode: hash = hash*31 + charCode, kept
// to a signed 32-bit integer, over UTF-16 code units.
func jsHashCode(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = h*31 + int32(u)
	}
	return h
}

// streamID is a stream entry id, <milliseconds>-<sequence>.
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return streamID{}, false
	}
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return streamID{}, false
	}
	return streamID{ms, seq}, true
}

func (id streamID) String() string {
	return strconv.FormatUint(id.ms, 10) + "-" + strconv.FormatUint(id.seq, 10)
}

func (id streamID) less(o streamID) bool {
	return id.ms < o.ms || id.ms == o.ms && id.seq < o.seq
}

func (id streamID) isZero() bool { return id == streamID{} }

// prev is the id just before id (for inclusive XRANGE ends; Redis before
// 6.2 has no exclusive ranges, and Node's adapter avoids them too).
func (id streamID) prev() streamID {
	switch {
	case id.seq > 0:
		return streamID{id.ms, id.seq - 1}
	case id.ms > 0:
		return streamID{id.ms - 1, ^uint64(0)}
	}
	return id
}

// streamsCodec is the Pub/Sub half of the streams protocol for one
// namespace; the stream half is encodeStreamEntry and decodeStreamEntry.
type streamsCodec struct {
	nsp      string
	uid      string
	mode     subMode // subChannel, or subShard with useShardedPubSub
	stream   string
	maxLen   int64
	channel  string // <prefix>#<nsp>#
	response string // <prefix>#<nsp>#<uid>#
}

func newStreamsCodec(prefix, nsp, uid string, sharded bool, so StreamOptions) *streamsCodec {
	ch := prefix + "#" + nsp + "#"
	mode := subChannel
	if sharded {
		mode = subShard
	}
	return &streamsCodec{nsp: nsp, uid: uid, mode: mode, stream: so.streamFor(nsp), maxLen: so.MaxLen,
		channel: ch, response: ch + uid + "#"}
}

func (c *streamsCodec) subscriptions() []subscription {
	return []subscription{{c.mode, c.channel}, {c.mode, c.response}}
}

func (c *streamsCodec) roomChannels() bool { return false }
func (c *streamsCodec) roomSubscription(string, bool) (subscription, bool) {
	return subscription{}, false
}
func (c *streamsCodec) roomOf(string) (string, bool) { return "", false }
func (c *streamsCodec) countChannel() string         { return c.channel }

// ephemeral reports whether a message goes through Pub/Sub rather than
// the stream (Node's isEphemeral, plus the responses).
func ephemeral(m message) bool {
	switch m.Kind {
	case kindBroadcast:
		return m.RequestID != ""
	case kindFetchSockets, kindServerSideEmit:
		return true
	}
	return m.Kind.isResponse()
}

func (c *streamsCodec) encode(m message) (outgoing, error) {
	typ, data, err := clusterData(m)
	if err != nil {
		return outgoing{}, err
	}
	if !ephemeral(m) {
		fields, err := streamFields(m.UID, m.Nsp, typ, data)
		return outgoing{stream: c.stream, maxLen: c.maxLen, fields: fields}, err
	}
	channel := c.channel
	if m.Kind.isResponse() {
		if m.To == "" {
			return outgoing{}, errors.New("streams protocol: response without a requester")
		}
		channel = c.channel + m.To + "#"
	}
	// @msgpack/msgpack's encode of the whole message, whatever it holds.
	b, err := appendValue(nil, map[string]any{"type": typ, "data": data, "uid": m.UID, "nsp": m.Nsp})
	return outgoing{channel: channel, payload: b}, err
}

func (c *streamsCodec) decode(_ string, payload []byte) (message, error) {
	return decodeClusterMessage(payload)
}

// clusterData is a message as a ClusterAdapter type and data object.
func clusterData(m message) (int, map[string]any, error) {
	withID := func(d map[string]any) map[string]any {
		if m.RequestID != "" {
			d["requestId"] = m.RequestID
		}
		return d
	}
	switch m.Kind {
	case kindBroadcast:
		return clusterBroadcast, withID(map[string]any{"packet": eventPacket(m.Nsp, m.Data), "opts": targetMap(m.Target)}), nil
	case kindSocketsJoin:
		return clusterSocketsJoin, map[string]any{"opts": targetMap(m.Target), "rooms": nonNil(m.Rooms)}, nil
	case kindSocketsLeave:
		return clusterSocketsLeave, map[string]any{"opts": targetMap(m.Target), "rooms": nonNil(m.Rooms)}, nil
	case kindDisconnectSockets:
		return clusterDisconnectSockets, map[string]any{"opts": targetMap(m.Target), "close": m.Close}, nil
	case kindFetchSockets:
		return clusterFetchSockets, withID(map[string]any{"opts": targetMap(m.Target)}), nil
	case kindFetchSocketsResponse:
		return clusterFetchSocketsResponse, withID(map[string]any{"sockets": nonNilAny(m.Sockets)}), nil
	case kindServerSideEmit:
		return clusterServerSideEmit, withID(map[string]any{"packet": m.Data}), nil
	case kindServerSideEmitResponse:
		return clusterServerSideEmitResponse, withID(map[string]any{"packet": m.Value}), nil
	case kindBroadcastClientCount:
		return clusterBroadcastClientCount, withID(map[string]any{"clientCount": m.ClientCount}), nil
	case kindBroadcastAck:
		return clusterBroadcastAck, withID(map[string]any{"packet": m.Value}), nil
	}
	return 0, nil, fmt.Errorf("streams protocol: cannot send message kind %d", m.Kind)
}

// streamFields are the XADD fields of a message, in Node's order.
func streamFields(uid, nsp string, typ int, data map[string]any) ([]any, error) {
	var encoded string
	if mayContainBinary(typ) && hasBinary(data) {
		b, err := appendValue(nil, data)
		if err != nil {
			return nil, err
		}
		encoded = base64.StdEncoding.EncodeToString(b)
	} else {
		b, err := marshalJSON(data)
		if err != nil {
			// NaN or an infinity, which JSON cannot carry: msgpack can.
			if b, err = appendValue(nil, data); err != nil {
				return nil, err
			}
			encoded = base64.StdEncoding.EncodeToString(b)
		} else {
			encoded = string(b)
		}
	}
	return []any{"uid", uid, "nsp", nsp, "type", strconv.Itoa(typ), "data", encoded}, nil
}

// xaddArgs is the XADD of a stream entry (Node's: MAXLEN ~, id *).
func xaddArgs(stream string, maxLen int64, fields []any) *redis.XAddArgs {
	return &redis.XAddArgs{Stream: stream, MaxLen: maxLen, Approx: true, ID: "*", Values: fields}
}

// streamEntry is a decoded stream entry. A plain broadcast keeps its
// packet undecoded (its data field as Redis gave it) until a local socket
// or a restored session needs it: every server reads every entry, and
// most are for clients of other servers, whose payloads (up to
// max_payload) are never even scanned here.
type streamEntry struct {
	id    streamID
	idStr string
	m     message // Data is nil for a broadcast until args() decodes it
	raw   string  // the data field of a broadcast not decoded yet
	cost  int     // its weight in the cache, when it was added
}

// size is what the entry weighs in the cache.
func (e *streamEntry) size() int { return len(e.raw) + 64 + 16*len(e.m.Data) }

// args returns the broadcast's [event, ...args], decoding them once.
func (e *streamEntry) args() ([]any, error) {
	if e.m.Data != nil || e.raw == "" {
		if e.m.Data == nil {
			return nil, errors.New("broadcast without arguments")
		}
		return e.m.Data, nil
	}
	var b jsonBroadcast
	if err := json.Unmarshal([]byte(e.raw), &b); err != nil {
		return nil, fmt.Errorf("stream entry %s: %w", e.idStr, err)
	}
	if t, ok := number(b.Packet.Type); ok && t != packetEvent && t != packetBinaryEvent {
		return nil, fmt.Errorf("stream entry %s: packet type %v is not an event", e.idStr, t)
	}
	d := json.NewDecoder(bytes.NewReader(b.Packet.Data))
	d.UseNumber()
	var data []any
	if err := d.Decode(&data); err != nil || len(data) == 0 {
		return nil, fmt.Errorf("stream entry %s: packet data is not [event, ...args]", e.idStr)
	}
	e.m.Data, e.raw = data, ""
	return data, nil
}

// jsonBroadcast is a broadcast's data as JSON, its arguments left raw.
type jsonBroadcast struct {
	RequestID any `json:"requestId"`
	Packet    struct {
		Type any             `json:"type"`
		Data json.RawMessage `json:"data"`
	} `json:"packet"`
	Opts jsonOpts `json:"opts"`
}

type jsonOpts struct {
	Rooms  []any          `json:"rooms"`
	Except []any          `json:"except"`
	Flags  map[string]any `json:"flags"`
}

func (o jsonOpts) target() target {
	return target{Rooms: stringList(o.Rooms), Except: stringList(o.Except), Flags: flagsFrom(o.Flags)}
}

// broadcastTarget reads the selector of a broadcast's JSON data without
// scanning its packet: opts is the last key in Node's order
// ({packet, opts}) and the first in ours (sorted keys). A quote inside a
// JSON string is escaped, so `,"opts":` cannot come from a room name; it
// may come from the payload, hence the last one, and the check that the
// object ends right after it. Anything else (a broadcast with ack, keys
// in another order) takes the full decode.
func broadcastTarget(data string) (target, bool) {
	const first, last = `{"opts":`, `,"opts":`
	var rest string
	switch {
	case strings.Contains(data, `"requestId"`):
		return target{}, false
	case strings.HasPrefix(data, first):
		rest = data[len(first):]
	default:
		i := strings.LastIndex(data, last)
		if i < 0 {
			return target{}, false
		}
		rest = data[i+len(last):]
	}
	t, n, ok := scanOpts(rest)
	if !ok { // an unusual selector: the JSON decoder reads it
		d := json.NewDecoder(strings.NewReader(rest))
		var o jsonOpts
		if err := d.Decode(&o); err != nil {
			return target{}, false
		}
		t, n = o.target(), int(d.InputOffset())
	}
	after := rest[n:]
	if after != "}" && !strings.HasPrefix(after, `,"packet":`) {
		return target{}, false
	}
	return t, true
}

// scanOpts reads a selector as JSON.stringify and this package write it,
// {"rooms":[...],"except":[...],"flags":{...}} in any key order, at the
// start of s, and the length it takes: every server reads every entry, so
// this runs for each, and is much cheaper than the JSON decoder. It gives
// up (false) on anything else: whitespace, escapes, rooms that are not
// strings, nested flags.
func scanOpts(s string) (t target, n int, ok bool) {
	i := 0
	next := func(c byte) bool {
		if i < len(s) && s[i] == c {
			i++
			return true
		}
		return false
	}
	str := func() (string, bool) {
		if !next('"') {
			return "", false
		}
		j := strings.IndexAny(s[i:], `"\`)
		if j < 0 || s[i+j] != '"' {
			return "", false // an escape: the decoder knows them
		}
		v := s[i : i+j]
		i += j + 1
		return v, true
	}
	list := func() ([]string, bool) {
		if !next('[') {
			return nil, false
		}
		out := []string{}
		if next(']') {
			return out, true
		}
		for {
			v, ok := str()
			if !ok {
				return nil, false
			}
			out = append(out, v)
			if next(']') {
				return out, true
			}
			if !next(',') {
				return nil, false
			}
		}
	}
	if !next('{') {
		return t, 0, false
	}
	for seen := 0; ; seen++ {
		key, ok := str()
		if !ok || !next(':') || seen > 2 {
			return t, 0, false
		}
		switch key {
		case "rooms":
			if t.Rooms, ok = list(); !ok {
				return t, 0, false
			}
		case "except":
			if t.Except, ok = list(); !ok {
				return t, 0, false
			}
		case "flags":
			k := strings.IndexByte(s[i:], '}')
			if i >= len(s) || s[i] != '{' || k < 1 || strings.ContainsAny(s[i+1:i+k], "{[") {
				return t, 0, false
			}
			if k > 1 {
				var f map[string]any
				if json.Unmarshal([]byte(s[i:i+k+1]), &f) != nil {
					return t, 0, false
				}
				t.Flags = flagsFrom(f)
			}
			i += k + 1
		default:
			return t, 0, false
		}
		if next('}') {
			return t, i, true
		}
		if !next(',') {
			return t, 0, false
		}
	}
}

// decodeStreamEntry reads one entry of the stream.
func decodeStreamEntry(x redis.XMessage) (streamEntry, error) {
	id, ok := parseStreamID(x.ID)
	if !ok {
		return streamEntry{}, fmt.Errorf("stream entry id %q", x.ID)
	}
	e := streamEntry{id: id, idStr: x.ID}
	field := func(k string) string { s, _ := x.Values[k].(string); return s }
	typ, err := strconv.Atoi(field("type"))
	if err != nil {
		return e, fmt.Errorf("stream entry %s: type %q", x.ID, field("type"))
	}
	e.m.UID, e.m.Nsp = field("uid"), field("nsp")
	data := field("data")
	if typ == clusterBroadcast && strings.HasPrefix(data, "{") {
		if t, ok := broadcastTarget(data); ok {
			e.m.Kind, e.m.Target, e.raw = kindBroadcast, t, data
			return e, nil
		}
		var b jsonBroadcast
		if err := json.Unmarshal([]byte(data), &b); err != nil {
			return e, fmt.Errorf("stream entry %s: %w", x.ID, err)
		}
		e.m.Kind = kindBroadcast
		e.m.RequestID = idString(b.RequestID)
		e.m.Target = b.Opts.target()
		e.raw = data
		if _, err := e.args(); err != nil {
			return e, err
		}
		return e, nil
	}
	raw := map[string]any{"uid": e.m.UID, "nsp": e.m.Nsp, "type": float64(typ)}
	switch {
	case data == "":
	case strings.HasPrefix(data, "{"):
		var v map[string]any
		d := json.NewDecoder(strings.NewReader(data))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			return e, fmt.Errorf("stream entry %s: %w", x.ID, err)
		}
		raw["data"] = v
	default:
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return e, fmt.Errorf("stream entry %s: data is neither JSON nor base64", x.ID)
		}
		v, err := decodeValue(b)
		if err != nil {
			return e, fmt.Errorf("stream entry %s: %w", x.ID, err)
		}
		raw["data"] = v
	}
	m, err := decodeClusterMap(raw)
	if err != nil {
		return e, fmt.Errorf("stream entry %s: %w", x.ID, err)
	}
	if e.m.Nsp == "" {
		m.Nsp = "" // Node skips entries without a namespace; so do we
	}
	e.m = m
	return e, nil
}
