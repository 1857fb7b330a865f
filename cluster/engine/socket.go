package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	eiopacket "github.com/zishang520/socket.io/parsers/engine/v3/packet"
	eio "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Session states.
const (
	stateOpen    uint32 = iota
	stateClosing        // an orderly close waits for the client's next poll
	stateClosed
)

var stateNames = [...]string{stateOpen: "open", stateClosing: "closing", stateClosed: "closed"}

// pollCloseTimeout bounds an orderly close on long-polling: the session
// ends this long after the close was asked for, if the client does not
// poll again to receive it.
const pollCloseTimeout = 10 * time.Second

// pingFrame and probeFrame are the same for every session.
var (
	pingFrame  = messageFrame(pktPing, nil, false)
	probeFrame = messageFrame(pktPong, []byte("probe"), false)
)

// Socket is one Engine.IO session: a client on long-polling or on a
// websocket (reached directly or by upgrade). It carries the Socket.IO
// layer's packets and keeps the session alive with a heartbeat; one
// time.AfterFunc timer serves the heartbeat, and nothing else runs for a
// session that is idle.
//
// Locking: mu guards the transport state. It is never held while calling
// the Socket.IO layer (which may call back into Write or Close); it may be
// held while writing to a websocket (its own lock comes after).
type Socket struct {
	srv    *Server
	id     string
	head   []byte // the first request's head (see keepRequest)
	remote string
	ev     listeners
	state  atomic.Uint32

	mu        sync.Mutex
	ws        *wsConn  // the transport once on websocket
	poll      *polling // the transport while on long-polling
	probe     *wsConn  // the websocket of an upgrade under way
	probed    bool     // the upgrade was probed: polls end at once (noop)
	upgraded  bool
	upgradeAt time.Time // when the upgrade completed
	upgradeT  *time.Timer
	hb        *time.Timer // the heartbeat: next ping, or the pong deadline
	hbDue     time.Time
	awaitPong bool
	closeT    *time.Timer // an orderly close on polling
	reason    Reason
}

// polling is the long-polling transport's state.
type polling struct {
	queue   []packet
	waiting chan []byte // the waiting GET gets its payload here (cap 1); nil: refuse it
	late    bool        // the waiting GET arrived after the upgrade was probed
	posting bool        // a POST is being read
	closing bool        // the next GET gets the queue and a close packet
}

func newSocket(srv *Server, id string, head []byte, remote string) *Socket {
	s := &Socket{srv: srv, id: id, head: head, remote: remote}
	s.state.Store(stateOpen)
	return s
}

// ID is the session id (the sid of the protocol).
func (s *Socket) ID() string { return s.id }

// Id is ID for the Socket.IO layer.
func (s *Socket) Id() string { return s.id }

// Protocol is the Engine.IO revision: always 4 (3 is refused).
func (s *Socket) Protocol() int { return 4 }

// RemoteAddress is the client's address (host:port).
func (s *Socket) RemoteAddress() string { return s.remote }

// ReadyState is "open", "closing" or "closed".
func (s *Socket) ReadyState() string { return stateNames[s.state.Load()] }

// Request is the session's first request, for the Socket.IO handshake
// (headers, query, url), parsed again at each call from the bytes the
// session keeps; it has no body, and its context is not the request's.
func (s *Socket) Request() *types.HttpContext {
	r, err := http.ReadRequest(bufio.NewReaderSize(bytes.NewReader(s.head), len(s.head)+16))
	if err != nil { // cannot happen: the head was written from a parsed request
		r = &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/"}, Header: http.Header{}}
	}
	r.RemoteAddr = s.remote
	return types.NewHttpContext(nopResponse{}, r.WithContext(context.Background()))
}

// TransportName is "polling" or "websocket".
func (s *Socket) TransportName() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transportNameLocked()
}

func (s *Socket) transportNameLocked() string {
	if s.ws != nil {
		return transports.WEBSOCKET
	}
	return transports.POLLING
}

// Transport describes the current transport (name, writable).
func (s *Socket) Transport() transports.Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := transportView{name: s.transportNameLocked(), sid: s.id}
	switch {
	case s.ws != nil:
		t.writable = true
	case s.poll != nil:
		t.writable = s.poll.waiting != nil
	}
	return t
}

// Buffered is the number of bytes waiting to be written to the client.
func (s *Socket) Buffered() int {
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws == nil {
		return 0
	}
	return ws.buffered()
}

func (s *Socket) isUpgraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.upgraded
}

func (s *Socket) isUpgrading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.probe != nil
}

// On, Once, RemoveListener and the rest of the event emitter are the
// Socket.IO layer's: it listens for "data" (a message), "close" (reason,
// description) and "error". "upgrade" (the new transport) is emitted once
// a session moves to websocket, as Node's engine does; the Admin UI
// listens for it.
func (s *Socket) On(ev types.EventName, fn ...types.EventListener) error { return s.ev.On(ev, fn...) }
func (s *Socket) Once(ev types.EventName, fn ...types.EventListener) error {
	return s.ev.Once(ev, fn...)
}
func (s *Socket) AddListener(ev types.EventName, fn ...types.EventListener) error {
	return s.ev.AddListener(ev, fn...)
}
func (s *Socket) RemoveListener(ev types.EventName, fn types.EventListener) bool {
	return s.ev.RemoveListener(ev, fn)
}
func (s *Socket) RemoveAllListeners(ev types.EventName) bool { return s.ev.RemoveAllListeners(ev) }
func (s *Socket) Emit(ev types.EventName, args ...any)       { s.ev.Emit(ev, args...) }
func (s *Socket) EventNames() []types.EventName              { return s.ev.EventNames() }
func (s *Socket) ListenerCount(ev types.EventName) int       { return s.ev.ListenerCount(ev) }
func (s *Socket) Listeners(ev types.EventName) []types.EventListener {
	return s.ev.Listeners(ev)
}
func (s *Socket) Clear()   { s.ev.Clear() }
func (s *Socket) Len() int { return s.ev.Len() }

// Write sends a message: the Socket.IO layer's encoded packet, text
// (*types.StringBuffer) or binary (any other buffer). A broadcast's
// packet comes with its websocket encoding prepared once for every
// recipient (opts.WsPreEncodedFrame): its frame is built once too.
func (s *Socket) Write(data io.Reader, opts *eiopacket.Options, _ eio.SendCallback) eio.Socket {
	if s.state.Load() != stateOpen {
		return s
	}
	p := packet{typ: pktMessage}
	switch b := data.(type) {
	case *types.StringBuffer:
		p.data = b.Bytes()
	case types.BufferInterface:
		p.data, p.binary = b.Bytes(), true
	default:
		raw, err := io.ReadAll(data)
		if err != nil {
			return s
		}
		p.data, p.binary = raw, true
	}
	var shared types.BufferInterface
	if opts != nil && !p.binary {
		shared = opts.WsPreEncodedFrame
	}
	s.mu.Lock()
	var frame []byte
	if s.ws != nil && shared != nil {
		frame = s.srv.frames.get(shared)
	}
	err := s.sendLocked(p, frame)
	s.mu.Unlock()
	if err != nil {
		// The caller (the Socket.IO client's write) may hold its own
		// lock, which its "close" handler takes again (leaving rooms,
		// whose listeners may write to this client): the session ends
		// now, its listeners hear of it from another goroutine.
		if reason, ok := s.shut(reasonOf(err)); ok {
			go s.closed(reason)
		}
	}
	return s
}

// sendLocked sends on the current transport (frame, when not nil, is the
// packet's websocket frame, already built). An error means the websocket
// failed: the caller ends the session once it has unlocked.
func (s *Socket) sendLocked(p packet, frame []byte) error {
	if s.ws != nil {
		if frame == nil {
			frame = messageFrame(p.typ, p.data, p.binary)
		}
		return s.ws.send(frame)
	}
	if s.poll != nil {
		s.poll.queue = append(s.poll.queue, p)
		s.deliverLocked()
	}
	return nil
}

// deliverLocked answers the waiting poll, if any, with the queue.
func (s *Socket) deliverLocked() {
	if s.poll.waiting == nil || len(s.poll.queue) == 0 {
		return
	}
	s.answerPollLocked(s.takeQueueLocked(nil))
}

func (s *Socket) answerPollLocked(payload []byte) {
	s.poll.waiting <- payload
	s.poll.waiting, s.poll.late = nil, false
}

// takeQueueLocked encodes and empties the polling queue, then appends
// extra packets.
func (s *Socket) takeQueueLocked(extra []packet) []byte {
	var b []byte
	for _, p := range s.poll.queue {
		b = appendPollPacket(b, p)
	}
	for _, p := range extra {
		b = appendPollPacket(b, p)
	}
	clear(s.poll.queue)
	s.poll.queue = s.poll.queue[:0]
	if cap(s.poll.queue) > 64 {
		s.poll.queue = nil
	}
	return b
}

// reasonOf maps a websocket write error to why the session ends.
func reasonOf(err error) Reason {
	if errors.Is(err, errWriteCap) {
		return ReasonWriteCap
	}
	return ReasonTransportError
}

// onPacket handles a packet from the current transport, in order.
func (s *Socket) onPacket(p packet) {
	if s.state.Load() != stateOpen {
		return
	}
	switch p.typ {
	case pktMessage:
		var buf types.BufferInterface
		data := bytes.Clone(p.data)
		if p.binary {
			buf = types.NewBytesBuffer(data)
		} else {
			buf = types.NewStringBuffer(data)
		}
		s.ev.Emit("data", buf)
	case pktPong:
		s.pong()
	case pktPing:
		s.end(ReasonTransportError) // in protocol 4 only the server pings
	case pktClose:
		s.end(ReasonTransportClose)
	}
}

// startHeartbeatLocked schedules the first ping.
func (s *Socket) startHeartbeatLocked() {
	d := s.srv.opts.PingInterval
	s.hbDue = time.Now().Add(d)
	s.hb = time.AfterFunc(d, s.heartbeat)
}

// armLocked moves the heartbeat's next event to d from now.
func (s *Socket) armLocked(d time.Duration) {
	s.hbDue = time.Now().Add(d)
	s.hb.Reset(d)
}

// heartbeat runs when the heartbeat timer fires: it pings, or ends the
// session when the last ping had no answer. The pong deadline is set
// before the ping is written, under the lock the pong is handled with:
// a pong that arrives before the write returns is never missed. (The
// library's engine armed it after sending, in another goroutine, and a
// quick pong then cleared the previous deadline instead: the session
// ended one pingTimeout after a ping it had answered.)
func (s *Socket) heartbeat() {
	s.mu.Lock()
	if s.state.Load() != stateOpen || time.Now().Before(s.hbDue) {
		s.mu.Unlock() // closed, or a stale firing: the timer was moved
		return
	}
	if s.awaitPong {
		s.mu.Unlock()
		s.end(ReasonPingTimeout)
		return
	}
	s.awaitPong = true
	s.armLocked(s.srv.opts.PingTimeout)
	err := s.sendLocked(packet{typ: pktPing}, pingFrame)
	s.mu.Unlock()
	if err != nil {
		s.end(reasonOf(err))
	}
}

func (s *Socket) pong() {
	s.mu.Lock()
	if s.awaitPong && s.state.Load() == stateOpen {
		s.awaitPong = false
		s.armLocked(s.srv.opts.PingInterval)
	}
	s.mu.Unlock()
}

// Close ends the session. The Socket.IO layer calls it to disconnect a
// client (discard or not, the queued packets go first).
func (s *Socket) Close(bool) { s.Disconnect(ReasonServerDisconnect) }

// Disconnect ends the session in order: the packets already queued go
// out, then the transport is closed (a websocket close frame, or a close
// packet in the next poll); reason is what the metrics count. A client
// whose transport closes this way reconnects by itself.
func (s *Socket) Disconnect(reason Reason) {
	s.mu.Lock()
	if s.state.Load() != stateOpen {
		s.mu.Unlock()
		return
	}
	if s.poll != nil && s.poll.waiting == nil {
		// no poll to answer now: the next one gets the close packet
		s.state.Store(stateClosing)
		s.reason = reason
		s.poll.closing = true
		s.closeT = time.AfterFunc(pollCloseTimeout, func() { s.end(reason) })
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.end(reason)
}

// end closes the session once, for reason: it answers a waiting poll,
// closes the websockets, forgets the session and tells the Socket.IO
// layer ("close").
func (s *Socket) end(reason Reason) {
	if reason, ok := s.shut(reason); ok {
		s.closed(reason)
	}
}

// shut is end without telling anyone. It reports whether this call closed
// the session (false: it was closed already), and the reason it ended
// with (an orderly close under way keeps its own).
func (s *Socket) shut(reason Reason) (Reason, bool) {
	s.mu.Lock()
	if s.state.Load() == stateClosed {
		s.mu.Unlock()
		return "", false
	}
	if s.state.Load() == stateClosing {
		reason = s.reason // the orderly close that was under way
	}
	s.state.Store(stateClosed)
	s.reason = reason
	for _, t := range []*time.Timer{s.hb, s.upgradeT, s.closeT} {
		if t != nil {
			t.Stop()
		}
	}
	orderly := reason == ReasonDrain || reason == ReasonServerDisconnect || reason == ReasonServerClose
	if p := s.poll; p != nil {
		if p.waiting != nil {
			switch {
			case reason == ReasonTransportClose:
				s.answerPollLocked([]byte{pktNoop})
			case orderly:
				s.answerPollLocked(s.takeQueueLocked([]packet{{typ: pktClose}}))
			default:
				s.answerPollLocked([]byte{pktClose})
			}
		}
		p.queue = nil
	}
	ws, probe := s.ws, s.probe
	s.probe = nil
	s.mu.Unlock()

	if probe != nil {
		probe.abort()
	}
	if ws != nil {
		switch reason {
		case ReasonTransportClose, ReasonTransportError, ReasonWriteCap:
			ws.abort()
		default:
			ws.closeWith(closeBody(reason))
		}
	}
	s.srv.forget(s)
	return reason, true
}

// closed tells OnClose and the Socket.IO layer that the session ended.
func (s *Socket) closed(reason Reason) {
	if s.srv.opts.OnClose != nil {
		s.srv.opts.OnClose(s, reason) // it logs the end as it sees fit
	} else {
		s.srv.opts.Logger.Debug("session closed", "sid", s.id, "reason", string(reason))
	}
	s.ev.Emit("close", reason.engineReason(), nil)
}

// Reason is why the session ended ("" while it is open).
func (s *Socket) Reason() Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != stateClosed {
		return ""
	}
	return s.reason
}
