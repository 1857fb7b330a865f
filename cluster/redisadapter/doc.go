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
// Options.Streams and Options.Sharded pick one of three protocols; every
// server of a namespace must use the same one.
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
//   - streams: @socket.io/redis-streams-adapter 0.3's (codec_streams.go),
//     the same ClusterAdapter messages: broadcasts and remote
//     join/leave/disconnect are appended to one Redis stream (XADD MAXLEN ~
//     10000, fields uid, nsp, type, data), read by every server with XREAD
//     BLOCK from the last id it read; requests go on Pub/Sub as msgpack
//     (<key>#<nsp>#, answers on <key>#<nsp>#<uid>#, SPUBLISH with Sharded).
//     Nothing Redis accepted is lost to a server that was away from Redis,
//     and with connection state recovery the sessions are in Redis, so a
//     client whose server died (kill -9) gets its session and missed
//     events from another (streams.go, streams_sessions.go). Node has no
//     emitter for it; Emitter.Streams appends to the stream.
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
// In the streams protocol a server delivers every broadcast, its own
// included, when it reads it from the stream, with the entry id as offset:
// so every client sees its events in stream order, and its offset splits
// exactly what it got from what it missed, whichever server it had them
// from. The entries read are kept (about MaxLen of them), and a restore
// reads the missed events there, under the delivery's lock: thousands of
// clients of a dead server reconnecting at once cost no read of Redis
// (Node's adapter issues two XRANGEs per client), or one shared read on a
// server that started after their last event.
//
// adapter.go owns the publishing queue and state, subscriber.go the
// Pub/Sub connections (one, or one per master on Redis Cluster with the
// sharded protocol: subscriptions placed and reconciled in the background,
// a receive loop per connection, health checks, reconnection with
// backoff), msgpack.go the msgpack dialect of notepack.io.
//
// Deviations from Node, all in the direction of delivering more: in the
// sharded dynamic mode a socket's own room gets a channel unless its id
// looks like a Node id (20 characters), because Go socket ids have 24 and
// publishers (Node's rule) send to their room's channel; with connection
// state recovery on, the rooms of disconnected sessions keep receiving
// (and keep their channel) until the session expires (see RECOVERY.md).
//
// # Redis Cluster and Sentinel
//
// The client decides: a *redis.ClusterClient (redis+cluster:// URLs) or a
// failover client (redis+sentinel://) work as well as a plain one, with
// any protocol. Tested against a real 3-master cluster (with replicas)
// and a master, a replica and three Sentinels (cluster_test.go).
//
//   - Sharded on a cluster: SSUBSCRIBE must go to the master owning each
//     channel's slot, one slot per command (CROSSSLOT otherwise), and again
//     to the new owner when a slot moves. So the adapter holds a subscriber
//     link per master (subscriber.go): each subscription is placed on the
//     master go-redis names for its slot; a slot that moves (an unsolicited
//     sunsubscribe) or a channel a node refuses (MOVED) is placed again once
//     the topology is refreshed; a failed link is closed (never reconnected
//     in place: go-redis would resubscribe all its channels in one command)
//     and its subscriptions placed again with backoff, capped at one second
//     on a cluster. Messages arriving on a link that no longer owns their
//     channel are dropped, so nothing is delivered twice. SPUBLISH is routed
//     by slot; serverCount sums PUBSUB SHARDNUMSUB over the masters.
//
//   - Classic on a cluster: PUBLISH reaches every node, so one subscriber
//     link anywhere does. go-redis sends PUBLISH (keyless) to a random node,
//     and messages published on different nodes can overtake each other on
//     the cluster bus, so the adapter and the Emitter publish on the master
//     of the key's slot instead; serverCount sums every node's NUMSUB.
//
//   - Sentinel: the failover client finds the master; the single link
//     reconnects to the promoted replica like after any outage.
//
//   - Streams on a cluster: a stream is one key, so one slot on one
//     master: every XADD and XREAD of a namespace goes to it (Node's
//     streamCount spreads namespaces, not a namespace, over several
//     streams; frutos serves one namespace). The reader connects to that
//     master and follows it after a failover; sessions are keys spread
//     over every slot; requests use PUBLISH (or SPUBLISH with Sharded).
//     Measured with the kill -9 of the stream's master
//     (TestClusterMasterFailover): delivery resumed 3.4 s later, one event
//     lost (the XADD in flight), none twice.
//
// Which protocol on a cluster: sharded, when every publisher speaks it
// (frutos workers, `frutos emit`, Emitter.Sharded): a message travels to
// one master instead of crossing the cluster bus to every node, so it
// scales with the masters. Classic when a Node backend publishes with
// @socket.io/redis-emitter, which has no sharded mode.
//
// During a failover the messages published while no master answers are
// lost (Redis Pub/Sub keeps nothing), unless the publisher's retries carry
// them over to the new master. Measured here with the kill -9 of a master
// and one event per 10 ms, 3 runs each (TestClusterMasterFailover with a
// node timeout of 1 s, TestSentinelFailover with down-after 1 s):
// delivery resumed 3.5 to 4.5 s after the kill of the master holding the
// target room's channel on the cluster (sharded), 2.9 to 3.4 s through
// Sentinel; with the classic protocol on the cluster, 0.1 to 4.5 s after
// the kill of the node the subscriber was on (go-redis reconnects it to the
// master of any of its channels, often a live one). Nothing was delivered
// twice.
//
// # go-redis and RESP3
//
// go-redis v9.18 to v9.20 lose a RESP3 pub/sub message whose header
// straddles two reads (redis/go-redis#3839; about 1 in 1,000 in a burst
// here), and v9.22 hangs on short frames (#3935). The module requires
// v9.23.0, which fixes both; TestNoMessageLostAtReadBoundaries guards
// against a downgrade.
package redisadapter
