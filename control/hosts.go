package control

import "time"

// Host states in the fleet view.
const (
	HostUp      = "up"      // heartbeating
	HostGone    = "gone"    // silent for longer than its TTL: crashed, cut off, or killed -9
	HostStopped = "stopped" // said goodbye: frutos kill, delete, or a signal to the daemon
)

// Host is one daemon's record in the fleet registry: what it published in
// its last heartbeat, and (filled in by the reader) its state. Nothing
// secret is ever in it.
type Host struct {
	ID      string `json:"id"`   // unique per daemon run: <name>-<pid>-<random>
	Name    string `json:"name"` // node.name, or the machine's host name
	State   string `json:"state"`
	Address string `json:"address"` // where the load balancer reaches it (host:port)
	PID     int    `json:"pid"`     // the daemon's
	Version string `json:"version"`
	App     string `json:"app"`
	Env     string `json:"env"`

	StartedAt time.Time `json:"started_at"`
	LastSeen  time.Time `json:"last_seen"` // the host's clock at its last heartbeat
	// LastSeenSec is how long ago that was by the reader's clock (0 when
	// the clocks disagree the other way).
	LastSeenSec float64 `json:"last_seen_sec"`
	TTLSec      float64 `json:"ttl_sec"` // silent this long: gone

	WorkersOnline  int     `json:"workers_online"`
	Workers        int     `json:"workers"`
	Connections    int     `json:"connections"`
	CPU            float64 `json:"cpu"`              // daemon and workers, percent of one core
	Memory         uint64  `json:"memory"`           // daemon and workers, RSS bytes
	RedisLatencyMs float64 `json:"redis_latency_ms"` // 0 until the daemon's first Redis check
}

// Fleet is the answer of `frutos status --all-hosts --json`: every host
// registered in one Redis under one key prefix, sorted by name.
type Fleet struct {
	Redis string `json:"redis"` // the URL, password redacted
	Key   string `json:"key"`   // the Redis hash of the records
	Hosts []Host `json:"hosts"`
}
