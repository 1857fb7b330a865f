package bench

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster/redisadapter"
)

// RedisEmitter publishes through Redis in the @socket.io/redis-emitter
// format, as a Node backend's emitToUser does: frutos workers and Node
// servers with @socket.io/redis-adapter both deliver it.
func RedisEmitter(client redis.UniversalClient, key, namespace string) Emitter {
	return ProtocolEmitter(client, redisadapter.NewEmitter(client, key), namespace)
}

// ProtocolEmitter publishes with em, whatever its protocol (classic,
// sharded, streams: see redisctl.NewEmitter).
func ProtocolEmitter(client redis.UniversalClient, em redisadapter.Emitter, namespace string) Emitter {
	if namespace == "" {
		namespace = "/"
	}
	return redisEmitter{client: client, em: em.Of(namespace)}
}

type redisEmitter struct {
	client redis.UniversalClient
	em     redisadapter.Emitter
}

// EmitToBatch publishes every emit in one pipeline: one round trip for
// the batch, so the load tool spends its CPU on the load, not on
// syscalls.
func (e redisEmitter) EmitToBatch(ctx context.Context, event string, emits []Targeted) error {
	_, err := e.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range emits {
			em := e.em.To(t.Room)
			if em.Stream() != "" { // the streams protocol: XADD
				x, err := em.XAddArgs(event, t.Arg)
				if err != nil {
					return err
				}
				p.XAdd(ctx, x)
				continue
			}
			payload, err := em.Encode(event, t.Arg)
			if err != nil {
				return err
			}
			p.Publish(ctx, em.Channel(), payload)
		}
		return nil
	})
	return err
}

func (e redisEmitter) EmitTo(ctx context.Context, room, event string, arg any) error {
	_, err := e.em.To(room).Emit(ctx, event, arg)
	return err
}

func (e redisEmitter) EmitAll(ctx context.Context, event string, arg any) error {
	_, err := e.em.Emit(ctx, event, arg)
	return err
}
