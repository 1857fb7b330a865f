package configs

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/frutos/frutos/internal/plural"
)

// Validate checks every setting and the production rules (a JWT secret, a
// real Redis, exact CORS origins). It returns nil, one *Error, or several
// joined. Load already calls it, with file positions in the messages; call it
// yourself on a Config built some other way.
func (c *Config) Validate() error {
	k := checker{}
	k.check(c)
	if len(k.errs) > 0 {
		return joinErrs(k.errs)
	}
	return nil
}

var (
	envNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	appNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$`)
)

// checker collects validation errors, locating each through src: the place
// (file line, env var, flag) the offending value came from.
type checker struct {
	src  map[string]Error
	file string // File for values with no known source ("env FRUTOS_CONFIG")
	errs []error
}

func (k *checker) failf(path, format string, args ...any) {
	e, ok := k.src[path]
	if !ok {
		e = Error{File: k.file, Field: path}
		if i := strings.IndexByte(path, '['); i > 0 {
			// A list item with no position of its own: point at the list.
			if list, ok := k.src[path[:i]]; ok {
				e = list
				e.Field += path[i:]
			}
		}
	}
	e.Msg = fmt.Sprintf(format, args...)
	k.errs = append(k.errs, &e)
}

func (k *checker) positive(path string, d Duration) {
	if d <= 0 {
		k.failf(path, "must be longer than 0 (got %s)", d)
	}
}

// MinProductionSecret is the shortest JWT secret production accepts, in
// bytes: HS256's key should be at least as long as its 32-byte hash (RFC
// 7518 3.2); a one-character secret was accepted.
const MinProductionSecret = 32

func (k *checker) check(c *Config) {
	prod := c.Env == Production

	// Workers receive the settings as JSON, which turns bytes that are not
	// UTF-8 into U+FFFD: a secret would then differ between the daemon and
	// its workers. Say so instead of starting with a mangled value.
	texts := []struct{ path, val string }{{"home", c.Home}, {"redis.url", c.Redis.URL}, {"redis.key", c.Redis.Key},
		{"auth.secret", c.Auth.Secret}, {"logs.dir", c.Logs.Dir}, {"logs.date_format", c.Logs.DateFormat},
		{"redis.streams.name", c.Redis.Streams.Name}, {"redis.streams.session_prefix", c.Redis.Streams.SessionPrefix},
		{"emit.key", c.Emit.Key}}
	if c.Auth.Leeway < 0 || c.Auth.Leeway.Duration() > 5*time.Minute {
		k.failf("auth.leeway", "must be between 0s and 5m (got %s): it only covers clock skew between your backend and this host", c.Auth.Leeway)
	}

	for i, o := range c.CORS.Origins {
		texts = append(texts, struct{ path, val string }{"cors.origins[" + strconv.Itoa(i) + "]", o})
	}
	for _, s := range texts {
		if !utf8.ValidString(s.val) {
			k.failf(s.path, "holds bytes that are not UTF-8 text; write it in UTF-8")
		}
	}

	if c.Env != Development && c.Env != Production {
		k.failf("env", "%q is not an env; use development or production", c.Env)
	}
	if !appNameRE.MatchString(c.App) {
		k.failf("app", "%q is not a usable name; use up to 64 letters, digits, '.', '_' or '-' (it names log files)", c.App)
	}
	if c.Instances != InstancesMax && c.Instances < 1 {
		k.failf("instances", "%d instances cannot serve anything; write a whole number >= 1, or max", int(c.Instances))
	}
	if msg := checkHost(c.Host); msg != "" {
		k.failf("host", "%s", msg)
	}
	if c.Port < 1 || c.Port > 65535 {
		k.failf("port", "%d is not a TCP port; use 1-65535", c.Port)
	}
	switch {
	case c.Home == "":
		k.failf("home", "empty; the state home is a folder like ~/.frutos")
	case !filepath.IsAbs(c.Home):
		k.failf("home", "%q is not an absolute path", c.Home)
	}

	switch {
	case c.Redis.URL != "":
		if msg := checkRedisURL(c.Redis.URL); msg != "" {
			k.failf("redis.url", "%s", msg)
		}
	case prod:
		k.failf("redis.url", "empty; production needs a real Redis shared by every host "+
			"(the embedded one is for development only): set REDIS_URL or redis.url under env.production")
	}
	if c.Redis.Key == "" {
		k.failf("redis.key", "empty; the Node adapter's default is socket.io")
	}
	k.positive("redis.request_timeout", c.Redis.RequestTimeout)
	k.checkAdapter(c.Redis)
	k.checkEmit(c.Emit)

	if !envNameRE.MatchString(c.Auth.SecretEnv) {
		k.failf("auth.secret_env", "%q is not an environment variable name; secret_env names the variable "+
			"(like %s) and the secret goes in that variable", c.Auth.SecretEnv, DefaultSecretEnv)
	} else if prod && c.Auth.Secret == "" {
		k.failf("auth.secret_env", "%s is not set; production needs a JWT secret: export %s=<the secret your backend signs tokens with>",
			c.Auth.SecretEnv, c.Auth.SecretEnv)
	} else if prod && len(c.Auth.Secret) < MinProductionSecret {
		// The length only: never the secret, nor a part of it.
		k.failf("auth.secret_env", "%s holds %s; production needs a secret of at least %d bytes (an HS256 key as long as its hash): "+
			"make one with `openssl rand -hex 32` and give your backend the same", c.Auth.SecretEnv, plural.Count(len(c.Auth.Secret), "byte", "bytes"), MinProductionSecret)
	}

	for i, o := range c.CORS.Origins {
		path := "cors.origins[" + strconv.Itoa(i) + "]"
		if o == "*" {
			if prod {
				k.failf(path, `"*" lets any website connect; production needs exact origins like https://app.example.com `+
					"(cors.origins under env.production, or FRUTOS_CORS_ORIGINS)")
			}
			continue
		}
		if msg := checkOrigin(o); msg != "" {
			k.failf(path, "%s", msg)
		}
	}

	if c.Limits.MaxPayload <= 0 {
		k.failf("limits.max_payload", "must be more than 0 (got %s); the Socket.IO default is 1MB", c.Limits.MaxPayload)
	}
	k.positive("limits.ping_interval", c.Limits.PingInterval)
	k.positive("limits.ping_timeout", c.Limits.PingTimeout)
	k.positive("limits.connect_timeout", c.Limits.ConnectTimeout)
	if c.Limits.MaxBuffered < 0 {
		k.failf("limits.max_buffered", "%s is negative; write 0 for unlimited", c.Limits.MaxBuffered)
	}
	if c.Limits.MaxConnections < 0 {
		k.failf("limits.max_connections", "%d is negative; write 0 for unlimited", c.Limits.MaxConnections)
	}

	k.positive("recovery.max_disconnection", c.Recovery.MaxDisconnection)

	if c.Logs.Dir != "" && !filepath.IsAbs(c.Logs.Dir) {
		k.failf("logs.dir", "%q is not an absolute path", c.Logs.Dir)
	}
	if c.Logs.MaxSize <= 0 {
		k.failf("logs.max_size", "must be more than 0 (got %s)", c.Logs.MaxSize)
	}
	if c.Logs.MaxFiles < 1 {
		k.failf("logs.max_files", "%d; keep at least 1 rotated file", c.Logs.MaxFiles)
	}
	if msg := checkLayout(c.Logs.DateFormat); msg != "" {
		k.failf("logs.date_format", "%s", msg)
	}

	r := c.Restart
	if r.MaxRestarts < 1 {
		k.failf("restart.max_restarts", "%d; allow at least 1 quick failure before a worker is errored", r.MaxRestarts)
	}
	k.positive("restart.min_uptime", r.MinUptime)
	k.positive("restart.backoff_initial", r.BackoffInitial)
	k.positive("restart.backoff_max", r.BackoffMax)
	if r.BackoffInitial > 0 && r.BackoffMax > 0 && r.BackoffInitial > r.BackoffMax {
		// Point at whichever of the two was written down; the other is a default.
		path := "restart.backoff_initial"
		if _, set := k.src[path]; !set {
			if _, set := k.src["restart.backoff_max"]; set {
				path = "restart.backoff_max"
			}
		}
		k.failf(path, "backoff_initial (%s) is more than backoff_max (%s); the delay starts at backoff_initial and doubles up to backoff_max",
			r.BackoffInitial, r.BackoffMax)
	}
	k.positive("restart.kill_timeout", r.KillTimeout)
	k.positive("restart.listen_timeout", r.ListenTimeout)
	if r.MaxMemoryRestart < 0 {
		k.failf("restart.max_memory_restart", "%d is negative; write 0 to turn it off", int64(r.MaxMemoryRestart))
	}
	if r.OrphanGrace < 0 {
		k.failf("restart.orphan_grace", "%s is negative; write 0 for workers that drain as soon as their daemon is gone", r.OrphanGrace)
	}
	k.checkNode(c.Node)
	k.checkAdminUI(c.AdminUI, prod)
}

// checkAdminUI: a username, a hash that bcrypt can read, and in
// production no dashboard without a login. Messages never show the hash.
func (k *checker) checkAdminUI(a AdminUI, prod bool) {
	if a.PasswordHash != "" {
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			k.failf("admin_ui.password_hash", "%s does not hold a bcrypt hash (like $2b$10$...); make one with: frutos admin-ui --hash-password",
				AdminUIPasswordHashEnv)
		}
	}
	if !a.Enabled {
		return
	}
	switch {
	case a.Username == "" || !utf8.ValidString(a.Username):
		k.failf("admin_ui.username", "empty or not UTF-8; the Admin UI needs a username (admin by default)")
	case prod && a.PasswordHash == "":
		k.failf("admin_ui.enabled", "the Admin UI has no password in production; export %s=<bcrypt hash> "+
			"(frutos admin-ui --hash-password makes one), or turn it off", AdminUIPasswordHashEnv)
	}
}

// checkAdapter checks redis.adapter and, for streams, its settings.
func (k *checker) checkAdapter(r Redis) {
	switch r.Adapter {
	case AdapterPubSub:
		return
	case AdapterStreams:
	default:
		k.failf("redis.adapter", "%q is not an adapter; use %s (the default: @socket.io/redis-adapter, which Node's "+
			"@socket.io/redis-emitter reaches) or %s (@socket.io/redis-streams-adapter: nothing lost when a worker dies or Redis blinks)",
			r.Adapter, AdapterPubSub, AdapterStreams)
		return
	}
	s := r.Streams
	if strings.TrimSpace(s.Name) == "" {
		k.failf("redis.streams.name", "empty; the Node adapter's default is socket.io")
	}
	if s.Count < 1 || s.Count > 1024 {
		k.failf("redis.streams.count", "%d; write a number of streams from 1 to 1024 (Node's streamCount, 1 by default)", s.Count)
	}
	if s.MaxLen < 100 {
		k.failf("redis.streams.max_len", "%d is too short a stream to recover anything; write at least 100 (Node's default is 10000)", s.MaxLen)
	}
	if s.SessionPrefix == "" {
		k.failf("redis.streams.session_prefix", "empty; the Node adapter's default is sio:session:")
	}
}

// MinEmitKey is the shortest bearer key the emit endpoint accepts.
const MinEmitKey = 16

// checkEmit checks the HTTP emit endpoint: an address, and a key when it
// listens (it never runs open).
func (k *checker) checkEmit(e Emit) {
	if !envNameRE.MatchString(e.KeyEnv) {
		k.failf("emit.key_env", "%q is not an environment variable name; key_env names the variable (like %s) and the key goes in that variable",
			e.KeyEnv, DefaultEmitKeyEnv)
		return
	}
	if e.Listen == "" {
		return
	}
	if host, port, err := net.SplitHostPort(e.Listen); err != nil || port == "" {
		k.failf("emit.listen", "%q is not host:port; write one like 127.0.0.1:3001", e.Listen)
	} else if msg := checkHost(host); host != "" && msg != "" {
		k.failf("emit.listen", "%s", msg)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		k.failf("emit.listen", "%q: %s is not a TCP port", e.Listen, port)
	}
	// Point at key_env when it was written down, else at listen.
	path := "emit.key_env"
	if _, set := k.src[path]; !set {
		if _, set := k.src["emit.listen"]; set {
			path = "emit.listen"
		}
	}
	switch {
	case e.Key == "":
		k.failf(path, "%s is not set; the emit endpoint (emit.listen) never runs without a key: export %s=<a random key of %d characters or more>",
			e.KeyEnv, e.KeyEnv, MinEmitKey)
	case len(e.Key) < MinEmitKey:
		k.failf(path, "the key in %s has %d characters; use a random key of %d or more (openssl rand -hex 32)",
			e.KeyEnv, len(e.Key), MinEmitKey)
	}
}

// checkNode checks the fleet settings: a name others can read, an address
// with a port, and a TTL that survives a missed heartbeat or two.
func (k *checker) checkNode(n Node) {
	if n.Name != "" && !appNameRE.MatchString(n.Name) {
		k.failf("node.name", "%q is not a usable name; use up to 64 letters, digits, '.', '_' or '-'", n.Name)
	}
	if n.Address != "" {
		if _, port, err := net.SplitHostPort(n.Address); err != nil || port == "" {
			k.failf("node.address", "%q is not host:port; write the address the load balancer uses, like 10.0.0.7:3000", n.Address)
		}
	}
	k.positive("node.heartbeat", n.Heartbeat)
	k.positive("node.ttl", n.TTL)
	k.positive("node.retention", n.Retention)
	if n.Heartbeat > 0 && n.TTL > 0 && n.TTL < 2*n.Heartbeat {
		k.failf("node.ttl", "%s is less than twice node.heartbeat (%s); one late heartbeat would show the host gone", n.TTL, n.Heartbeat)
	}
	if n.TTL > 0 && n.Retention > 0 && n.Retention < n.TTL {
		k.failf("node.retention", "%s is less than node.ttl (%s); a gone host would vanish before it is shown gone", n.Retention, n.TTL)
	}
}

func checkHost(h string) string {
	switch {
	case h == "":
		return "empty; write 0.0.0.0 for every interface or 127.0.0.1 for this machine only"
	case net.ParseIP(h) != nil:
		return ""
	case strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") && net.ParseIP(h[1:len(h)-1]) != nil:
		return fmt.Sprintf("%q: write IPv6 addresses without brackets, like %s", h, h[1:len(h)-1])
	case strings.Contains(h, "://"):
		return fmt.Sprintf("%q is a URL; host is only an address like 0.0.0.0", h)
	case strings.Contains(h, ":"):
		return fmt.Sprintf("%q includes a port; put the port in port:", h)
	case !hostnameRE.MatchString(h):
		return fmt.Sprintf("%q is not an IP address or host name", h)
	}
	return ""
}

// checkRedisURL catches the common slips (no scheme, a wrong scheme); the
// redisctl package does the real parsing. Messages show the URL redacted.
func checkRedisURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	s := strings.ToLower(scheme)
	if !ok || !(strings.HasPrefix(s, "redis") || s == "unix") {
		return fmt.Sprintf("%q is not a Redis URL; write redis://host:6379 (rediss:// for TLS, unix:///path for a socket)", RedactURL(u))
	}
	if rest == "" {
		return fmt.Sprintf("%q has no host; write redis://host:6379", RedactURL(u))
	}
	return ""
}

// checkOrigin accepts what a browser sends in the Origin header:
// scheme://host[:port], lower case, nothing after.
func checkOrigin(o string) string {
	bad := fmt.Sprintf("%q is not an origin; write scheme://host[:port] like https://app.example.com, or *", o)
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Opaque != "" || u.Hostname() == "" || u.User != nil {
		return bad
	}
	if strings.Contains(u.Host, "*") {
		return fmt.Sprintf("%q: wildcard origins are not supported; list each origin", o)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return fmt.Sprintf("%q has a path; an origin is only scheme://host[:port]", o)
	}
	if u.Path == "/" {
		return fmt.Sprintf("%q ends with /; browsers send origins without it: write %q", o, strings.TrimSuffix(o, "/"))
	}
	if o != strings.ToLower(o) {
		return fmt.Sprintf("%q has capitals; browsers send origins in lower case: write %q", o, strings.ToLower(o))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return bad
	}
	return ""
}

func checkLayout(f string) string {
	const hint = "write a Go layout like 2006-01-02T15:04:05.000Z07:00"
	ref := time.Date(2001, 2, 3, 4, 5, 6, 7e6, time.UTC)
	switch {
	case f == "":
		return "empty; " + hint
	case strings.Contains(f, "%"):
		return fmt.Sprintf("%q looks like strftime; %s", f, hint)
	case ref.Format(f) == f:
		return fmt.Sprintf("%q has no date or time in it; %s", f, hint)
	}
	return ""
}
