package redisadapter

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/redis/go-redis/v9"
)

// ReservedEvents cannot be emitted: clients give them a meaning of their own.
var reservedEvents = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// IsReservedEvent reports whether name is one of Socket.IO's reserved event names.
func IsReservedEvent(name string) bool { return slices.Contains(reservedEvents, name) }

// Emitter publishes to Socket.IO servers through Redis without being one,
// exactly as @socket.io/redis-emitter does: servers with @socket.io/redis-adapter
// (Node) and with this package's Adapter deliver what it sends. It is a
// value: To, Except, Volatile, Of and Sharded return modified copies.
//
// With Sharded it speaks the sharded protocol instead (Node's
// createShardedAdapter, and Options.Sharded here), which Node's emitter
// 5.1.0 cannot: a Node backend's emitter never reaches sharded servers.
// With Streams it speaks the streams protocol (Node's
// @socket.io/redis-streams-adapter, Options.Streams here), for which Node
// has no emitter package: broadcasts are appended to the stream.
type Emitter struct {
	client   redis.UniversalClient
	key      string
	nsp      string
	rooms    []string
	except   []string
	volatile bool
	sharded  bool
	mode     SubscriptionMode
	streams  bool
	stream   StreamOptions
}

// NewEmitter returns an emitter for namespace "/" with channel prefix key
// ("" means "socket.io"), speaking the classic protocol.
func NewEmitter(client redis.UniversalClient, key string) Emitter {
	if key == "" {
		key = "socket.io"
	}
	return Emitter{client: client, key: key, nsp: "/"}
}

// Sharded selects the sharded protocol (SPUBLISH), for servers whose
// adapter is sharded with subscription mode mode ("" means
// SubscriptionDynamic, Node's default). The key is then the channel prefix.
func (e Emitter) Sharded(mode SubscriptionMode) Emitter {
	if !mode.valid() {
		mode = SubscriptionDynamic
	}
	e.sharded, e.mode = true, mode
	return e
}

// Streams selects the streams protocol with so (zero values: Node's
// defaults). The key is then the Pub/Sub channel prefix (serverSideEmit
// travels there); with Sharded as well, on sharded Pub/Sub.
func (e Emitter) Streams(so StreamOptions) Emitter {
	so.withDefaults()
	e.streams, e.stream = true, so
	return e
}

// Stream is the stream the emitter appends to ("" in the Pub/Sub
// protocols).
func (e Emitter) Stream() string {
	if !e.streams {
		return ""
	}
	return e.stream.streamFor(e.nsp)
}

// Of selects a namespace ("chat" and "/chat" are the same).
func (e Emitter) Of(nsp string) Emitter {
	if nsp == "" || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	e.nsp = nsp
	return e
}

// To adds target rooms; with none, every socket of the namespace is targeted.
func (e Emitter) To(rooms ...string) Emitter {
	e.rooms = appendUnique(slices.Clip(e.rooms), rooms)
	return e
}

// Except excludes the sockets of rooms.
func (e Emitter) Except(rooms ...string) Emitter {
	e.except = appendUnique(slices.Clip(e.except), rooms)
	return e
}

// Volatile marks the event as droppable for clients that are not ready.
func (e Emitter) Volatile() Emitter {
	e.volatile = true
	return e
}

// Namespace is the selected namespace.
func (e Emitter) Namespace() string { return e.nsp }

// Channel is where Emit publishes ("" in the streams protocol: see Stream).
func (e Emitter) Channel() string {
	out, err := e.codec().encode(e.broadcast([]any{"x"}))
	if err != nil {
		return ""
	}
	return out.channel
}

// Emit publishes an event. It returns how many subscriptions Redis
// delivered the message to (servers of the namespace, as Redis counts
// them; in the sharded dynamic modes, servers having the room), or an
// error, in which case nothing was sent. In the streams protocol it
// appends the event to the stream and returns 1 (see EmitEntry).
func (e Emitter) Emit(ctx context.Context, event string, args ...any) (int64, error) {
	if e.streams {
		if _, err := e.EmitEntry(ctx, event, args...); err != nil {
			return 0, err
		}
		return 1, nil
	}
	if err := checkEvent(event); err != nil {
		return 0, err
	}
	out, err := e.codec().encode(e.broadcast(append([]any{event}, args...)))
	if err != nil {
		return 0, err
	}
	return e.publish(ctx, out)
}

// EmitEntry appends an event to the stream (streams protocol only) and
// returns the entry's id: the offset clients get with it.
func (e Emitter) EmitEntry(ctx context.Context, event string, args ...any) (string, error) {
	x, err := e.XAddArgs(event, args...)
	if err != nil {
		return "", err
	}
	return e.client.XAdd(ctx, x).Result()
}

// XAddArgs returns the XADD that EmitEntry sends, without sending it (to
// pipeline many).
func (e Emitter) XAddArgs(event string, args ...any) (*redis.XAddArgs, error) {
	if !e.streams {
		return nil, fmt.Errorf("the emitter speaks a Pub/Sub protocol, not streams")
	}
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	out, err := e.codec().encode(e.broadcast(append([]any{event}, args...)))
	if err != nil {
		return nil, err
	}
	return xaddArgs(out.stream, out.maxLen, out.fields), nil
}

// ServerCount is how many servers listen on the emitter's namespace
// (PUBSUB NUMSUB of its channel; in the streams protocol, of its request
// channel, which every server of the namespace subscribes). On Redis
// Cluster it sums the nodes' counts.
func (e Emitter) ServerCount(ctx context.Context) (int64, error) {
	channel := e.codec().countChannel()
	sharded := e.sharded
	count := func(c redis.Cmdable) (int64, error) {
		var res map[string]int64
		var err error
		if sharded {
			res, err = c.PubSubShardNumSub(ctx, channel).Result()
		} else {
			res, err = c.PubSubNumSub(ctx, channel).Result()
		}
		return res[channel], err
	}
	cc, ok := e.client.(*redis.ClusterClient)
	if !ok {
		return count(e.client)
	}
	var mu sync.Mutex
	var n int64
	each := cc.ForEachShard
	if sharded {
		each = cc.ForEachMaster
	}
	err := each(ctx, func(ctx context.Context, c *redis.Client) error {
		k, err := count(c)
		mu.Lock()
		n += k
		mu.Unlock()
		return err
	})
	return n, err
}

// Encode returns the message Emit would publish, without publishing it.
func (e Emitter) Encode(event string, args ...any) ([]byte, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	out, err := e.codec().encode(e.broadcast(append([]any{event}, args...)))
	return out.payload, err
}

// SocketsJoin makes the selected sockets join rooms, on every server.
func (e Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.send(ctx, message{Kind: kindSocketsJoin, Rooms: nonNil(rooms)})
}

// SocketsLeave makes the selected sockets leave rooms, on every server.
func (e Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.send(ctx, message{Kind: kindSocketsLeave, Rooms: nonNil(rooms)})
}

// DisconnectSockets disconnects the selected sockets; close also closes
// their underlying connection.
func (e Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.send(ctx, message{Kind: kindDisconnectSockets, Close: close})
}

// ServerSideEmit sends an event to the servers themselves (their
// io.On(event) listeners). Acknowledgements are not supported, as in Node.
func (e Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if IsReservedEvent(event) {
		return fmt.Errorf("%q is a reserved event name", event)
	}
	return e.send(ctx, message{Kind: kindServerSideEmit, Data: append([]any{event}, args...)})
}

func (e Emitter) codec() codec {
	if e.streams {
		return newStreamsCodec(e.key, e.nsp, EmitterUID, e.sharded, e.stream)
	}
	if e.sharded {
		return newShardedCodec(e.key, e.nsp, EmitterUID, e.mode)
	}
	return newClassicCodec(e.key, e.nsp, EmitterUID)
}

func (e Emitter) broadcast(data []any) message {
	return message{
		Kind: kindBroadcast, UID: EmitterUID, Nsp: e.nsp, Data: data,
		Target: target{Rooms: nonNil(e.rooms), Except: nonNil(e.except), Flags: flags{Volatile: e.volatile}},
	}
}

// send publishes a request to the selected sockets.
func (e Emitter) send(ctx context.Context, m message) error {
	m.UID, m.Nsp = EmitterUID, e.nsp
	m.Target = target{Rooms: e.rooms, Except: e.except}
	out, err := e.codec().encode(m)
	if err != nil {
		return err
	}
	_, err = e.publish(ctx, out)
	return err
}

func (e Emitter) publish(ctx context.Context, out outgoing) (int64, error) {
	if out.stream != "" {
		return 1, e.client.XAdd(ctx, xaddArgs(out.stream, out.maxLen, out.fields)).Err()
	}
	if e.sharded {
		return e.client.SPublish(ctx, out.channel, out.payload).Result()
	}
	n, err := classicPublisher(ctx, e.client, e.key).Publish(ctx, out.channel, out.payload).Result()
	if err != nil {
		followFailover(ctx, e.client)
	}
	return n, err
}

// followFailover has go-redis load the cluster's slots again after a
// command sent to the node classicPublisher chose failed. go-redis does
// so by itself only every ClusterStateReloadInterval (a minute by
// default), so a publisher whose own connections were elsewhere kept
// publishing to a dead master for up to a minute after its replica took
// over (TestClusterMasterFailover/classic-publisher).
func followFailover(ctx context.Context, client redis.UniversalClient) {
	if cc, ok := client.(*redis.ClusterClient); ok {
		cc.ReloadState(ctx)
	}
}

// classicPublisher is where PUBLISH goes. On Redis Cluster go-redis sends
// PUBLISH (a keyless command) to a random node each time, and messages
// published on different nodes reach a subscriber in the order the
// cluster bus brings them: so one publisher's messages would overtake each
// other. They all go to the master of the key's slot instead (on Redis
// Cluster PUBLISH reaches every node from any node), so they keep their
// order. Elsewhere it is the client itself.
func classicPublisher(ctx context.Context, client redis.UniversalClient, key string) redis.Cmdable {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return client
	}
	node, err := cc.MasterForKey(ctx, key)
	if err != nil {
		return client // the command will fail or go anywhere: better than nothing
	}
	return node
}

func checkEvent(event string) error {
	if event == "" {
		return fmt.Errorf("event name is empty")
	}
	if IsReservedEvent(event) {
		return fmt.Errorf("%q is a reserved event name", event)
	}
	return nil
}

func appendUnique(dst, add []string) []string {
	for _, r := range add {
		if !slices.Contains(dst, r) {
			dst = append(dst, r)
		}
	}
	return dst
}
