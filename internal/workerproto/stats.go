package workerproto

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"time"
)

// Paths a worker serves.
const (
	// EnginePath is where Socket.IO is served, on the public listener and
	// on the private socket (the front door proxies it there).
	EnginePath = "/socket.io/"
	// AdminPrefix is where the admin handler is mounted on the private
	// socket; a standalone worker serves it at / of its Admin address.
	AdminPrefix = "/_frutos"
	// StatsRoute is the admin handler's stats endpoint.
	StatsRoute = "/stats"
	// StatsPath is the stats endpoint on the private socket.
	StatsPath = AdminPrefix + StatsRoute
)

// Stats is a worker's state, as GET StatsPath answers it in JSON. R is the
// Redis adapter's status: the worker sends its adapter's whole status
// (cluster/redisadapter.Status), a reader that needs only its state decodes
// RedisState. The JSON names are the contract; see the package doc for who
// reads what.
type Stats[R any] struct {
	PID         int               `json:"pid"`
	Ready       bool              `json:"ready"` // takes new sessions
	Draining    bool              `json:"draining"`
	Orphaned    bool              `json:"orphaned"` // no daemon holds it (see Liveness)
	UptimeSec   float64           `json:"uptime_sec"`
	Connections int               `json:"connections"` // Engine.IO sessions
	Sockets     int               `json:"sockets"`     // Socket.IO sockets on "/"
	Transports  map[string]int    `json:"transports"`  // sessions per transport
	Accepted    uint64            `json:"handshakes_accepted"`
	Refused     map[string]uint64 `json:"handshakes_refused"` // by reason
	// AuthFailures counts the "unauthorized" refusals by the code the
	// client was sent (jwtauth.Codes: missing_token, malformed, ...).
	AuthFailures map[string]uint64 `json:"auth_failures"`
	Delivered    uint64            `json:"events_delivered"`
	ClientIn     uint64            `json:"client_events_handled"`
	ClientIgn    uint64            `json:"client_events_ignored"`
	Disconnects  map[string]uint64 `json:"disconnects"` // sessions ended, by reason (cluster/engine.Reasons)
	Goroutines   int               `json:"goroutines"`
	HeapBytes    uint64            `json:"heap_bytes"`
	Redis        R                 `json:"redis"`
}

// RedisState is what the daemon reads of a worker's Redis adapter status:
// its state ("connecting", "connected", "reconnecting", "degraded").
type RedisState struct {
	State string `json:"state"`
}

// Polled is a worker's Stats as the daemon reads them.
type Polled = Stats[RedisState]

// maxStats bounds a stats answer.
const maxStats = 1 << 20

// Client asks one worker for its stats on its private socket: the
// daemon's side of StatsPath.
type Client struct {
	http *http.Client
}

// NewClient returns a client for the worker whose private socket is
// socket; it dials nothing yet, and keeps connections for the next polls.
func NewClient(socket string) *Client {
	return &Client{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}}
}

// Stats asks for the worker's stats once; ctx bounds the request.
func (c *Client) Stats(ctx context.Context) (*Polled, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://worker"+StatsPath, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st Polled
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStats)).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Close closes the connections kept for later polls.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// UntilEOF is the worker's side of the liveness rule: a context that ends
// with parent, or when stdin reaches EOF or fails (the daemon is gone).
func UntilEOF(parent context.Context, stdin io.Reader) context.Context {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		defer cancel()
		br := bufio.NewReader(stdin)
		for {
			if _, err := br.ReadByte(); err != nil {
				return
			}
		}
	}()
	return ctx
}
