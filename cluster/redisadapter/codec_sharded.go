package redisadapter

import (
	"errors"
	"fmt"
)

// The sharded protocol: @socket.io/redis-adapter v8's createShardedAdapter
// (dist/sharded-adapter.js), which speaks socket.io-adapter's ClusterAdapter
// messages (dist/cluster-adapter.js) over Redis 7 sharded Pub/Sub.
//
//	every message  SPUBLISH <prefix>#<nsp>#          {uid, nsp, type, data}
//	one room       SPUBLISH <prefix>#<nsp>#<room>#   (dynamic modes, plain broadcasts only)
//	responses      SPUBLISH <prefix>#<nsp>#<uid>#    (uid of the requester)
//
// A message is JSON, or msgpack when it is of a type that may carry binary
// (BROADCAST, BROADCAST_ACK, FETCH_SOCKETS_RESPONSE, SERVER_SIDE_EMIT and
// its response) and its data does; a receiver tells them apart by the
// first byte ('{'). Servers SSUBSCRIBE the namespace channel and their own
// response channel; in the dynamic modes also one channel per room they
// have, subscribed when the room is created and dropped when it is deleted.
// The number of servers is PUBSUB SHARDNUMSUB of the namespace channel.
// uids and request ids are 16 hex digits. Heartbeat types (INITIAL_HEARTBEAT,
// HEARTBEAT, ADAPTER_CLOSE) belong to ClusterAdapterWithHeartbeat, which the
// Redis adapter does not use; they are ignored.
//
// Node's @socket.io/redis-emitter 5.1.0 has no sharded mode: it PUBLISHes,
// and sharded servers never see it. This package's Emitter can (Sharded).

// SubscriptionMode is the sharded protocol's channel layout, Node's
// subscriptionMode option. Every server and emitter of a namespace must
// use the same.
type SubscriptionMode string

const (
	// SubscriptionStatic: every message on the namespace channel. Fewest
	// subscriptions; every server decodes every broadcast.
	SubscriptionStatic SubscriptionMode = "static"
	// SubscriptionDynamic (Node's default): a broadcast to exactly one room
	// goes on the room's channel, which only servers having the room
	// subscribe, except rooms that look like socket ids (20 characters).
	SubscriptionDynamic SubscriptionMode = "dynamic"
	// SubscriptionDynamicPrivate: as dynamic, socket ids' rooms included.
	SubscriptionDynamicPrivate SubscriptionMode = "dynamic-private"
)

func (m SubscriptionMode) valid() bool {
	return m == SubscriptionStatic || m == SubscriptionDynamic || m == SubscriptionDynamicPrivate
}

// ClusterAdapter message types.
const (
	clusterInitialHeartbeat       = 1
	clusterHeartbeat              = 2
	clusterBroadcast              = 3
	clusterSocketsJoin            = 4
	clusterSocketsLeave           = 5
	clusterDisconnectSockets      = 6
	clusterFetchSockets           = 7
	clusterFetchSocketsResponse   = 8
	clusterServerSideEmit         = 9
	clusterServerSideEmitResponse = 10
	clusterBroadcastClientCount   = 11
	clusterBroadcastAck           = 12
	clusterAdapterClose           = 13
)

// shardedCodec is the sharded protocol for one namespace.
type shardedCodec struct {
	nsp      string
	uid      string
	mode     SubscriptionMode
	channel  string // <prefix>#<nsp>#
	response string // <prefix>#<nsp>#<uid>#
}

func newShardedCodec(prefix, nsp, uid string, mode SubscriptionMode) *shardedCodec {
	ch := prefix + "#" + nsp + "#"
	return &shardedCodec{nsp: nsp, uid: uid, mode: mode, channel: ch, response: ch + uid + "#"}
}

func (c *shardedCodec) subscriptions() []subscription {
	return []subscription{{subShard, c.channel}, {subShard, c.response}}
}

func (c *shardedCodec) roomChannels() bool { return c.mode != SubscriptionStatic }

// roomSubscription follows Node's shouldUseASeparateNamespace, widened for
// socket ids that do not look like Node's: Go servers' ids have 24
// characters, so publishers (Node's rule, and ours) send to their room's
// channel, which must then be subscribed.
func (c *shardedCodec) roomSubscription(room string, isSid bool) (subscription, bool) {
	switch c.mode {
	case SubscriptionDynamicPrivate:
	case SubscriptionDynamic:
		if isSid && looksLikeASocketId(room) {
			return subscription{}, false
		}
	default:
		return subscription{}, false
	}
	return subscription{subShard, c.roomChannel(room)}, true
}

func (c *shardedCodec) roomChannel(room string) string { return c.channel + room + "#" }

// roomOf: a room channel is subscribed only while the room exists here,
// so there is nothing to pre-filter.
func (c *shardedCodec) roomOf(string) (string, bool) { return "", false }

func (c *shardedCodec) countChannel() string { return c.channel }

// publishChannel is Node's computeChannel: plain broadcasts to exactly one
// room use the room's channel in the dynamic modes (not broadcasts with
// ack: their sender counts the answers of every server).
func (c *shardedCodec) publishChannel(m message) string {
	if m.Kind.isResponse() {
		return c.channel + m.To + "#"
	}
	if m.Kind == kindBroadcast && m.RequestID == "" && len(m.Target.Rooms) == 1 {
		room := m.Target.Rooms[0]
		if c.mode == SubscriptionDynamicPrivate || (c.mode == SubscriptionDynamic && !looksLikeASocketId(room)) {
			return c.roomChannel(room)
		}
	}
	return c.channel
}

func (c *shardedCodec) encode(m message) (outgoing, error) {
	var typ int
	var data map[string]any
	withID := func(d map[string]any) map[string]any {
		if m.RequestID != "" {
			d["requestId"] = m.RequestID
		}
		return d
	}
	switch m.Kind {
	case kindBroadcast:
		typ, data = clusterBroadcast, withID(map[string]any{"packet": eventPacket(m.Nsp, m.Data), "opts": targetMap(m.Target)})
	case kindSocketsJoin:
		typ, data = clusterSocketsJoin, map[string]any{"opts": targetMap(m.Target), "rooms": nonNil(m.Rooms)}
	case kindSocketsLeave:
		typ, data = clusterSocketsLeave, map[string]any{"opts": targetMap(m.Target), "rooms": nonNil(m.Rooms)}
	case kindDisconnectSockets:
		typ, data = clusterDisconnectSockets, map[string]any{"opts": targetMap(m.Target), "close": m.Close}
	case kindFetchSockets:
		typ, data = clusterFetchSockets, withID(map[string]any{"opts": targetMap(m.Target)})
	case kindFetchSocketsResponse:
		typ, data = clusterFetchSocketsResponse, withID(map[string]any{"sockets": nonNilAny(m.Sockets)})
	case kindServerSideEmit:
		typ, data = clusterServerSideEmit, withID(map[string]any{"packet": m.Data})
	case kindServerSideEmitResponse:
		typ, data = clusterServerSideEmitResponse, withID(map[string]any{"packet": m.Value})
	case kindBroadcastClientCount:
		typ, data = clusterBroadcastClientCount, withID(map[string]any{"clientCount": m.ClientCount})
	case kindBroadcastAck:
		typ, data = clusterBroadcastAck, withID(map[string]any{"packet": m.Value})
	default:
		return outgoing{}, fmt.Errorf("sharded protocol: cannot send message kind %d", m.Kind)
	}
	if m.Kind.isResponse() && m.To == "" {
		return outgoing{}, errors.New("sharded protocol: response without a requester")
	}
	v := map[string]any{"type": typ, "data": data, "uid": m.UID, "nsp": m.Nsp}
	var b []byte
	var err error
	if mayContainBinary(typ) && hasBinary(data) {
		b, err = appendValue(nil, v)
	} else if b, err = marshalJSON(v); err != nil {
		b, err = appendValue(nil, v) // e.g. NaN, which JSON cannot carry
	}
	return outgoing{channel: c.publishChannel(m), payload: b}, err
}

func mayContainBinary(typ int) bool {
	switch typ {
	case clusterBroadcast, clusterBroadcastAck, clusterFetchSocketsResponse,
		clusterServerSideEmit, clusterServerSideEmitResponse:
		return true
	}
	return false
}

func (c *shardedCodec) decode(_ string, payload []byte) (message, error) {
	return decodeClusterMessage(payload)
}

// decodeClusterMessage reads a ClusterAdapter message, JSON or msgpack.
func decodeClusterMessage(payload []byte) (message, error) {
	raw, err := decodeObject(payload)
	if err != nil {
		return message{}, fmt.Errorf("cluster message: %w", err)
	}
	return decodeClusterMap(raw)
}

// decodeClusterMap reads a ClusterAdapter message from its decoded form.
func decodeClusterMap(raw map[string]any) (message, error) {
	var err error
	typ, ok := number(raw["type"])
	if !ok {
		return message{}, errors.New("cluster message: no type")
	}
	m := message{Nsp: "/"}
	m.UID, _ = raw["uid"].(string)
	if nsp, ok := raw["nsp"].(string); ok {
		m.Nsp = nsp
	}
	data, _ := raw["data"].(map[string]any)
	switch typ {
	case clusterInitialHeartbeat, clusterHeartbeat, clusterAdapterClose:
		m.Kind = kindIgnored
		return m, nil
	}
	if data == nil {
		return message{}, fmt.Errorf("cluster message of type %v without data", typ)
	}
	m.RequestID = idString(data["requestId"])
	m.Target = targetFrom(data["opts"])
	switch typ {
	case clusterBroadcast:
		if m.Data, err = eventData(data["packet"]); err != nil {
			return message{}, fmt.Errorf("cluster broadcast: %w", err)
		}
		m.Kind = kindBroadcast
	case clusterSocketsJoin:
		m.Kind, m.Rooms = kindSocketsJoin, stringList(data["rooms"])
	case clusterSocketsLeave:
		m.Kind, m.Rooms = kindSocketsLeave, stringList(data["rooms"])
	case clusterDisconnectSockets:
		m.Kind = kindDisconnectSockets
		m.Close, _ = data["close"].(bool)
	case clusterFetchSockets:
		m.Kind = kindFetchSockets
	case clusterFetchSocketsResponse:
		m.Kind = kindFetchSocketsResponse
		m.Sockets, _ = data["sockets"].([]any)
	case clusterServerSideEmit:
		packet, ok := data["packet"].([]any)
		if !ok || len(packet) == 0 {
			return message{}, errors.New("cluster serverSideEmit: packet is not [event, ...args]")
		}
		m.Kind, m.Data = kindServerSideEmit, packet
	case clusterServerSideEmitResponse:
		m.Kind, m.Value = kindServerSideEmitResponse, data["packet"]
	case clusterBroadcastClientCount:
		n, ok := number(data["clientCount"])
		if !ok || n < 0 || n >= 1<<63 {
			return message{}, errors.New("cluster client count: not a count")
		}
		m.Kind, m.ClientCount = kindBroadcastClientCount, uint64(n)
	case clusterBroadcastAck:
		m.Kind, m.Value = kindBroadcastAck, data["packet"]
	default:
		m.Kind = kindIgnored // unknown types are ignored, as Node does
	}
	return m, nil
}
