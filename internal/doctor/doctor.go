// Package doctor is `frutos doctor`: the seed's deployment checklist as
// one command. Gather reads the machine, Redis, the configuration and the
// daemon into Facts (I/O, bounded by a context); Checks turns Facts into
// one Result per check, ok / warn / fail with the fix (pure, so that every
// failing case is a table test).
package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one line of the report. Fix is what to do ("" when ok).
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Facts are what Gather found. An Err field set means that fact could not
// be read; a zero value with no error means "not there".
type Facts struct {
	Env       string // development or production
	ConfigErr error  // the configuration does not load (the other facts are then empty)

	RedisURL      string // redacted
	RedisEmbedded bool
	RedisErr      error
	RedisVersion  string
	RedisMode     string
	Sharded       bool   // redis.sharded
	MaxmemPolicy  string // "" when CONFIG GET is refused
	PubSubHard    int64  // client-output-buffer-limit pubsub hard limit, bytes; -1 unknown
	ClockSkew     time.Duration
	ClockKnown    bool

	SecretLen       int
	SecretGenerated bool // the development secret of the home
	SecretEnv       string
	CORS            []string

	NoFile         uint64 // RLIMIT_NOFILE soft of this process (workers inherit the daemon's)
	Somaxconn      int    // -1 unknown
	MaxConnections int    // limits.max_connections per worker
	Workers        int    // the configured instances

	LogDir     string
	LogDirErr  error  // not writable
	LogDirFree uint64 // bytes free

	UnitPath    string // "" when no frutos.service was found
	UnitEnabled bool

	DaemonErr error // nil: it answered
	Status    control.Status
}

// Minimums the checks hold to.
const (
	MinSecret        = 32
	MinRedisSharded  = 7
	MinPubSubBuffer  = 32 << 20 // Redis's default hard limit for pubsub clients
	MinSomaxconn     = 1024
	MinLogFree       = 1 << 30
	FailLogFree      = 100 << 20
	MaxClockSkew     = 2 * time.Second
	fdsPerWorkerBase = 100 // a worker's own: Redis, listeners, logs, its control socket
)

// Checks evaluates f: every check, in a stable order.
func Checks(f Facts) []Result {
	if f.ConfigErr != nil {
		return []Result{{Check: "config", Status: Fail, Detail: f.ConfigErr.Error(),
			Fix: "fix the configuration (the message names the file, line and field)"}}
	}
	prod := f.Env == "production"
	var out []Result
	add := func(check string, s Status, detail, fix string) {
		out = append(out, Result{Check: check, Status: s, Detail: detail, Fix: fix})
	}

	// Redis: reachable, version, mode.
	switch {
	case f.RedisErr != nil:
		add("redis", Fail, f.RedisErr.Error(), "check it with `frutos ping`; start Redis or fix REDIS_URL")
	case f.RedisEmbedded && prod:
		add("redis", Fail, "the embedded development Redis", "production needs a real Redis shared by every host: set REDIS_URL")
	case f.RedisEmbedded && f.RedisURL == "":
		add("redis", Warn, "none configured: frutos start runs the embedded development Redis", "fine on one machine; set REDIS_URL to a real Redis before going to production")
	case f.RedisEmbedded:
		add("redis", Warn, "the embedded development Redis at "+f.RedisURL, "fine on one machine; set REDIS_URL to a real Redis before going to production")
	case f.Sharded && major(f.RedisVersion) < MinRedisSharded:
		add("redis", Fail, fmt.Sprintf("Redis %s (%s) at %s; redis.sharded needs Redis %d", orUnknown(f.RedisVersion), orUnknown(f.RedisMode), f.RedisURL, MinRedisSharded),
			fmt.Sprintf("upgrade Redis to %d, or set redis.sharded: false", MinRedisSharded))
	default:
		add("redis", OK, fmt.Sprintf("Redis %s (%s) at %s", orUnknown(f.RedisVersion), orUnknown(f.RedisMode), f.RedisURL), "")
	}
	if f.RedisErr == nil && !f.RedisEmbedded {
		switch p := f.MaxmemPolicy; {
		case p == "":
			add("redis memory", Warn, "cannot read maxmemory-policy (CONFIG GET refused)", "check by hand: redis-cli CONFIG GET maxmemory-policy")
		case strings.HasPrefix(p, "allkeys-"):
			add("redis memory", Warn, "maxmemory-policy "+p+": Redis may evict the sessions and streams frutos keeps",
				"use noeviction or a volatile-* policy (CONFIG SET maxmemory-policy noeviction, and in redis.conf)")
		default:
			add("redis memory", OK, "maxmemory-policy "+p, "")
		}
		switch h := f.PubSubHard; {
		case h < 0:
			add("redis pubsub buffer", Warn, "cannot read client-output-buffer-limit", "check by hand: redis-cli CONFIG GET client-output-buffer-limit")
		case h > 0 && h < MinPubSubBuffer:
			add("redis pubsub buffer", Fail, fmt.Sprintf("client-output-buffer-limit pubsub hard limit %d MiB: a burst of broadcasts disconnects the workers' subscriptions", h>>20),
				"CONFIG SET client-output-buffer-limit \"pubsub 64mb 16mb 60\" (and in redis.conf)")
		default:
			add("redis pubsub buffer", OK, "client-output-buffer-limit pubsub "+limitText(h), "")
		}
	}
	if f.RedisErr == nil && f.ClockKnown {
		skew := f.ClockSkew.Abs()
		if skew > MaxClockSkew {
			add("clock", Fail, fmt.Sprintf("this host's clock is %s off Redis's: token expiry is judged wrong", f.ClockSkew.Round(time.Millisecond)),
				"run NTP (timedatectl set-ntp true) on this host and Redis's")
		} else {
			add("clock", OK, fmt.Sprintf("%s off Redis's clock", f.ClockSkew.Round(time.Millisecond)), "")
		}
	}

	// Auth secret.
	switch {
	case f.SecretGenerated && prod:
		add("auth secret", Fail, f.SecretEnv+" is not set", "export "+f.SecretEnv+"=<the secret your backend signs tokens with>")
	case f.SecretGenerated:
		add("auth secret", Warn, "the development secret of the state home", "set "+f.SecretEnv+" to your backend's secret to accept its tokens")
	case f.SecretLen < MinSecret && prod:
		add("auth secret", Fail, fmt.Sprintf("%s holds %s; at least %d are needed", f.SecretEnv, plural.Count(f.SecretLen, "byte", "bytes"), MinSecret), "make one with `openssl rand -hex 32` and give your backend the same")
	case f.SecretLen < MinSecret:
		add("auth secret", Warn, fmt.Sprintf("%s holds %s; production needs %d", f.SecretEnv, plural.Count(f.SecretLen, "byte", "bytes"), MinSecret), "make one with `openssl rand -hex 32`")
	default:
		add("auth secret", OK, fmt.Sprintf("%s set, %s", f.SecretEnv, plural.Count(f.SecretLen, "byte", "bytes")), "")
	}

	// CORS.
	star := false
	for _, o := range f.CORS {
		star = star || o == "*"
	}
	switch {
	case star && prod:
		add("cors", Fail, `cors.origins has "*": any website can connect`, "list your app's exact origins (FRUTOS_CORS_ORIGINS=https://app.example.com)")
	case star:
		add("cors", Warn, `cors.origins has "*" (development)`, "list exact origins before production")
	case len(f.CORS) == 0:
		add("cors", Warn, "no origin allowed: browsers on another origin cannot connect", "set cors.origins or FRUTOS_CORS_ORIGINS")
	default:
		add("cors", OK, strings.Join(f.CORS, ", "), "")
	}

	// Descriptors and the accept queue.
	need := uint64(f.MaxConnections) + fdsPerWorkerBase
	if f.NoFile < need {
		add("open files", Fail, fmt.Sprintf("ulimit -n is %d; a worker needs %d (limits.max_connections %d + %d)", f.NoFile, need, f.MaxConnections, fdsPerWorkerBase),
			fmt.Sprintf("raise it: LimitNOFILE=%d in the unit, or ulimit -n %d before frutos start; or lower limits.max_connections", need*2, need*2))
	} else {
		add("open files", OK, fmt.Sprintf("ulimit -n %d for %s per worker", f.NoFile, plural.Count(f.MaxConnections, "connection", "connections")), "")
	}
	switch {
	case f.Somaxconn < 0:
		add("somaxconn", Warn, "cannot read net.core.somaxconn", "")
	case f.Somaxconn < MinSomaxconn:
		add("somaxconn", Warn, fmt.Sprintf("net.core.somaxconn is %d: reconnect storms after a reload overflow the accept queue", f.Somaxconn),
			fmt.Sprintf("sysctl -w net.core.somaxconn=4096 (and in /etc/sysctl.d) for %s x %s", plural.Count(max(f.Workers, 1), "worker", "workers"), plural.Count(f.MaxConnections, "connection", "connections")))
	default:
		add("somaxconn", OK, fmt.Sprintf("net.core.somaxconn %d", f.Somaxconn), "")
	}

	// Logs.
	switch {
	case f.LogDirErr != nil:
		add("logs", Fail, fmt.Sprintf("%s is not writable: %v", f.LogDir, f.LogDirErr), "fix its owner or permissions, or set logs.dir")
	case f.LogDirFree < FailLogFree:
		add("logs", Fail, fmt.Sprintf("%s has %d MiB free", f.LogDir, f.LogDirFree>>20), "free space, or lower logs.max_size and logs.max_files")
	case f.LogDirFree < MinLogFree:
		add("logs", Warn, fmt.Sprintf("%s has %d MiB free", f.LogDir, f.LogDirFree>>20), "free space, or lower logs.max_size and logs.max_files")
	default:
		add("logs", OK, fmt.Sprintf("%s writable, %d GiB free", f.LogDir, f.LogDirFree>>30), "")
	}

	// Startup unit.
	switch {
	case f.UnitPath == "":
		s := Warn
		if prod {
			s = Fail
		}
		add("startup", s, "no frutos.service unit: the cluster does not come back after a reboot", "frutos save && sudo frutos startup --install")
	case !f.UnitEnabled:
		add("startup", Warn, f.UnitPath+" is installed but not enabled", "systemctl enable frutos (systemctl --user enable frutos for a user unit)")
	default:
		add("startup", OK, f.UnitPath+" enabled", "")
	}

	// Daemon and workers.
	switch {
	case f.DaemonErr != nil:
		add("daemon", Warn, "not running: "+f.DaemonErr.Error(), "frutos start")
	case len(f.Status.Workers) == 0:
		add("daemon", Warn, fmt.Sprintf("pid %d runs no app", f.Status.Daemon.PID), "frutos start (or frutos resurrect)")
	default:
		online, bad := 0, []string{}
		for _, w := range f.Status.Workers {
			switch w.Status {
			case control.StatusOnline:
				online++
			case control.StatusErrored:
				bad = append(bad, fmt.Sprintf("%d errored (%s)", w.ID, orUnknown(w.LastExit)))
			default:
				bad = append(bad, fmt.Sprintf("%d %s", w.ID, w.Status))
			}
			if w.Redis != "" && w.Redis != "connected" && w.Status == control.StatusOnline {
				bad = append(bad, fmt.Sprintf("%d redis %s", w.ID, w.Redis))
			}
		}
		detail := fmt.Sprintf("pid %d, %d/%d workers online", f.Status.Daemon.PID, online, len(f.Status.Workers))
		if len(bad) > 0 {
			add("workers", Fail, detail+"; "+strings.Join(bad, ", "), "see frutos describe <id> and frutos logs <id> --err; then frutos restart <id>")
		} else {
			add("workers", OK, detail, "")
		}
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// major is the major version of "7.2.4" (0 when unknown).
func major(v string) int {
	head, _, _ := strings.Cut(v, ".")
	n, _ := strconv.Atoi(head)
	return n
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func limitText(h int64) string {
	if h == 0 {
		return "hard limit none"
	}
	return fmt.Sprintf("hard limit %d MiB", h>>20)
}
