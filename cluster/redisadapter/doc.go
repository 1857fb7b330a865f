// Package redisadapter joins Socket.IO servers (github.com/zishang520/socket.io
// servers/socket/v3) through Redis, speaking the wire protocols of Node's
// @socket.io/redis-adapter 8.3 and @socket.io/redis-emitter 5.1, so that Go
// and Node servers, and Node or Go emitters, share one Redis.
//
// # Use
//
//	ad := redisadapter.New(redisClient, redisadapter.Options{})
//	opts := socket.DefaultServerOptions()
//	opts.SetAdapter(ad)
//	io := socket.NewServer(nil, opts)
//	...
//	ad.Ready()  // subscriptions confirmed: report the worker ready
//	ad.Status() // link state and counters, for health and metrics
//	ad.Close(ctx)
//
// NewEmitter publishes without being a server (backends, `frutos emit`).
//
// # Protocols
//
// Options.Sharded picks one of two protocols; every server of a namespace
// must use the same one.
//
//   - classic (default): createAdapter's. Broadcasts are msgpack on
//     PUBLISH <key>#<nsp>#[<room>#]; requests and responses JSON (msgpack for
//     broadcast acks) on <key>-request#<nsp># and <key>-response#<nsp>#.
//     Node's emitter reaches these servers.
//   - sharded: createShardedAdapter's, which is socket.io-adapter's
//     ClusterAdapter protocol over SPUBLISH/SSUBSCRIBE: one message form
//     {uid, nsp, type, data}, JSON unless it carries binary (then msgpack),
//     on <key>#<nsp># (plus <key>#<nsp>#<room># in the dynamic subscription
//     modes, and <key>#<nsp>#<uid># for responses). Node's emitter 5.1 cannot
//     reach sharded servers; Emitter.Sharded can.
//
// Both carry the same operations: broadcast (rooms, except, flags,
// binary), broadcast with acks, socketsJoin/Leave, disconnectSockets,
// fetchSockets, serverSideEmit with acks, serverCount. So the code is
// split in two layers:
//
//   - namespace.go: the operations, on a protocol-neutral message
//     (message.go). Outgoing, the namespace adapter builds a message and
//     sends it; incoming, it applies a decoded message through the
//     library's in-memory adapter.
//   - codec_classic.go and codec_sharded.go: a codec per protocol, turning
//     messages into (channel, bytes) and back, and naming the channels a
//     namespace subscribes (permanent ones, and in the sharded dynamic
//     modes one per room, subscribed on the adapter's "create-room" event
//     and dropped on "delete-room").
//
// adapter.go owns the publishing queue and state, subscriber.go the one
// Pub/Sub connection (subscriptions reconciled in the background, receive
// loop, health checks, reconnection with backoff), msgpack.go the msgpack
// dialect of notepack.io.
//
// Deviations from Node, all in the direction of delivering more: in the
// sharded dynamic mode a socket's own room gets a channel unless its id
// looks like a Node id (20 characters), because Go socket ids have 24 and
// publishers (Node's rule) send to their room's channel; with connection
// state recovery on, the rooms of disconnected sessions keep receiving
// (and keep their channel) until the session expires (see RECOVERY.md).
//
// # Redis Cluster
//
// The sharded protocol is meant for Redis Cluster, but this package is
// tested on a standalone Redis 7 only. What a cluster adds is on the
// subscriber side: SSUBSCRIBE must be sent to the master owning each
// channel's slot, one slot per command (CROSSSLOT otherwise), and again to
// the new owner when a slot moves (Redis then sends an unsolicited
// sunsubscribe, which the adapter already answers by subscribing again).
// A single go-redis PubSub cannot do that: it opens its connection to the
// node of the first channel (a random node when it reconnects, for shard
// channels) and resubscribes all its shard channels in one command. The
// missing piece is one subscriber connection per master, with its own
// resubscription by slot (a small RESP subscriber, or one go-redis PubSub
// per node fed one slot group at a time). Publishing (SPUBLISH is routed by
// the channel's slot) and serverCount (PUBSUB SHARDNUMSUB summed over the
// masters, as Node does) already work with a *redis.ClusterClient.
//
// # go-redis and RESP3
//
// go-redis v9.18 to v9.20 lose a RESP3 pub/sub message whose header
// straddles two reads (redis/go-redis#3839; about 1 in 1,000 in a burst
// here), and v9.22 hangs on short frames (#3935). The module requires
// v9.23.0, which fixes both; TestNoMessageLostAtReadBoundaries guards
// against a downgrade.
package redisadapter
