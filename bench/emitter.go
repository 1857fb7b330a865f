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
	if namespace == "" {
		namespace = "/"
	}
	return redisEmitter{em: redisadapter.NewEmitter(client, key).Of(namespace)}
}

type redisEmitter struct{ em redisadapter.Emitter }

func (e redisEmitter) EmitTo(ctx context.Context, room, event string, arg any) error {
	_, err := e.em.To(room).Emit(ctx, event, arg)
	return err
}

func (e redisEmitter) EmitAll(ctx context.Context, event string, arg any) error {
	_, err := e.em.Emit(ctx, event, arg)
	return err
}
