package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotRunning means no daemon answers on the home's socket.
var ErrNotRunning = errors.New("the frutos daemon is not running")

// ErrUnknownRoute means the daemon does not serve the request: it runs an
// older frutos (`frutos update` replaces it).
var ErrUnknownRoute = errors.New("the daemon does not know this request (it runs an older frutos)")

// Client talks to the daemon of one state home.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon of home. It dials nothing yet.
func NewClient(home string) *Client {
	return NewClientForSocket(filepath.Join(home, SocketName))
}

// NewClientForSocket returns a client for the control socket at sock.
func NewClientForSocket(sock string) *Client {
	return &Client{
		socket: sock,
		http: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			DisableKeepAlives: true,
		}},
	}
}

// Socket is the control socket's path.
func (c *Client) Socket() string { return c.socket }

// Ping reports whether a daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, RoutePing, nil, nil)
}

// Status asks for the process table.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, RouteStatus, nil, &st)
	return st, err
}

// RedisURL asks for the running app's Redis URL (password included).
func (c *Client) RedisURL(ctx context.Context) (RedisURL, error) {
	var u RedisURL
	err := c.do(ctx, RouteRedis, nil, &u)
	return u, err
}

// Token has the daemon sign a test JWT with its workers' secret.
func (c *Client) Token(ctx context.Context, req TokenRequest) (Token, error) {
	var t Token
	err := c.do(ctx, RouteToken, req, &t)
	return t, err
}

// Start starts the app with a resolved configuration and waits until its
// workers are ready.
func (c *Client) Start(ctx context.Context, req StartRequest) (Result, error) {
	return c.op(ctx, RouteStart, req)
}

// CheckStart asks what Start would do with req, and whether the daemon
// would refuse it, without starting anything. A daemon older than this
// request answers ErrUnknownRoute.
func (c *Client) CheckStart(ctx context.Context, req StartRequest) (StartPlan, error) {
	var p StartPlan
	err := c.do(ctx, RouteStartCheck, req, &p)
	// The check never answers not_found; an older daemon does, for a
	// request it has no route for ("no control request at ...").
	var e *Error
	if errors.As(err, &e) && e.Code == CodeNotFound {
		return p, fmt.Errorf("%s: %w", RouteStartCheck, ErrUnknownRoute)
	}
	return p, err
}

// Stop stops workers gracefully; they stay in the table, stopped.
func (c *Client) Stop(ctx context.Context, t Target) (Result, error) {
	return c.op(ctx, RouteStop, t)
}

// Restart stops then starts workers (not zero-downtime: see Reload).
func (c *Client) Restart(ctx context.Context, t Target) (Result, error) {
	return c.op(ctx, RouteRestart, t)
}

// Reload replaces every worker, one at a time, with zero downtime.
func (c *Client) Reload(ctx context.Context, req ReloadRequest) (Result, error) {
	return c.op(ctx, RouteReload, req)
}

// Scale sets, adds or removes workers.
func (c *Client) Scale(ctx context.Context, req ScaleRequest) (Result, error) {
	return c.op(ctx, RouteScale, req)
}

// Delete stops every worker and closes the public port; the daemon stays.
func (c *Client) Delete(ctx context.Context) (Result, error) {
	return c.op(ctx, RouteDelete, struct{}{})
}

// Flush empties the log files of the target's workers; Result.Files names
// them.
func (c *Client) Flush(ctx context.Context, t Target) (Result, error) {
	return c.op(ctx, RouteFlush, t)
}

// Save writes the process list to dump.json.
func (c *Client) Save(ctx context.Context) (Result, error) {
	return c.op(ctx, RouteSave, struct{}{})
}

// Kill stops every worker, then the daemon: it has exited, or is about to,
// when Kill returns.
func (c *Client) Kill(ctx context.Context) (Result, error) {
	return c.op(ctx, RouteKill, struct{}{})
}

// Update asks the daemon to hand its listeners and workers to a new
// daemon run from the binary found now, and to exit. The new daemon
// answers on the same socket once Update returns.
func (c *Client) Update(ctx context.Context) (UpdateResult, error) {
	var res UpdateResult
	err := c.do(ctx, RouteUpdate, struct{}{}, &res)
	return res, err
}

// op sends an operation and returns its Result.
func (c *Client) op(ctx context.Context, r Route, in any) (Result, error) {
	var res Result
	err := c.do(ctx, r, in, &res)
	return res, err
}

// do sends one request; out, when non-nil, receives the JSON answer. A
// daemon that is not there is ErrNotRunning; a refusal is an *Error; with
// no deadline in ctx, DefaultTimeout bounds the request, and running out of
// time names the request.
func (c *Client) do(ctx context.Context, r Route, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method(), "http://daemon"+r.Path(), body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if isNotRunning(err) {
			return ErrNotRunning
		}
		if ctx.Err() != nil {
			return timedOut(r, ctx)
		}
		return fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		if ctx.Err() != nil {
			return timedOut(r, ctx)
		}
		return fmt.Errorf("read the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
				return fmt.Errorf("%s: %w", r, ErrUnknownRoute)
			}
			e = &Error{Code: CodeFailed, Message: fmt.Sprintf("daemon answered HTTP %d", resp.StatusCode)}
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode the daemon's answer: %w", err)
		}
	}
	return nil
}

func timedOut(r Route, ctx context.Context) error {
	return fmt.Errorf("the daemon did not answer %s in time: %w", r, ctx.Err())
}

func isNotRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
}
