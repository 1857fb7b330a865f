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

// Status asks for the process table.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.Do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Ping reports whether a daemon answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, "/v1/ping", nil, nil)
}

// Do sends one request; out, when non-nil, receives the JSON answer. A
// daemon that is not there is ErrNotRunning; a refusal is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
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
	req, err := http.NewRequestWithContext(ctx, method, "http://daemon"+path, body)
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
			return fmt.Errorf("the daemon did not answer %s %s in time: %w", method, path, ctx.Err())
		}
		return fmt.Errorf("control socket %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := &Error{}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
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

func isNotRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist)
}
