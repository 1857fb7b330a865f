package redisctl

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/frutos/frutos/configs"
)

// ErrNoEmbedded means no Redis URL is configured (development) and no
// embedded Redis answers for the state home.
var ErrNoEmbedded = errors.New("no Redis URL is configured and no embedded Redis is running")

// ErrNoURL means production has no Redis URL (configs.Load refuses that
// too; this guards callers that build a Config by hand).
var ErrNoURL = errors.New("production needs a Redis URL (REDIS_URL or redis.url)")

// Resolve picks the Redis URL for a command or a worker: the configured one
// (configs.Load has applied --redis, REDIS_URL and the file, in that order
// of precedence), else, in development only, the embedded Redis published
// in the state home. embedded says which.
func Resolve(cfg *configs.Config) (rawURL string, embedded bool, err error) {
	if cfg.Redis.URL != "" {
		return cfg.Redis.URL, false, nil
	}
	if cfg.Env == configs.Production {
		return "", false, ErrNoURL
	}
	if u, ok := FindEmbedded(cfg.Home); ok {
		return u, true, nil
	}
	return "", false, fmt.Errorf("%w for %s (no live %s)", ErrNoEmbedded, cfg.Home, filepath.Join(cfg.Home, EmbeddedURLFile))
}
