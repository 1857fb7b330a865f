// Package sioclient is a small Socket.IO v5 (Engine.IO v4) client, over
// websocket or long-polling (no upgrade), for tests and for the load tool:
// it authenticates, answers heartbeats, receives events (binary included),
// emits, and acknowledges. It does not reconnect: a closed connection is
// reported and left closed.
package sioclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Transports a client can use (Options.Transport).
const (
	Websocket = "websocket"
	Polling   = "polling"
)

// Event is one event received from the server.
type Event struct {
	Name string
	Args []any
	// Raw is the JSON array of the arguments, set instead of Args when
	// Options.RawArgs is on (binary events are always decoded into Args).
	Raw string
	// Ack, when the server asked for an acknowledgement, sends it.
	Ack func(args ...any) error
}

// Options configures a connection.
type Options struct {
	// URL is the server's base URL (http://host:port); the path
	// /socket.io/ is added unless Path is set.
	URL  string
	Path string
	// Namespace defaults to "/".
	Namespace string
	// Auth is the CONNECT payload, e.g. {"token": "..."}.
	Auth map[string]any
	// Header is sent with the websocket handshake, or with every polling
	// request (Origin, Cookie...).
	Header http.Header
	// Dialer may set a local address (load tools spread over 127.0.0.0/8).
	NetDialer *net.Dialer
	// Transport is Websocket (the default) or Polling: Engine.IO
	// long-polling for the whole session, never upgraded.
	Transport string
	// KeepAlive (polling only) reuses HTTP connections between requests,
	// as a browser does. Without it every request has its own connection,
	// as socket.io-client has in Node (xmlhttprequest-ssl, agent: false):
	// behind a balancer that is not sticky, each request of a session may
	// reach another process.
	KeepAlive bool
	// RawArgs leaves the arguments of incoming events undecoded, in
	// Event.Raw: a load tool parses its own payload cheaper than into
	// []any.
	RawArgs bool
	// OnEvent receives every event, in order, on the read goroutine. It
	// must not block for long.
	OnEvent func(Event)
	// OnClose is called once when the connection ends, with the reason.
	OnClose func(error)
	// Resume asks the server to recover a previous session (connection
	// state recovery): its PID and the offset of the last event it
	// received, sent in the CONNECT payload as socket.io-client does.
	// Client.Recovered tells whether the server did.
	Resume *Session
}

// Session is what a client needs to ask for its session back: the
// private id the server gave it and the offset of its last event.
type Session struct {
	PID, Offset string
}

// ConnectError is the server's refusal of the namespace (connect_error).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return "connect_error: " + e.Message }

// HTTPError is a handshake the server refused with an HTTP status (403 for
// a foreign origin, 503 when full or draining, 400 "Session ID unknown"
// when a polling request reached a process that does not know the
// session). Message is the Engine.IO error message when the body had one.
type HTTPError struct {
	Transport string
	Status    int
	Code      int
	Message   string
}

func (e *HTTPError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s refused: HTTP %d", e.Transport, e.Status)
	}
	return fmt.Sprintf("%s refused: HTTP %d (%s)", e.Transport, e.Status, e.Message)
}

// Client is one connected socket.
type Client struct {
	opts Options
	t    transport
	nsp  string

	// SID is the Engine.IO session id, ID the Socket.IO socket id.
	SID, ID string
	// PID is the private session id the server gives when connection
	// state recovery is on (empty otherwise); Recovered is set when the
	// server restored the session Options.Resume named.
	PID       string
	Recovered bool

	writeMu sync.Mutex
	mu      sync.Mutex
	nextAck uint64
	offset  string // of the last event, when the server sends offsets
	early   []frame
	acks    map[uint64]chan []any
	closed  chan struct{}
	err     error
	once    sync.Once
}

// Dial connects, opens the namespace with opts.Auth and returns once the
// server accepted it (or refused it: a *ConnectError, or an *HTTPError
// for a refused handshake).
func Dial(ctx context.Context, opts Options) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse url: %w", err)
	}
	switch u.Scheme {
	case "http", "ws", "https", "wss":
	default:
		return nil, fmt.Errorf("url %q: scheme must be http(s) or ws(s)", opts.URL)
	}
	u.Path = opts.Path
	if u.Path == "" {
		u.Path = "/socket.io/"
	}
	nsp := opts.Namespace
	if nsp == "" {
		nsp = "/"
	}
	var t transport
	switch opts.Transport {
	case "", Websocket:
		t, err = dialWebsocket(ctx, u, opts)
	case Polling:
		t, err = dialPolling(ctx, u, opts)
	default:
		return nil, fmt.Errorf("transport %q: use %q or %q", opts.Transport, Websocket, Polling)
	}
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, t: t, nsp: nsp, acks: map[uint64]chan []any{}, closed: make(chan struct{})}
	if err := c.handshake(ctx); err != nil {
		_ = t.close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// Transport is the name of the transport in use.
func (c *Client) Transport() string { return c.t.name() }

// handshake reads the Engine.IO open packet, sends CONNECT and waits for
// the answer.
func (c *Client) handshake(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok {
		c.t.setDeadline(dl)
		defer c.t.setDeadline(time.Time{})
	}
	_, msg, err := c.t.next()
	if err != nil {
		return fmt.Errorf("read open packet: %w", err)
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("expected an open packet, got %q", truncate(msg))
	}
	var open struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(msg[1:], &open); err != nil {
		return fmt.Errorf("decode open packet: %w", err)
	}
	c.SID = open.SID
	connect := "40"
	if c.nsp != "/" {
		connect += c.nsp + ","
	}
	auth := c.opts.Auth
	if r := c.opts.Resume; r != nil && r.PID != "" {
		auth = maps.Clone(auth)
		if auth == nil {
			auth = map[string]any{}
		}
		auth["pid"], auth["offset"] = r.PID, r.Offset
	}
	if auth != nil {
		b, err := json.Marshal(auth)
		if err != nil {
			return fmt.Errorf("encode auth: %w", err)
		}
		connect += string(b)
	}
	if err := c.write(connect); err != nil {
		return err
	}
	for {
		binary, msg, err := c.t.next()
		if err != nil {
			return fmt.Errorf("read connect answer: %w", err)
		}
		if binary {
			c.early = append(c.early, frame{binary, msg})
			continue
		}
		s := string(msg)
		if s == "2" {
			if err := c.write("3"); err != nil {
				return err
			}
			continue
		}
		if s == "6" { // noop
			continue
		}
		if s == "1" {
			return errors.New("server closed the session during connect")
		}
		if len(s) < 2 || s[0] != '4' {
			return fmt.Errorf("unexpected packet during connect: %q", truncate(msg))
		}
		typ, body := c.packet(s[1:])
		switch typ {
		case '0':
			var ok struct {
				SID string `json:"sid"`
				PID string `json:"pid"`
			}
			_ = json.Unmarshal([]byte(body), &ok)
			c.ID, c.PID = ok.SID, ok.PID
			if r := c.opts.Resume; r != nil && ok.PID != "" && ok.PID == r.PID {
				c.Recovered = true
				c.offset = r.Offset
			}
			return nil
		case '2', '5':
			// A recovered session's missed events come before the
			// CONNECT answer (Socket.IO sends them as it restores the
			// socket); socket.io-client buffers them, so do we.
			c.early = append(c.early, frame{false, msg})
		case '4':
			var ce struct {
				Message string `json:"message"`
				Data    any    `json:"data"`
			}
			_ = json.Unmarshal([]byte(body), &ce)
			return &ConnectError{Message: ce.Message, Data: ce.Data}
		}
	}
}

// packet splits a Socket.IO packet of this namespace into type and body
// (the namespace prefix removed).
func (c *Client) packet(s string) (byte, string) {
	if len(s) == 0 {
		return 0, ""
	}
	typ, rest := s[0], s[1:]
	if c.nsp != "/" && strings.HasPrefix(rest, c.nsp+",") {
		rest = rest[len(c.nsp)+1:]
	}
	return typ, rest
}

func (c *Client) write(s string) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.t.send(s)
}

// WriteRaw sends one Engine.IO packet as is: a websocket text frame, or a
// polling POST body (for hostile-client tests).
func (c *Client) WriteRaw(s string) error { return c.write(s) }

func (c *Client) readLoop() {
	var pending *binaryPacket
	for _, f := range c.early {
		if !c.handle(f.binary, f.msg, &pending) {
			return
		}
	}
	c.early = nil
	for {
		binary, msg, err := c.t.next()
		if err != nil {
			c.finish(err)
			return
		}
		if !c.handle(binary, msg, &pending) {
			return
		}
	}
}

// handle processes one Engine.IO frame; false when the connection ended.
func (c *Client) handle(binary bool, msg []byte, pending **binaryPacket) bool {
	if binary {
		if p := *pending; p != nil {
			p.buffers = append(p.buffers, msg)
			if len(p.buffers) == p.count {
				c.deliver(p.id, p.hasID, p.ack, replacePlaceholders(p.data, p.buffers))
				*pending = nil
			}
		}
		return true
	}
	s := string(msg)
	switch {
	case s == "2":
		if err := c.write("3"); err != nil {
			c.finish(err)
			return false
		}
	case s == "1":
		c.finish(errors.New("server closed the session"))
		return false
	case strings.HasPrefix(s, "4"):
		if p := c.onPacket(s[1:]); p != nil {
			*pending = p
		}
	}
	return true
}

// frame is an Engine.IO frame read before the CONNECT answer.
type frame struct {
	binary bool
	msg    []byte
}

type binaryPacket struct {
	count   int
	id      uint64
	hasID   bool
	ack     bool
	data    []any
	buffers [][]byte
}

// onPacket handles one Socket.IO packet; a binary one is returned to wait
// for its attachments.
func (c *Client) onPacket(s string) *binaryPacket {
	typ, body := c.packet(s)
	switch typ {
	case '1':
		c.finish(errors.New("disconnected by the server"))
	case '2', '3':
		id, hasID, data := splitID(body)
		if typ == '2' && c.opts.RawArgs {
			if name, raw, ok := splitName(data); ok {
				c.deliverRaw(id, hasID, name, raw)
				return nil
			}
		}
		var args []any
		if err := decodeJSON(data, &args); err != nil {
			return nil
		}
		c.deliver(id, hasID, typ == '3', args)
	case '5', '6':
		dash := strings.IndexByte(body, '-')
		if dash < 0 {
			return nil
		}
		n, err := strconv.Atoi(body[:dash])
		if err != nil {
			return nil
		}
		body = body[dash+1:]
		if c.nsp != "/" && strings.HasPrefix(body, c.nsp+",") {
			body = body[len(c.nsp)+1:]
		}
		id, hasID, data := splitID(body)
		var args []any
		if err := decodeJSON(data, &args); err != nil {
			return nil
		}
		return &binaryPacket{count: n, id: id, hasID: hasID, ack: typ == '6', data: args}
	}
	return nil
}

func (c *Client) deliver(id uint64, hasID, isAck bool, args []any) {
	if isAck {
		c.mu.Lock()
		ch := c.acks[id]
		delete(c.acks, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- args
		}
		return
	}
	if len(args) == 0 || c.opts.OnEvent == nil {
		return
	}
	name, _ := args[0].(string)
	if c.PID != "" && len(args) > 1 {
		if off, ok := args[len(args)-1].(string); ok {
			c.setOffset(off)
		}
	}
	ev := Event{Name: name, Args: args[1:]}
	if hasID {
		ev.Ack = func(a ...any) error { return c.sendPacket('3', &id, a) }
	}
	c.opts.OnEvent(ev)
}

// deliverRaw hands an event with undecoded arguments to OnEvent.
func (c *Client) deliverRaw(id uint64, hasID bool, name, raw string) {
	if c.PID != "" {
		if off, ok := lastString(raw); ok {
			c.setOffset(off)
		}
	}
	if c.opts.OnEvent == nil {
		return
	}
	ev := Event{Name: name, Raw: raw}
	if hasID {
		ev.Ack = func(a ...any) error { return c.sendPacket('3', &id, a) }
	}
	c.opts.OnEvent(ev)
}

func (c *Client) setOffset(off string) {
	c.mu.Lock()
	c.offset = off
	c.mu.Unlock()
}

// Session is what to pass as Options.Resume to get this session back
// after the connection drops (nil when the server does not recover
// sessions). As socket.io-client does, the offset is the last argument of
// the last event received, which the server appends when recovery is on.
func (c *Client) Session() *Session {
	if c.PID == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return &Session{PID: c.PID, Offset: c.offset}
}

// lastString is the last element of a JSON array when it is a plain
// string (no escapes): the recovery offset of an event's raw arguments.
func lastString(raw string) (string, bool) {
	body, ok := strings.CutSuffix(raw, `"]`)
	start := strings.LastIndexByte(body, '"')
	if !ok || start < 1 || body[start-1] == '\\' || strings.IndexByte(body[start:], '\\') >= 0 {
		return "", false
	}
	before := strings.TrimRight(body[:start], " \t\r\n")
	if before != "[" && !strings.HasSuffix(before, ",") {
		return "", false
	}
	return body[start+1:], true
}

// splitName reads the event name of an event packet's JSON array and
// returns it with the JSON array of the remaining arguments. ok is false
// when the name is not a plain string (escapes): decode it the slow way.
func splitName(data string) (name, raw string, ok bool) {
	if len(data) < 3 || data[0] != '[' || data[1] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(data[2:], '"')
	if end < 0 {
		return "", "", false
	}
	name = data[2 : 2+end]
	if strings.IndexByte(name, '\\') >= 0 {
		return "", "", false
	}
	rest := strings.TrimLeft(data[3+end:], " \t\r\n")
	switch {
	case strings.HasPrefix(rest, "]"):
		return name, "[]", true
	case strings.HasPrefix(rest, ","):
		return name, "[" + rest[1:], true
	}
	return "", "", false
}

// Emit sends an event.
func (c *Client) Emit(event string, args ...any) error {
	return c.sendPacket('2', nil, append([]any{event}, args...))
}

// EmitWithAck sends an event and waits for the server's acknowledgement.
func (c *Client) EmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	c.mu.Lock()
	id := c.nextAck
	c.nextAck++
	ch := make(chan []any, 1)
	c.acks[id] = ch
	c.mu.Unlock()
	if err := c.sendPacket('2', &id, append([]any{event}, args...)); err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		return a, nil
	case <-c.closed:
		return nil, fmt.Errorf("connection closed before the ack: %w", c.Err())
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.acks, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

func (c *Client) sendPacket(typ byte, id *uint64, args []any) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	var s strings.Builder
	s.WriteString("4")
	s.WriteByte(typ)
	if c.nsp != "/" {
		s.WriteString(c.nsp + ",")
	}
	if id != nil {
		s.WriteString(strconv.FormatUint(*id, 10))
	}
	s.Write(b)
	return c.write(s.String())
}

// Close ends the connection as a network drop would (no DISCONNECT
// packet): the websocket is closed; a polling session gets the Engine.IO
// close packet, since it has no connection to drop.
func (c *Client) Close() error {
	err := c.t.close()
	<-c.closed
	return err
}

// Disconnect leaves the namespace politely, then closes.
func (c *Client) Disconnect() error {
	pkt := "41"
	if c.nsp != "/" {
		pkt += c.nsp + ","
	}
	_ = c.write(pkt)
	return c.Close()
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.closed }

// Err is why the connection ended (nil while it is open).
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) finish(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		_ = c.t.close()
		close(c.closed)
		if c.opts.OnClose != nil {
			c.opts.OnClose(err)
		}
	})
}

func splitID(body string) (uint64, bool, string) {
	i := 0
	for i < len(body) && body[i] >= '0' && body[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, false, body
	}
	id, err := strconv.ParseUint(body[:i], 10, 64)
	if err != nil {
		return 0, false, body
	}
	return id, true, body[i:]
}

func decodeJSON(s string, v any) error {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	return d.Decode(v)
}

// replacePlaceholders puts binary attachments where the packet has
// {"_placeholder": true, "num": n}.
func replacePlaceholders(v any, bufs [][]byte) []any {
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
		case map[string]any:
			if ph, _ := x["_placeholder"].(bool); ph {
				if num, ok := x["num"].(json.Number); ok {
					if n, err := num.Int64(); err == nil && n >= 0 && int(n) < len(bufs) {
						return bytes.Clone(bufs[n])
					}
				}
			}
			for k := range x {
				x[k] = walk(x[k])
			}
		}
		return v
	}
	args, _ := walk(v).([]any)
	return args
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}
