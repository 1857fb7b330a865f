package redisctl

import (
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
