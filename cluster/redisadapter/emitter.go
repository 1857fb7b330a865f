package redisadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// ReservedEvents cannot be emitted: clients give them a meaning of their own.
var reservedEvents = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// IsReservedEvent reports whether name is one of Socket.IO's reserved event names.
func IsReservedEvent(name string) bool { return slices.Contains(reservedEvents, name) }

// Emitter publishes to Socket.IO servers through Redis without being one,
// exactly as @socket.io/redis-emitter does: servers with @socket.io/redis-adapter
// (Node) and with this package's Adapter deliver what it sends. It is a
// value: To, Except, Volatile and Of return modified copies.
type Emitter struct {
	client   redis.UniversalClient
	key      string
	nsp      string
	rooms    []string
	except   []string
	volatile bool
}

// NewEmitter returns an emitter for namespace "/" with channel prefix key
// ("" means "socket.io").
func NewEmitter(client redis.UniversalClient, key string) Emitter {
	if key == "" {
		key = "socket.io"
	}
	return Emitter{client: client, key: key, nsp: "/"}
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

// Channel is where Emit publishes.
func (e Emitter) Channel() string { return channelsFor(e.key, e.nsp).broadcastChannel(e.rooms) }

// Emit publishes an event. It returns how many subscriptions Redis
// delivered the message to (servers of the namespace, as Redis counts
// them), or an error, in which case nothing was sent.
func (e Emitter) Emit(ctx context.Context, event string, args ...any) (int64, error) {
	msg, err := e.Encode(event, args...)
	if err != nil {
		return 0, err
	}
	return e.client.Publish(ctx, e.Channel(), msg).Result()
}

// Encode returns the message Emit would publish, without publishing it.
func (e Emitter) Encode(event string, args ...any) ([]byte, error) {
	if event == "" {
		return nil, fmt.Errorf("event name is empty")
	}
	if IsReservedEvent(event) {
		return nil, fmt.Errorf("%q is a reserved event name", event)
	}
	return encodeBroadcast(broadcastMessage{
		UID: EmitterUID, Nsp: e.nsp, Data: append([]any{event}, args...),
		Target: target{Rooms: nonNil(e.rooms), Except: nonNil(e.except), Flags: flags{Volatile: e.volatile}},
	})
}

// SocketsJoin makes the selected sockets join rooms, on every server.
func (e Emitter) SocketsJoin(ctx context.Context, rooms ...string) error {
	return e.request(ctx, map[string]any{"type": reqRemoteJoin, "rooms": nonNil(rooms)})
}

// SocketsLeave makes the selected sockets leave rooms, on every server.
func (e Emitter) SocketsLeave(ctx context.Context, rooms ...string) error {
	return e.request(ctx, map[string]any{"type": reqRemoteLeave, "rooms": nonNil(rooms)})
}

// DisconnectSockets disconnects the selected sockets; close also closes
// their underlying connection.
func (e Emitter) DisconnectSockets(ctx context.Context, close bool) error {
	return e.request(ctx, map[string]any{"type": reqRemoteDisconnect, "close": close})
}

// ServerSideEmit sends an event to the servers themselves (their
// io.On(event) listeners). Acknowledgements are not supported, as in Node.
func (e Emitter) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	if IsReservedEvent(event) {
		return fmt.Errorf("%q is a reserved event name", event)
	}
	b, err := json.Marshal(map[string]any{"uid": EmitterUID, "type": reqServerSideEmit, "data": append([]any{event}, args...)})
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, channelsFor(e.key, e.nsp).request, b).Err()
}

func (e Emitter) request(ctx context.Context, fields map[string]any) error {
	fields["opts"] = targetJSON(target{Rooms: e.rooms, Except: e.except})
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return e.client.Publish(ctx, channelsFor(e.key, e.nsp).request, b).Err()
}

func appendUnique(dst, add []string) []string {
	for _, r := range add {
		if !slices.Contains(dst, r) {
			dst = append(dst, r)
		}
	}
	return dst
}
