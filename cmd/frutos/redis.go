package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/redisctl"
)

// defaultRedisTimeout bounds a one-shot command's whole conversation with Redis.
const defaultRedisTimeout = 5 * time.Second

// redisFlags are the flags of every command that talks to Redis.
type redisFlags struct {
	URL     string
	Timeout time.Duration
}

func addRedisFlags(fl *pflag.FlagSet, rf *redisFlags) {
	fl.StringVar(&rf.URL, "redis", "", "Redis URL (default: REDIS_URL, then redis.url of the config, then the running daemon's Redis)")
	fl.DurationVar(&rf.Timeout, "timeout", defaultRedisTimeout, "give up on Redis after this long")
}

// redisConn is an open client and what it was resolved from.
type redisConn struct {
	Config   *configs.Config
	Target   *redisctl.Target
	Source   string // where the URL came from, for messages
	Embedded bool
}

func (c *redisConn) Close() { _ = c.Target.Close() }

// loadRedisConfig checks the Redis flags and loads the configuration with
// --redis applied. Errors carry their exit code: 2 for a bad flag, 3 for a
// bad configuration.
func loadRedisConfig(f *Factory, rf redisFlags) (*configs.Config, error) {
	if rf.Timeout <= 0 {
		return nil, usageErrorf("--timeout must be more than 0 (got %s)", rf.Timeout)
	}
	if rf.URL != "" {
		// Checked here so the message names --redis (configs knows the
		// flag by another name) and a bad flag is a usage error.
		if _, err := redisctl.Parse(rf.URL); err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("--redis %w", err), "forms: "+redisctl.Examples)
		}
	}
	return f.Config(configs.Flags{RedisURL: rf.URL}) // a *configs.Error is exit 3
}

// openRedis resolves the Redis URL (--redis > REDIS_URL > redis.url in the
// config file > in development only, the embedded Redis of the state home
// or the Redis of the home's running daemon)
// and opens a fail-fast client; nothing is dialled yet. Exit codes: 3 for a
// bad URL in the environment or the file, 4 when no Redis can be found.
func openRedis(f *Factory, rf redisFlags, cfg *configs.Config) (*redisConn, error) {
	raw, embedded, err := redisctl.Resolve(cfg)
	fromDaemon := false
	if errors.Is(err, redisctl.ErrNoEmbedded) {
		// Nothing configured here: the Redis of the running daemon, as a
		// shell without the REDIS_URL its start had.
		if u, ok := daemonRedis(f.Daemon()); ok {
			raw, embedded, fromDaemon, err = u.URL, u.Embedded, true, nil
		}
	}
	switch {
	case errors.Is(err, redisctl.ErrNoEmbedded):
		return nil, withCode(exitRedis, fmt.Errorf("no Redis URL is configured and no embedded Redis is running for %s", cfg.Home),
			"start one with `frutos start`, or pass --redis redis://host:6379 (or set REDIS_URL)")
	case err != nil:
		return nil, withCode(exitConfig, err, "set REDIS_URL or redis.url")
	}
	source := redisSource(f, rf, embedded)
	if fromDaemon && !embedded {
		source = "the running daemon"
	}
	t, err := redisctl.Open(raw, redisctl.FailFast())
	if err != nil {
		return nil, withCode(exitConfig, fmt.Errorf("%s: %w", source, err), "forms: "+redisctl.Examples)
	}
	return &redisConn{Config: cfg, Target: t, Source: source, Embedded: embedded}, nil
}

// daemonRedis asks the daemon of the state home, if one runs an app, for
// its Redis URL; briefly: no daemon is the common case.
func daemonRedis(c *control.Client) (control.RedisURL, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	u, err := c.RedisURL(ctx)
	return u, err == nil && u.URL != ""
}

// connectRedis is loadRedisConfig then openRedis, for commands that need
// nothing else from the configuration first.
func connectRedis(f *Factory, rf redisFlags) (*redisConn, error) {
	cfg, err := loadRedisConfig(f, rf)
	if err != nil {
		return nil, err
	}
	return openRedis(f, rf, cfg)
}

func redisSource(f *Factory, rf redisFlags, embedded bool) string {
	switch {
	case rf.URL != "":
		return "--redis"
	case f.Getenv("REDIS_URL") != "":
		return "REDIS_URL"
	case embedded:
		return "the embedded Redis"
	default:
		return "redis.url"
	}
}

// redisFailure gives a Redis error exit code 4 and its hint.
func redisFailure(t *redisctl.Target, err error) error {
	e := t.Classify(err)
	return withCode(exitRedis, e, e.Hint)
}

// withRedisTimeout is the context of one command's Redis conversation.
func withRedisTimeout(rf redisFlags) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), rf.Timeout)
}
