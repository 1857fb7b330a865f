package engine

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	eio "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

var errNotSupported = errors.New("not supported by this engine")

// Server is an Engine.IO v4 server. Bind it into the library's Socket.IO
// server with socket.Server.Bind; serve long-polling and websocket
// upgrades with ServeHTTP, and websockets handed over by another process
// (the daemon's front door) with ServeHandoff.
type Server struct {
	ev     listeners // "connection", for the Socket.IO layer
	opts   Options
	poller *poller
	frames frameCache

	mu       sync.RWMutex
	sessions map[string]*Socket
	count    atomic.Int64
	onWS     atomic.Int64 // sessions on websocket
	closed   atomic.Bool
}

// NewServer starts a server (its poller goroutine); Close stops it.
func NewServer(opts Options) (*Server, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts.withDefaults(), poller: p, sessions: map[string]*Socket{}}, nil
}

// Event emitter of the server: the Socket.IO layer listens for
// "connection" (an *Socket).
func (s *Server) On(ev types.EventName, fn ...types.EventListener) error { return s.ev.On(ev, fn...) }
func (s *Server) Once(ev types.EventName, fn ...types.EventListener) error {
	return s.ev.Once(ev, fn...)
}
func (s *Server) AddListener(ev types.EventName, fn ...types.EventListener) error {
	return s.ev.AddListener(ev, fn...)
}
func (s *Server) RemoveListener(ev types.EventName, fn types.EventListener) bool {
	return s.ev.RemoveListener(ev, fn)
}
func (s *Server) RemoveAllListeners(ev types.EventName) bool { return s.ev.RemoveAllListeners(ev) }
func (s *Server) Emit(ev types.EventName, args ...any)       { s.ev.Emit(ev, args...) }
func (s *Server) EventNames() []types.EventName              { return s.ev.EventNames() }
func (s *Server) ListenerCount(ev types.EventName) int       { return s.ev.ListenerCount(ev) }
func (s *Server) Listeners(ev types.EventName) []types.EventListener {
	return s.ev.Listeners(ev)
}
func (s *Server) Clear()   { s.ev.Clear() }
func (s *Server) Len() int { return s.ev.Len() }

// Count is the number of open sessions.
func (s *Server) Count() int { return int(s.count.Load()) }

// CountWebsocket is the number of open sessions on a websocket.
func (s *Server) CountWebsocket() int { return int(s.onWS.Load()) }

// Sessions returns the open sessions.
func (s *Server) Sessions() []*Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Socket, 0, len(s.sessions))
	for _, sock := range s.sessions {
		out = append(out, sock)
	}
	return out
}

// Close ends every session and stops the poller.
func (s *Server) Close() eio.BaseServer {
	if !s.closed.CompareAndSwap(false, true) {
		return s
	}
	for _, sock := range s.Sessions() {
		sock.end(ReasonServerClose)
	}
	s.poller.close()
	return s
}

func (s *Server) lookup(sid string) *Socket {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[sid]
}

func (s *Server) register(sock *Socket) {
	s.mu.Lock()
	s.sessions[sock.id] = sock
	s.mu.Unlock()
	s.count.Add(1)
}

// forget removes an ended session (once).
func (s *Server) forget(sock *Socket) {
	s.mu.Lock()
	_, ok := s.sessions[sock.id]
	if ok {
		delete(s.sessions, sock.id)
	}
	s.mu.Unlock()
	if ok {
		s.count.Add(-1)
		sock.mu.Lock()
		onWS := sock.ws != nil
		sock.mu.Unlock()
		if onWS {
			s.onWS.Add(-1)
		}
	}
}

func (s *Server) upgraded() { s.onWS.Add(1) }

// ServeHTTP serves the Engine.IO endpoint: long-polling requests, and
// websocket upgrades (the connection is taken from net/http and served by
// the poller from then on).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		s.preflight(w, r)
		return
	}
	s.corsHeaders(w.Header(), r)
	upgrade := isWebsocketUpgrade(r)
	q := r.URL.Query()
	sock, ref := s.verify(r, q, upgrade)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	switch {
	case upgrade:
		s.hijack(w, r, sock)
	case sock == nil:
		s.handshakePolling(w, r)
	case r.Method == http.MethodGet:
		sock.servePoll(w, r)
	case r.Method == http.MethodPost:
		sock.servePost(w, r)
	default:
		writeRefusal(w, refusal(CodeBadRequest))
	}
}

// verify checks a request as Node's engine does; it returns the session
// the request belongs to (nil for a new one), or why it is refused.
func (s *Server) verify(r *http.Request, q url.Values, upgrade bool) (*Socket, *Refusal) {
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		return nil, refusal(CodeUnknownTransport)
	}
	if !validHeaderValue(r.Header.Get("Origin")) {
		return nil, refusal(CodeBadRequest)
	}
	sid := q.Get("sid")
	if s.opts.Allow != nil {
		if ref := s.opts.Allow(r, sid == ""); ref != nil {
			return nil, ref
		}
	}
	if sid != "" {
		sock := s.lookup(sid)
		if sock == nil {
			return nil, refusal(CodeUnknownSID)
		}
		if upgrade && transport != "websocket" || !upgrade && transport != sock.TransportName() {
			return nil, refusal(CodeBadRequest)
		}
		return sock, nil
	}
	if r.Method != http.MethodGet {
		return nil, refusal(CodeBadHandshakeMethod)
	}
	if transport == "websocket" && !upgrade || transport == "polling" && upgrade {
		return nil, refusal(CodeBadRequest)
	}
	if q.Get("EIO") != "4" {
		return nil, refusal(CodeUnsupportedVersion) // protocol 3 included: not allowed
	}
	return nil, nil
}

// handshakePolling opens a session on long-polling: the GET that asked is
// answered with the open packet.
func (s *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	sock := newSocket(s, s.opts.NewID(), keepRequest(r), r.RemoteAddr)
	sock.poll = &polling{queue: []packet{{typ: pktOpen, data: s.openPacket(sock.id, true)}}}
	sock.mu.Lock()
	sock.startHeartbeatLocked()
	sock.mu.Unlock()
	s.register(sock)
	s.ev.Emit("connection", sock)
	sock.servePoll(w, r)
}

// openPacket is the data of the open packet.
func (s *Server) openPacket(sid string, polling bool) []byte {
	upgrades := []string{} // [] in the JSON, never null
	if polling {
		upgrades = append(upgrades, s.Upgrades(transports.POLLING)...)
	}
	b, _ := json.Marshal(struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int64    `json:"pingInterval"`
		PingTimeout  int64    `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}{sid, upgrades, s.opts.PingInterval.Milliseconds(), s.opts.PingTimeout.Milliseconds(), s.opts.MaxPayload})
	return b
}

// hijack takes a websocket upgrade's connection from net/http.
func (s *Server) hijack(w http.ResponseWriter, r *http.Request, sock *Socket) {
	key, ok := websocketKey(r)
	if !ok {
		writeRefusal(w, refusal(CodeBadRequest))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeRefusal(w, refusal(CodeBadRequest))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
		early = bytes.Clone(early)
	}
	fd, err := detachFD(conn)
	if err != nil {
		s.opts.Logger.Debug("websocket upgrade: cannot take the connection", "err", err)
		return
	}
	s.acceptWebsocket(fd, keepRequest(r), r.RemoteAddr, key, early, sock)
}

// ServeHandoff serves a websocket upgrade whose connection another
// process accepted and read the request of: fd is the connection (owned
// by the server from now on) and head the bytes already read from it,
// the request first. It refuses what ServeHTTP refuses.
func (s *Server) ServeHandoff(fd int, head []byte) {
	rd := bytes.NewReader(head)
	br := bufio.NewReader(rd)
	r, err := http.ReadRequest(br)
	if err != nil {
		rejectFD(fd, refusal(CodeBadRequest))
		return
	}
	consumed := len(head) - rd.Len() - br.Buffered()
	early := head[consumed:]
	r.RemoteAddr = peerAddr(fd)
	if !isWebsocketUpgrade(r) {
		rejectFD(fd, refusal(CodeBadRequest))
		return
	}
	sock, ref := s.verify(r, r.URL.Query(), true)
	if ref != nil {
		rejectFD(fd, ref)
		return
	}
	key, ok := websocketKey(r)
	if !ok {
		rejectFD(fd, refusal(CodeBadRequest))
		return
	}
	if err := setNonblock(fd); err != nil {
		closeFD(fd)
		return
	}
	s.acceptWebsocket(fd, bytes.Clone(head[:consumed]), r.RemoteAddr, key, early, sock)
}

// acceptWebsocket answers the upgrade on fd and serves the websocket:
// a new session (sock nil), or the candidate of sock's upgrade.
func (s *Server) acceptWebsocket(fd int, head []byte, remote, key string, early []byte, sock *Socket) {
	resp := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(key) + "\r\n\r\n")
	if sock != nil {
		c := newWSConn(fd, s.poller, sock, s.opts.MaxPayload, s.opts.MaxBuffered)
		// The session knows its candidate before the client can: a poll
		// the client sends once it has the 101 then waits for the upgrade
		// instead of taking the probe's noop (the protocol suites'
		// "ignores HTTP requests with same sid after upgrade" got a 200).
		if !sock.beginUpgrade(c) {
			// Then closed, as clients expect of a second websocket; held
			// back as a late poll's refusal is (lateRefusalDelay), or a
			// client may see this close before the first one's "3probe".
			_ = c.send(resp)
			time.AfterFunc(lateRefusalDelay, c.abort)
			return
		}
		if err := c.send(resp); err != nil {
			sock.abandonUpgrade(c)
			return
		}
		if err := c.start(early); err != nil {
			sock.abandonUpgrade(c)
		}
		return
	}
	sock = newSocket(s, s.opts.NewID(), head, remote)
	c := newWSConn(fd, s.poller, sock, s.opts.MaxPayload, s.opts.MaxBuffered)
	sock.ws = c
	if err := c.send(append(resp, messageFrame(pktOpen, s.openPacket(sock.id, false), false)...)); err != nil {
		c.abort()
		return
	}
	sock.mu.Lock()
	sock.startHeartbeatLocked()
	sock.mu.Unlock()
	s.register(sock)
	s.onWS.Add(1)
	// The Socket.IO layer must listen before the first message is read.
	s.ev.Emit("connection", sock)
	if err := c.start(early); err != nil {
		sock.end(ReasonTransportError)
	}
}

// keepRequest is what a session keeps of its first request: the bytes of
// its head (request line and headers), which Socket.Request parses again
// when the Socket.IO layer asks (once per namespace joined). A parsed
// request (a header map, a URL) costs about 2 KB per session for fields
// read once; a request's body would also hold net/http's read buffer.
func keepRequest(r *http.Request) []byte {
	var b bytes.Buffer
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	b.Grow(256)
	b.WriteString(r.Method)
	b.WriteByte(' ')
	b.WriteString(uri)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(r.Host)
	b.WriteString("\r\n")
	_ = r.Header.Write(&b)
	b.WriteString("\r\n")
	return bytes.Clone(b.Bytes()) // exactly its size
}

func isWebsocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header.Get("Connection"), "upgrade")
}

func headerHasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// websocketKey checks the websocket headers of an upgrade (RFC 6455 4.2.1)
// and returns its key.
func websocketKey(r *http.Request) (string, bool) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if r.Method != http.MethodGet || r.Header.Get("Sec-WebSocket-Version") != "13" || key == "" {
		return "", false
	}
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return "", false
	}
	return key, true
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// validHeaderValue is Node's checkInvalidHeaderChar, inverted.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '\t' && (c < 0x20 || c == 0x7f) {
			return false
		}
	}
	return true
}

// rejectFD answers an upgrade we refuse, as Node does, and closes fd.
func rejectFD(fd int, ref *Refusal) {
	body := ref.Message
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s",
		ref.Status, http.StatusText(ref.Status), len(body), body)
	_, _ = writeFD(fd, []byte(resp))
	closeFD(fd)
}

// frameCache keeps the websocket frames of the last broadcasts, keyed by
// the Socket.IO layer's pre-encoded packet (one per broadcast, shared by
// every recipient): the frame is built once and the same bytes are
// written to every recipient. An entry holds its key, so the key's address
// cannot be reused for another packet while it is cached.
type frameCache struct {
	mu      sync.Mutex
	entries [8]frameEntry
	next    int
}

type frameEntry struct {
	key   types.BufferInterface
	frame []byte
}

func (c *frameCache) get(key types.BufferInterface) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.entries {
		if e := &c.entries[i]; e.key == key {
			return e.frame
		}
	}
	raw := key.Bytes() // "4" and the packet: the whole text message
	if len(raw) == 0 {
		return nil
	}
	f := messageFrame(raw[0], raw[1:], false)
	c.entries[c.next] = frameEntry{key: key, frame: f}
	c.next = (c.next + 1) % len(c.entries)
	return f
}

// peerAddr is the address of fd's peer, "" when unknown.
func peerAddr(fd int) string {
	a, err := getpeername(fd)
	if err != nil {
		return ""
	}
	return a.String()
}
