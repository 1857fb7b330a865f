package redisctl

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
)

// Streams reports whether the configuration selects the streams adapter.
func Streams(r configs.Redis) bool { return r.Adapter == configs.AdapterStreams }

// StreamOptions are redis.streams as the adapter and the emitter take them.
func StreamOptions(r configs.Redis) redisadapter.StreamOptions {
	s := r.Streams
	return redisadapter.StreamOptions{Name: s.Name, Count: s.Count, MaxLen: int64(s.MaxLen), SessionPrefix: s.SessionPrefix}
}

// NewEmitter is the emitter for the workers of r, namespace "/": the
// streams protocol (XADD) with redis.adapter: streams, else the classic
// protocol of @socket.io/redis-emitter, or the sharded one with
// redis.sharded.
func NewEmitter(client redis.UniversalClient, r configs.Redis) redisadapter.Emitter {
	em := redisadapter.NewEmitter(client, r.Key)
	if r.Sharded {
		em = em.Sharded("")
	}
	if Streams(r) {
		em = em.Streams(StreamOptions(r))
	}
	return em
}

// Emit sends event through em, as the configuration r selects, for
// `frutos emit` and the HTTP emit endpoint alike. With streams it is
// appended to the stream (entry is its id) and receivers counts the
// servers reading the stream: a count, not a condition, since the event is
// in the stream whatever the count says (an error there is no failure: a
// caller that retried would send it twice). Otherwise it is published and
// receivers is what PUBLISH answers.
func Emit(ctx context.Context, em redisadapter.Emitter, r configs.Redis, event string, args ...any) (receivers int64, entry string, err error) {
	if !Streams(r) {
		receivers, err = em.Emit(ctx, event, args...)
		return receivers, "", err
	}
	if entry, err = em.EmitEntry(ctx, event, args...); err != nil {
		return 0, "", err
	}
	receivers, _ = em.ServerCount(ctx)
	return receivers, entry, nil
}
