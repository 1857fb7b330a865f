// Package control is the daemon's control API, the contract between the
// daemon and what operates it (the CLI and monit; scripts and the chaos
// suite read the same types from `frutos status --json`):
// its routes, the request and response types, the error codes, and Client,
// a typed client that speaks HTTP+JSON over the daemon's owner-only unix
// socket. The daemon registers its handlers under the same Route constants
// the Client sends to, so neither side writes a path of its own. The
// workers do not use it (their contract with the daemon is
// internal/workerproto).
//
// Every answer is JSON: a 2xx with the response type, or an Error with a
// Code. An operation (Start, Stop, Reload...) runs to its end on the daemon
// even if the client goes away, and answers a Result with the status after.
package control

import (
	"encoding/json"
	"strings"
	"time"
)

// SocketName is the control socket's file name in the state home.
const SocketName = "daemon.sock"

// Route is one request of the control API: its method and path, written as
// a net/http ServeMux pattern ("POST /v1/stop").
type Route string

// The control API's routes.
const (
	RoutePing       Route = "GET /v1/ping"         // -> {"pid": N}
	RouteStatus     Route = "GET /v1/status"       // -> Status
	RouteStart      Route = "POST /v1/start"       // StartRequest -> Result
	RouteStartCheck Route = "POST /v1/start/check" // StartRequest -> StartPlan; nothing starts
	RouteStop       Route = "POST /v1/stop"        // Target -> Result
	RouteRestart    Route = "POST /v1/restart"     // Target -> Result
	RouteReload     Route = "POST /v1/reload"      // ReloadRequest -> Result
	RouteScale      Route = "POST /v1/scale"       // ScaleRequest -> Result
	RouteDelete     Route = "POST /v1/delete"      // {} -> Result
	RouteFlush      Route = "POST /v1/flush"       // Target -> Result with Files
	RouteSave       Route = "POST /v1/save"        // {} -> Result
	RouteKill       Route = "POST /v1/kill"        // {} -> Result; then the daemon exits
	RouteUpdate     Route = "POST /v1/update"      // {} -> UpdateResult; then the daemon exits, replaced
	RouteRedis      Route = "GET /v1/redis"        // -> RedisURL (password included: the socket is owner-only)
	RouteToken      Route = "POST /v1/token"       // TokenRequest -> Token
)

// Routes lists every route of the API (for tests of both sides).
func Routes() []Route {
	return []Route{RoutePing, RouteStatus, RouteStart, RouteStartCheck, RouteStop, RouteRestart, RouteReload,
		RouteScale, RouteDelete, RouteFlush, RouteSave, RouteKill, RouteUpdate, RouteRedis, RouteToken}
}

// Method is the route's HTTP method.
func (r Route) Method() string {
	method, _, _ := strings.Cut(string(r), " ")
	return method
}

// Path is the route's URL path.
func (r Route) Path() string {
	_, path, _ := strings.Cut(string(r), " ")
	return path
}

// Worker states, PM2's words.
const (
	StatusLaunching = "launching"
	StatusOnline    = "online"
	StatusStopping  = "stopping"
	StatusStopped   = "stopped"
	StatusErrored   = "errored"
)

// Worker is one row of the process table.
type Worker struct {
	ID          int            `json:"id"`
	PID         int            `json:"pid"`
	Status      string         `json:"status"`
	Restarts    int            `json:"restarts"`
	UptimeSec   float64        `json:"uptime_sec"`
	CPU         float64        `json:"cpu"`    // percent of one core
	Memory      uint64         `json:"memory"` // RSS bytes
	Connections int            `json:"connections"`
	Transports  map[string]int `json:"transports,omitempty"`
	Delivered   uint64         `json:"events_delivered"`
	EventsPerS  float64        `json:"events_per_sec"`
	Ready       bool           `json:"ready"`
	Draining    bool           `json:"draining"`
	Redis       string         `json:"redis,omitempty"` // the worker's adapter state
	Generation  int            `json:"generation"`      // bumps on every restart or reload
	// Adopted: this daemon did not start the process; it took it over
	// from a daemon that died or was updated (it holds a lease on it).
	Adopted  bool   `json:"adopted,omitempty"`
	LastExit string `json:"last_exit,omitempty"`
}

// Daemon describes the supervisor process itself.
type Daemon struct {
	PID       int     `json:"pid"`
	Memory    uint64  `json:"memory"`
	CPU       float64 `json:"cpu"`
	UptimeSec float64 `json:"uptime_sec"`
	Version   string  `json:"version"`
	Home      string  `json:"home"`
	// Goroutines and FDs of the daemon, for leak hunting (make soak).
	Goroutines int `json:"goroutines"`
	FDs        int `json:"fds"`
}

// Redis is the cluster's Redis as the daemon sees it.
type Redis struct {
	URL       string  `json:"url"` // password redacted
	Embedded  bool    `json:"embedded"`
	Up        bool    `json:"up"`
	LatencyMs float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

// Status is the answer to RouteStatus.
type Status struct {
	App       string `json:"app"`
	Env       string `json:"env"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
	Instances int    `json:"instances"` // worker ids in the table (online or not)
	LogsDir   string `json:"logs_dir"`
	// LogTimestamps and LogDateFormat say how the log files' lines start.
	LogTimestamps bool     `json:"log_timestamps"`
	LogDateFormat string   `json:"log_date_format,omitempty"`
	Daemon        Daemon   `json:"daemon"`
	Redis         Redis    `json:"redis"`
	Workers       []Worker `json:"workers"`
	// Load is how the running app's configuration was loaded (start's
	// --config, --env, --instances, --port; the --redis URL with its
	// password redacted): reload loads it the same way, save keeps it.
	Load LoadOptions `json:"load"`
}

// StartRequest starts (or adopts the settings of) the app. Config is the
// resolved configuration (configs.Config as JSON, secrets included: the
// socket is owner-only); Load says how it was loaded, so that resurrect
// and reload can load it again.
type StartRequest struct {
	Config json.RawMessage `json:"config"`
	Load   LoadOptions     `json:"load"`
}

// StartPlan is the answer to RouteStartCheck: what RouteStart would do with
// the same request. A start the daemon would refuse (an app already runs,
// more workers than the machine holds) is refused the same way, with
// nothing started, so that the CLI says "starting" only when it will.
// RouteStart checks again: a plan promises nothing.
type StartPlan struct {
	// Resume lists the stopped workers the start would start again (PM2's
	// start); empty, it would start the app.
	Resume []int `json:"resume,omitempty"`
}

// LoadOptions is what the CLI loaded the configuration from, without
// secrets: kept in dump.json.
type LoadOptions struct {
	File      string `json:"file,omitempty"`
	Env       string `json:"env,omitempty"`
	Instances string `json:"instances,omitempty"`
	Port      int    `json:"port,omitempty"`
	RedisURL  string `json:"redis_url,omitempty"` // kept only when given by flag; may hold a password
}

// RedisURL is the answer to RouteRedis: the URL of the Redis the running
// app uses (the embedded one's in development), so that ping and emit
// reach it from a shell that has no REDIS_URL. It may hold a password:
// never print it unredacted.
type RedisURL struct {
	URL      string `json:"url"`
	Embedded bool   `json:"embedded"`
}

// TokenRequest asks the daemon to sign a test JWT with the secret its
// workers verify (frutos token): a shell without the FRUTOS_AUTH_SECRET of
// the start would sign with another one.
type TokenRequest struct {
	Sub    string  `json:"sub"`
	Role   string  `json:"role"`
	TTLSec float64 `json:"ttl_sec"`
}

// Token is the answer to RouteToken. Secret says which secret signed it
// (its source, never its value): "the configured secret
// (FRUTOS_AUTH_SECRET)" or "development secret <home>/dev-secret".
type Token struct {
	Token  string `json:"token"`
	Secret string `json:"secret"`
}

// Target selects workers: an id, or all of them.
type Target struct {
	All bool `json:"all,omitempty"`
	ID  int  `json:"id"`
}

// ScaleRequest changes the number of workers: to N, or by +N / -N.
type ScaleRequest struct {
	Mode string `json:"mode"` // "set", "add" or "sub"
	N    int    `json:"n"`
}

// ReloadRequest replaces workers one at a time with zero downtime.
// Config, when set, is a new resolved configuration to apply.
type ReloadRequest struct {
	Config json.RawMessage `json:"config,omitempty"`
	Load   *LoadOptions    `json:"load,omitempty"`
}

// Result is the answer of an operation: what it did, and the status after.
type Result struct {
	Message string   `json:"message"`
	Files   []string `json:"files,omitempty"` // flush: the files emptied
	Status  Status   `json:"status"`
}

// UpdateResult is the answer to RouteUpdate: the daemon that answers has
// handed its listeners and workers to a new daemon (the binary found now)
// and exits; the new one answers from then on.
type UpdateResult struct {
	Message string `json:"message"`
	OldPID  int    `json:"old_pid"`
	NewPID  int    `json:"new_pid"`
	// Adopted is how many worker processes the new daemon took over.
	Adopted int `json:"adopted"`
}

// Error codes of the control API, stable for clients.
const (
	CodeBadRequest       = "bad_request"       // the request is wrong; do not retry it as is
	CodeNotFound         = "not_found"         // no such worker, or no app started
	CodeConflict         = "conflict"          // the state forbids it (already running, port taken)
	CodeFailed           = "failed"            // it was tried and failed
	CodeRedisUnavailable = "redis_unavailable" // Redis does not answer
)

// Error is the body of every non-2xx answer.
type Error struct {
	Code    string `json:"code"` // one of the Code constants
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// StartTimeout is how long the daemon gives a start (RouteStart) before it
// undoes it and answers an error: every worker has listen_timeout to get
// ready, started side by side, plus time to spawn them. The CLI waits a
// little longer than this, so that a start it gave up on is never left
// running.
func StartTimeout(listenTimeout time.Duration) time.Duration {
	return 2*listenTimeout + 20*time.Second
}

// DefaultTimeout bounds a control request when the caller gives none.
const DefaultTimeout = 10 * time.Second
