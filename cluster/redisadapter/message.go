package redisadapter

// The adapter speaks two wire protocols, both Node's:
//
//   - classic: @socket.io/redis-adapter's createAdapter (and
//     @socket.io/redis-emitter), on PUBLISH/PSUBSCRIBE/SUBSCRIBE: see
//     codec_classic.go;
//   - sharded: createShardedAdapter, which is socket.io-adapter's
//     ClusterAdapter protocol on SPUBLISH/SSUBSCRIBE: see codec_sharded.go.
//
// They carry the same operations (broadcast, broadcast with ack, remote
// join/leave/disconnect, fetchSockets, serverSideEmit and their answers),
// only encoded and routed differently. So the namespace adapter
// (namespace.go) works on one decoded form, message, and a codec per
// protocol turns messages into channels and bytes and back.

// kind is what a message asks for, or answers.
type kind uint8

const (
	kindIgnored kind = iota // a valid message this adapter has nothing to do with (heartbeats...)

	kindBroadcast         // deliver Data to Target; with a RequestID, clients ack
	kindSocketsJoin       // matching sockets join Rooms
	kindSocketsLeave      // matching sockets leave Rooms
	kindDisconnectSockets // matching sockets disconnect (Close: the connection too)
	kindFetchSockets      // describe matching sockets
	kindServerSideEmit    // Data to the servers' own listeners; with a RequestID, they ack

	kindFetchSocketsResponse   // Sockets
	kindServerSideEmitResponse // Value
	kindBroadcastClientCount   // ClientCount
	kindBroadcastAck           // Value: one client's ack

	// Classic protocol only: Node servers of the classic adapter may ask
	// them; this adapter answers but never asks.
	kindSockets         // ids of the sockets in Rooms
	kindAllRooms        // every room
	kindSocketsResponse // Sockets: ids
	kindAllRoomsResponse
	kindLegacyDone // answer to a single-socket join/leave/disconnect (Legacy)
)

// isResponse reports whether k answers a request (responses carry the
// responder's uid, or none, never the requester's).
func (k kind) isResponse() bool {
	switch k {
	case kindFetchSocketsResponse, kindServerSideEmitResponse, kindBroadcastClientCount,
		kindBroadcastAck, kindSocketsResponse, kindAllRoomsResponse, kindLegacyDone:
		return true
	}
	return false
}

// message is one cluster message in protocol-neutral form. Which fields
// are set depends on Kind.
type message struct {
	Kind      kind
	UID       string // the sender's uid ("emitter" for emitters; empty in classic responses)
	Nsp       string
	RequestID string // requests expecting answers, and the answers
	To        string // responses: the requester's uid (the sharded protocol routes on it)

	Data        []any    // kindBroadcast, kindServerSideEmit: [event, ...args]
	Target      target   // selector of the socket operations and broadcasts
	Rooms       []string // rooms to join or leave; kindSockets' selector; kindAllRoomsResponse
	Close       bool     // kindDisconnectSockets
	Sockets     []any    // kindFetchSocketsResponse: socket objects; kindSocketsResponse: ids
	Value       any      // kindServerSideEmitResponse, kindBroadcastAck
	ClientCount uint64   // kindBroadcastClientCount

	// Legacy single-socket form of the classic remote join/leave/disconnect
	// (no selector; answered with kindLegacyDone).
	Legacy    bool
	Sid, Room string

	// raw is a classic broadcast's payload as it came from Redis: the
	// recovery store keeps it rather than encoding Data again (Data's
	// arguments are JSON by then, see decodeBroadcast).
	raw []byte
}

// outgoing is one message ready for Redis: published on channel, or,
// in the streams protocol, appended to stream.
type outgoing struct {
	channel string
	payload []byte

	stream string
	maxLen int64
	fields []any
	// failed, when set, runs if the message could not be sent (a stream
	// broadcast is then delivered locally, as Node does).
	failed func()
}

// subMode is how a channel is subscribed.
type subMode uint8

const (
	subChannel subMode = iota // SUBSCRIBE
	subPattern                // PSUBSCRIBE
	subShard                  // SSUBSCRIBE
)

// subscription is one channel (or pattern) the adapter listens to.
type subscription struct {
	mode subMode
	name string
}

// codec is one wire protocol for one namespace: the channels it listens
// to, and how messages become (channel, bytes) and back.
type codec interface {
	// subscriptions the namespace holds for its whole life.
	subscriptions() []subscription
	// roomChannels tells whether rooms get channels of their own, to
	// subscribe while the room exists on this server (sharded, dynamic
	// modes); roomSubscription names a room's, if it gets one (isSid: the
	// room is a local socket's own).
	roomChannels() bool
	roomSubscription(room string, isSid bool) (subscription, bool)
	// roomOf names the room a channel is dedicated to, so that a message
	// for a room this server does not have can be dropped unread.
	roomOf(channel string) (string, bool)
	encode(m message) (outgoing, error)
	decode(channel string, payload []byte) (message, error)
	// countChannel is the channel whose subscribers are the servers of
	// the namespace (PUBSUB NUMSUB or SHARDNUMSUB, as publish says).
	countChannel() string
}
