// Package redisctl is everything that talks to Redis from the outside: the
// URL conventions, opening a client for them, the health check behind
// `frutos ping`, the classification of connection failures, the embedded
// development Redis and the go-redis log routing.
//
// # URL conventions
//
// The scheme picks the mode; every form is one that go-redis v9 parses
// itself (ParseURL, ParseFailoverURL, ParseClusterURL), so every query
// option go-redis documents (dial_timeout, read_timeout, pool_size,
// skip_verify, protocol, ...) works unchanged:
//
//	redis://[user:password@]host[:6379][/db][?options]      standalone
//	rediss://...                                            standalone over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N]       standalone, unix socket
//	redis+sentinel://[suser:spass@]host[:26379][/db]?master_name=NAME[&addr=host2:26379...][&password=...]
//	rediss+sentinel://...                                   sentinel, TLS everywhere
//	redis+cluster://[user:password@]host[:6379][?addr=host2:6379...]
//	rediss+cluster://...                                    cluster, TLS
//
// For Sentinel the user info is the Sentinels' own credentials and the
// master's credentials are the username= and password= options (go-redis's
// convention: Sentinels often have no password while the master has one).
// A cluster URL has no database number: Redis Cluster has only database 0.
package redisctl

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/frutos/frutos/configs"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Mode is how a client reaches Redis.
type Mode string

// The modes.
const (
	Standalone Mode = "standalone"
	Sentinel   Mode = "sentinel"
	Cluster    Mode = "cluster"
)

// Target is a parsed Redis URL and, after Open, a client for it.
type Target struct {
	// URL is the URL as given with its passwords replaced by "xxxxx": safe
	// to print and log.
	URL string
	// Mode is standalone, sentinel or cluster (from the scheme).
	Mode Mode
	// Addrs are host:port of the server, of the Sentinels or of the cluster
	// seed nodes; the socket path for unix://.
	Addrs []string
	// TLS is set for rediss schemes.
	TLS bool
	// DB is the database number (always 0 for a cluster).
	DB int
	// MasterName is the Sentinel master name.
	MasterName string
	// Client is set by Open; Parse leaves it nil. Close it with Close.
	Client redis.UniversalClient

	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// URLError is a Redis URL that cannot be used. Its message quotes the URL
// redacted, never a password.
type URLError struct {
	URL string // redacted
	Msg string
}

func (e *URLError) Error() string {
	if e.URL == "" {
		return e.Msg
	}
	return fmt.Sprintf("%q: %s", e.URL, e.Msg)
}

// Examples is a short reminder of the URL forms, for hints.
const Examples = "redis://[:password@]host:6379[/db], rediss://... (TLS), unix:///path/redis.sock, " +
	"redis+sentinel://host:26379?master_name=NAME, redis+cluster://host:6379?addr=host2:6379"

// Option tunes the client Open builds.
type Option func(*clientTuning)

type clientTuning struct{ failFast bool }

// FailFast makes a client for one-shot commands: one dial attempt and no
// command retries, so an unreachable server is reported at once instead of
// after go-redis's retry loops. Long-lived processes should not use it.
func FailFast() Option { return func(t *clientTuning) { t.failFast = true } }

// Open parses rawURL and builds a client for it. Nothing is dialled yet: the
// first command connects. Close the Target when done.
func Open(rawURL string, opts ...Option) (*Target, error) {
	t, err := Parse(rawURL)
	if err != nil {
		return nil, err
	}
	t.Client = t.NewClient(opts...)
	return t, nil
}

// Close closes the client made by Open, if any.
func (t *Target) Close() error {
	if t.Client == nil {
		return nil
	}
	return t.Client.Close()
}

// NewClient builds a new client for the target. Every client honours
// context deadlines for reads and writes (go-redis ignores them by
// default), so a caller's timeout bounds every command, the TLS handshake
// included.
func (t *Target) NewClient(opts ...Option) redis.UniversalClient {
	var tune clientTuning
	for _, o := range opts {
		o(&tune)
	}
	switch t.Mode {
	case Sentinel:
		o := *t.failover
		o.ContextTimeoutEnabled = true
		if tune.failFast {
			o.DialerRetries, o.MaxRetries = 1, -1
		}
		if o.TLSConfig != nil {
			o.Dialer = tlsDialer(o.TLSConfig, o.DialTimeout)
		}
		return redis.NewFailoverClient(&o)
	case Cluster:
		o := *t.cluster
		o.ContextTimeoutEnabled = true
		o.MaintNotificationsConfig = noMaintNotifications()
		if tune.failFast {
			o.DialerRetries, o.MaxRetries = 1, -1
		}
		if o.TLSConfig != nil {
			o.Dialer = tlsDialer(o.TLSConfig, o.DialTimeout)
		}
		return redis.NewClusterClient(&o)
	default:
		o := *t.single
		o.ContextTimeoutEnabled = true
		o.MaintNotificationsConfig = noMaintNotifications()
		if tune.failFast {
			o.DialerRetries, o.MaxRetries = 1, -1
		}
		if o.TLSConfig != nil {
			o.Dialer = tlsDialer(o.TLSConfig, o.DialTimeout)
		}
		return redis.NewClient(&o)
	}
}

// Parse reads a Redis URL (see the package comment for the forms). Errors
// are *URLError and never contain a password.
func Parse(rawURL string) (*Target, error) {
	raw := strings.TrimSpace(rawURL)
	red := configs.RedactURL(raw)
	fail := func(format string, args ...any) (*Target, error) {
		return nil, &URLError{URL: red, Msg: fmt.Sprintf(format, args...)}
	}
	if raw == "" {
		return nil, &URLError{Msg: "the Redis URL is empty; write one like redis://localhost:6379"}
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if looksLikeHostPort(raw) {
			return fail("no scheme; write redis://%s", red)
		}
		return fail("not a Redis URL; write one like redis://localhost:6379")
	}
	if rest == "" {
		return fail("nothing after the scheme; write one like %s://localhost:6379", strings.ToLower(scheme))
	}
	scheme = strings.ToLower(scheme)
	base, mode, found := strings.Cut(scheme, "+")
	if base != "redis" && base != "rediss" && base != "unix" {
		return fail("scheme %q is not Redis; write redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://", scheme)
	}
	if base == "unix" && found {
		return fail("unix sockets are standalone only; write unix:///path/to/redis.sock")
	}
	if found && mode != string(Sentinel) && mode != string(Cluster) {
		return fail("unknown mode %q; write redis+sentinel:// or redis+cluster://", mode)
	}

	u, err := url.Parse(base + "://" + rest)
	if err != nil {
		return fail("not a valid URL%s; characters like @ : / ? # %% in a password must be percent-encoded (%%40 for @)",
			parseDetail(red, err))
	}
	if strings.Contains(u.Path, "@") {
		// url.Parse took the user info to end at a "/" that was part of
		// the password.
		return fail("an \"@\" outside the user info; percent-encode it in the password (%%40)")
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return fail("a # fragment, which Redis URLs do not have; percent-encode # in a password as %%23")
	}
	t := &Target{URL: red, TLS: base == "rediss"}
	q := u.Query()

	if base != "unix" {
		host, port := u.Hostname(), u.Port()
		if host == "" {
			return fail("no host; write %s://localhost:6379", scheme)
		}
		if port != "" {
			n, err := strconv.Atoi(port)
			if err != nil || n < 1 || n > 65535 {
				return fail("port %q is not a TCP port (1-65535)", port)
			}
		}
		if strings.HasSuffix(u.Host, ":") {
			return fail("empty port; write %s:6379 or leave the port out", host)
		}
	}

	switch {
	case !found:
		t.Mode = Standalone
		switch {
		case q.Has("master_name"):
			return fail("master_name is a Sentinel option; write redis+sentinel://sentinel-host:26379?master_name=%s", q.Get("master_name"))
		case q.Has("addr"):
			return fail("addr= lists more nodes, which only a cluster or Sentinel URL has; write redis+cluster://host:6379?addr=host2:6379")
		}
		o, err := redis.ParseURL(u.String())
		if err != nil {
			return fail("%s", goRedisDetail(raw, err))
		}
		t.single, t.DB = o, o.DB
		t.Addrs = []string{o.Addr}
	case mode == string(Sentinel):
		t.Mode = Sentinel
		if q.Get("master_name") == "" {
			return fail("a Sentinel URL needs the master's name: add ?master_name=NAME (the name in the Sentinels' `sentinel monitor` line)")
		}
		o, err := redis.ParseFailoverURL(u.String())
		if err != nil {
			return fail("%s", goRedisDetail(raw, err))
		}
		t.failover, t.DB, t.MasterName = o, o.DB, o.MasterName
		t.Addrs = o.SentinelAddrs
	default:
		t.Mode = Cluster
		if p := strings.Trim(u.Path, "/"); p != "" {
			return fail("a cluster URL has no database number (Redis Cluster only has database 0); remove /%s", p)
		}
		o, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return fail("%s", goRedisDetail(raw, err))
		}
		t.cluster = o
		t.Addrs = o.Addrs
	}
	return t, nil
}

// looksLikeHostPort reports whether s is "host:port", a URL missing its scheme.
func looksLikeHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	_, err = strconv.Atoi(port)
	return err == nil
}

// mayHoldSecret reports whether raw has user info or options: the parts
// where a password can hide. Parser messages about such a URL are not
// repeated, since they can quote a slice of the password.
func mayHoldSecret(raw string) bool {
	return strings.ContainsAny(raw, "@?#")
}

// parseDetail explains a url.Parse failure by parsing the redacted URL
// again: its message then cannot quote a password.
func parseDetail(redacted string, err error) string {
	_, rerr := url.Parse(redacted)
	var ue *url.Error
	if rerr == nil || !errors.As(rerr, &ue) {
		return ""
	}
	return " (" + ue.Err.Error() + ")"
}

// goRedisDetail turns a go-redis URL error into a message. go-redis quotes
// option names, database numbers and addresses, never the user info, but a
// malformed URL can put part of a password there, so those are generic.
func goRedisDetail(raw string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	switch {
	case strings.HasPrefix(msg, "unexpected option"):
		return msg + " (see the options of go-redis's ParseURL: dial_timeout, read_timeout, pool_size, skip_verify, ...)"
	case strings.HasPrefix(msg, "invalid database number"), strings.HasPrefix(msg, "invalid URL path"):
		if mayHoldSecret(raw) && strings.Contains(raw, "@") {
			return "the path is not a database number; write /0 to /15 after the host"
		}
		return msg + "; the path is a database number like /0"
	}
	if strings.Contains(raw, "@") {
		return "cannot be parsed; check the host, port and options"
	}
	return msg
}

// noMaintNotifications turns off go-redis's maintenance notifications (a
// Redis Enterprise feature): in its default "auto" mode, a server that
// refuses the handshake (any Redis before 8) makes go-redis rewrite the
// client's options while other connections being set up read them, a
// data race the race detector sees when two connections open at once
// (the adapter's subscriber and its stream reader do, at start).
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}
