package redisadapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// nspAdapter is the adapter of one namespace. It embeds the library's
// in-memory adapter (session-aware when connection state recovery is on),
// which does every local delivery, and adds the cluster side: what the
// namespace does is sent to the other servers as messages, and what they
// send is applied locally through the embedded adapter. Messages go
// through the codec of the protocol in use (classic or sharded); the
// operations here are the same for both.
type nspAdapter struct {
	socket.Adapter

	bus   *Adapter
	nsp   socket.Namespace
	name  string
	uid   string
	codec codec

	// Rooms' own channels (sharded dynamic modes). The rooms of
	// disconnected sessions that may come back (the store's, see
	// awayUntil) keep theirs until the sessions come back or expire; the
	// classic "skip rooms we do not have" shortcut keeps what it skips for
	// them, unread (sessionStore.keepUnread).
	roomMu   sync.Mutex
	roomSubs map[socket.Room]subscription
	timers   map[*time.Timer]struct{}
	closed   bool

	pending pendingSet
	acks    ackSet

	// Session handover (handover.go): the channel, the requests waiting
	// for an answer, and the sessions kept for clients that may come back.
	handover  string
	handovers handoverWaiters
	store     *sessionStore // connection state recovery, nil when off
	deliverMu sync.Mutex    // with a store: one broadcast recorded and written at a time
	joining   map[socket.SocketId]*pendingJoins
	buffers   map[string]*handoverBuffer // by handover request id
	buffering atomic.Int32               // len(buffers), read without the lock

	// The streams protocol (streams.go, streams_sessions.go): the stream
	// this namespace's broadcasts travel on; whether recovery is on and
	// for how long a session waits; the sessions being restored (guarded
	// by the stream's lock).
	stream     *streamLog
	csr        bool
	keep       time.Duration
	restoring  map[socket.SocketId]*restoringSession
	restoringN atomic.Int32
	// What was last sent to the local sockets (noteSent, lastSentTo).
	lastMu     sync.Mutex
	lastAll    streamID
	lastByRoom map[socket.Room]streamID
	lastBySid  map[socket.SocketId]streamID
}

func newNspAdapter(bus *Adapter, nsp socket.Namespace) *nspAdapter {
	csr := nsp.Server().Opts().ConnectionStateRecovery()
	// Recovery is this adapter's (sessions.go), not the library's
	// session-aware adapter, which keeps every event for everyone.
	inner := socket.MakeAdapter()
	n := &nspAdapter{
		Adapter:  inner,
		bus:      bus,
		nsp:      nsp,
		name:     nsp.Name(),
		uid:      bus.newUID(),
		roomSubs: map[socket.Room]subscription{},
		timers:   map[*time.Timer]struct{}{},
		handover: handoverChannel(bus.opts.Key, nsp.Name()),
		joining:  map[socket.SocketId]*pendingJoins{},
		buffers:  map[string]*handoverBuffer{},
	}
	n.codec = bus.codecFor(n.name, n.uid)
	if bus.opts.Streams {
		// Sessions and missed events are in Redis: no store, no handover.
		n.stream = bus.streamOf(n.name)
		n.restoring = map[socket.SocketId]*restoringSession{}
		n.lastByRoom, n.lastBySid = map[socket.Room]streamID{}, map[socket.SocketId]streamID{}
		if csr != nil {
			n.csr, n.keep = true, time.Duration(csr.MaxDisconnectionDuration())*time.Millisecond
		}
	} else if csr != nil {
		keep := time.Duration(csr.MaxDisconnectionDuration()) * time.Millisecond
		// a dead transport is noticed at most pingInterval + pingTimeout late
		so := nsp.Server().Opts()
		n.store = newSessionStore(n.uid, so.PingInterval()+so.PingTimeout()+5*time.Second, keep)
		n.store.unread = n.unread
	}
	n.Prototype(n)
	n.Construct(nsp)
	if n.stream != nil {
		_ = n.On("delete-room", func(args ...any) {
			if room, ok := firstOrNil(args).(socket.Room); ok {
				n.lastMu.Lock()
				delete(n.lastByRoom, room)
				n.lastMu.Unlock()
			}
		})
	}
	if n.codec.roomChannels() {
		_ = n.On("create-room", func(args ...any) {
			if room, ok := firstOrNil(args).(socket.Room); ok {
				n.roomCreated(room)
			}
		})
		_ = n.On("delete-room", func(args ...any) {
			if room, ok := firstOrNil(args).(socket.Room); ok {
				n.roomDeleted(room)
			}
		})
	}
	return n
}

// Init subscribes the namespace's channels (the namespace calls it after New).
func (n *nspAdapter) Init() {
	n.Adapter.Init()
	if n.stream != nil {
		n.stream.register(n)
	}
	n.bus.register(n)
}

// Close unsubscribes and fails the requests still waiting.
func (n *nspAdapter) Close() {
	n.bus.unregister(n)
	if n.stream != nil {
		n.stream.unregister(n)
	}
	n.roomMu.Lock()
	n.closed = true
	for t := range n.timers {
		t.Stop()
	}
	clear(n.timers)
	n.roomMu.Unlock()
	n.pending.failAll(errors.New("adapter closed"))
	n.acks.clear()
	n.Adapter.Close()
}

// ServerCount is the number of servers on this namespace, this one included.
func (n *nspAdapter) ServerCount() int64 {
	return n.bus.serverCount(n.codec.countChannel())
}

// send publishes a message of this namespace.
func (n *nspAdapter) send(m message) error {
	m.UID, m.Nsp = n.uid, n.name
	out, err := n.codec.encode(m)
	if err != nil {
		return err
	}
	n.bus.publish(out)
	return nil
}

// reply answers a request.
func (n *nspAdapter) reply(req message, resp message) error {
	resp.RequestID, resp.To = req.RequestID, req.UID
	return n.send(resp)
}

func (n *nspAdapter) sendOrLog(m message) {
	if err := n.send(m); err != nil {
		n.bus.log.Warn("cannot encode a message for redis; delivered locally only", "err", err)
	}
}

// Broadcast publishes to the other servers, then delivers locally. In the
// streams protocol the local delivery comes from the stream, like every
// other server's (streams.go), unless Redis refuses the entry.
func (n *nspAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if n.stream != nil {
		t := targetOf(opts)
		data, ok := packet.Data.([]any)
		if t.Flags.Local || !ok || packet.Id != nil {
			// Local, or a socket's own emit with an ack (recovery routes
			// those through here): only this server has the socket, and
			// an ack cannot be recovered.
			n.Adapter.Broadcast(packet, opts)
			return
		}
		m := message{Kind: kindBroadcast, UID: n.uid, Nsp: n.name, Data: data, Target: t}
		out, err := n.codec.encode(m)
		if err != nil {
			n.bus.log.Warn("cannot encode a message for redis; delivered locally only", "err", err)
			n.Adapter.Broadcast(packet, opts)
			return
		}
		out.failed = func() { n.Adapter.Broadcast(packet, opts) }
		n.bus.publish(out)
		return
	}
	if t := targetOf(opts); !t.Flags.Local {
		if data, ok := packet.Data.([]any); ok {
			n.sendOrLog(message{Kind: kindBroadcast, Data: data, Target: t})
		}
	}
	n.deliver(packet, opts)
}

// deliver writes a broadcast to the local sockets it targets, keeping it
// for recovery first (the offset joins its data, as in Node).
func (n *nspAdapter) deliver(packet *parser.Packet, opts *socket.BroadcastOptions) {
	n.deliverRaw(packet, opts, nil)
}

// deliverRaw is deliver for a broadcast from Redis whose payload, raw,
// the recovery store may keep instead of the packet (nil: none).
func (n *nspAdapter) deliverRaw(packet *parser.Packet, opts *socket.BroadcastOptions, raw []byte) {
	if dropForChaos() {
		return
	}
	if n.store != nil {
		// Offsets must reach each client in their order: a client whose
		// transport dies between two writes has the offset of the last it
		// got, and a restore replays what comes after it.
		n.deliverMu.Lock()
		defer n.deliverMu.Unlock()
		if t := targetOf(opts); storable(packet, t) {
			n.store.record(packet, t, raw)
		}
	}
	n.Adapter.Broadcast(packet, opts)
}

// BroadcastWithAck publishes a request that other servers answer with
// their client count and then one message per client acknowledgement.
func (n *nspAdapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCount func(uint64), ack socket.Ack) {
	if t := targetOf(opts); !t.Flags.Local {
		if data, ok := packet.Data.([]any); ok {
			id := n.bus.newUID()
			timeout := n.bus.opts.RequestTimeout
			if t.Flags.Timeout != nil {
				timeout = *t.Flags.Timeout
			}
			n.acks.add(id, clientCount, ack, timeout)
			if err := n.send(message{Kind: kindBroadcast, RequestID: id, Data: data, Target: t}); err != nil {
				n.acks.remove(id)
				n.bus.log.Warn("cannot encode a broadcast for redis; delivered locally only", "err", err)
			}
		}
	}
	n.Adapter.BroadcastWithAck(packet, opts, clientCount, ack)
}

// FetchSockets returns the matching sockets of every server. Servers that
// do not answer in time are left out and the callback gets an error
// naming how many answered, with the sockets it has.
func (n *nspAdapter) FetchSockets(opts *socket.BroadcastOptions) func(func([]socket.SocketDetails, error)) {
	return func(cb func([]socket.SocketDetails, error)) {
		var sockets []socket.SocketDetails
		n.Adapter.FetchSockets(opts)(func(local []socket.SocketDetails, _ error) { sockets = local })
		t := targetOf(opts)
		if t.Flags.Local {
			cb(sockets, nil)
			return
		}
		expected := int(n.ServerCount()) - 1
		if expected <= 0 {
			cb(sockets, nil)
			return
		}
		id := n.bus.newUID()
		p := n.pending.add(id, kindFetchSockets, expected)
		if err := n.send(message{Kind: kindFetchSockets, RequestID: id, Target: t}); err != nil {
			n.pending.remove(id)
			cb(sockets, fmt.Errorf("fetchSockets: %w", err))
			return
		}
		err := n.wait(id, p, "fetchSockets", t.Flags.Timeout)
		cb(append(sockets, p.sockets()...), err)
	}
}

// AddSockets makes the matching sockets of every server join rooms.
func (n *nspAdapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	n.remoteSelect(opts, message{Kind: kindSocketsJoin, Rooms: roomStrings(rooms)})
	n.Adapter.AddSockets(opts, rooms)
}

// DelSockets makes the matching sockets of every server leave rooms.
func (n *nspAdapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	n.remoteSelect(opts, message{Kind: kindSocketsLeave, Rooms: roomStrings(rooms)})
	n.Adapter.DelSockets(opts, rooms)
}

// DisconnectSockets disconnects the matching sockets of every server.
func (n *nspAdapter) DisconnectSockets(opts *socket.BroadcastOptions, close bool) {
	n.remoteSelect(opts, message{Kind: kindDisconnectSockets, Close: close})
	n.Adapter.DisconnectSockets(opts, close)
}

func (n *nspAdapter) remoteSelect(opts *socket.BroadcastOptions, m message) {
	if m.Target = targetOf(opts); !m.Target.Flags.Local {
		n.sendOrLog(m)
	}
}

// ServerSideEmit sends an event to the other servers; with a socket.Ack as
// last argument, the ack gets one response per server (or an error after
// the request timeout, with the responses that came).
func (n *nspAdapter) ServerSideEmit(packet []any) error {
	if len(packet) == 0 {
		return errors.New("serverSideEmit: no event name")
	}
	ack, withAck := packet[len(packet)-1].(socket.Ack)
	if !withAck {
		return n.send(message{Kind: kindServerSideEmit, Data: packet})
	}
	packet = packet[:len(packet)-1]
	expected := int(n.ServerCount()) - 1
	if expected <= 0 {
		ack([]any{}, nil)
		return nil
	}
	id := n.bus.newUID()
	p := n.pending.add(id, kindServerSideEmit, expected)
	if err := n.send(message{Kind: kindServerSideEmit, RequestID: id, Data: packet}); err != nil {
		n.pending.remove(id)
		return err
	}
	n.bus.wg.Add(1)
	go func() {
		defer n.bus.wg.Done()
		err := n.wait(id, p, "serverSideEmit", nil)
		ack(p.values(), err)
	}()
	return nil
}

// DelAll forgets a socket that leaves every room (it disconnected; its
// session, if kept, was persisted first).
func (n *nspAdapter) DelAll(id socket.SocketId) {
	if n.store != nil {
		n.store.forget(id)
	}
	if n.stream != nil && n.csr {
		n.bus.leases.ended(n, id)
		n.lastMu.Lock()
		delete(n.lastBySid, id)
		n.lastMu.Unlock()
	}
	n.Adapter.DelAll(id)
}

// Del makes a socket leave a room.
func (n *nspAdapter) Del(id socket.SocketId, room socket.Room) {
	if n.stream != nil && n.csr {
		// what the room was sent while the socket was in it stays the
		// socket's (lastSentTo looks at its rooms of the moment)
		n.lastMu.Lock()
		if r, ok := n.lastByRoom[room]; ok && n.lastBySid[id].less(r) {
			n.lastBySid[id] = r
		}
		n.lastMu.Unlock()
	}
	n.Adapter.Del(id, room)
	if n.stream != nil && n.csr {
		n.bus.leases.changed(n, id)
	}
}

// PersistSession keeps a disconnected session (and the events for its
// rooms, see record and keepUnread) while it may come back; in the streams protocol, in Redis.
func (n *nspAdapter) PersistSession(s *socket.SessionToPersist) {
	if n.stream != nil {
		if n.csr && s != nil {
			n.bus.leases.persist(n, s)
		}
		return
	}
	if n.store != nil && s != nil {
		n.store.persist(s)
	}
}

// awayUntil says whether a disconnected session that may still come back
// was in room (never, with recovery off), and until when.
func (n *nspAdapter) awayUntil(room socket.Room) (time.Time, bool) {
	if n.store == nil {
		return time.Time{}, false
	}
	return n.store.awayUntil(room, time.Now())
}

// roomCreated subscribes a new room's channel (sharded dynamic modes).
// Node's rule: not for a socket's own room; ours also subscribes own rooms
// whose ids do not look like Node's (see shardedCodec.roomSubscription).
func (n *nspAdapter) roomCreated(room socket.Room) {
	_, isSid := n.Sids().Load(socket.SocketId(room))
	sub, ok := n.codec.roomSubscription(string(room), isSid)
	if !ok {
		return
	}
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	if n.closed {
		return
	}
	n.roomSubs[room] = sub
	n.bus.want(n, sub)
}

// roomDeleted unsubscribes a room's channel, unless a session that may
// come back was in it: then it is dropped when that session expires.
func (n *nspAdapter) roomDeleted(room socket.Room) {
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	n.dropRoomLocked(room)
}

func (n *nspAdapter) dropRoomLocked(room socket.Room) {
	sub, ok := n.roomSubs[room]
	if !ok || n.closed {
		return
	}
	if _, exists := n.Rooms().Load(room); exists {
		return // created again meanwhile
	}
	if until, away := n.awayUntil(room); away {
		var t *time.Timer
		t = time.AfterFunc(time.Until(until)+10*time.Millisecond, func() {
			n.roomMu.Lock()
			defer n.roomMu.Unlock()
			delete(n.timers, t)
			n.dropRoomLocked(room)
		})
		n.timers[t] = struct{}{}
		return
	}
	delete(n.roomSubs, room)
	n.bus.unwant(n, sub)
}

// onMessage decodes and applies a message received from Redis.
func (n *nspAdapter) onMessage(channel string, payload []byte) error {
	if channel == n.handover {
		return n.onHandover(payload)
	}
	if room, ok := n.codec.roomOf(channel); ok && n.buffering.Load() == 0 {
		if _, local := n.Rooms().Load(socket.Room(room)); !local {
			// Not decoded at all: the common case for user rooms. Away
			// sessions of the room keep it as it came.
			if n.store != nil && !sentBy(payload, n.uid) {
				n.store.keepUnread(socket.Room(room), payload)
			}
			return nil
		}
	}
	m, err := n.codec.decode(channel, payload)
	if err != nil {
		return err
	}
	if tap := n.bus.tap.Load(); tap != nil && m.UID != n.uid {
		(*tap)(channel, payload, m)
	}
	if !m.Kind.isResponse() && (m.UID == n.uid || m.Nsp != n.name) {
		return nil // ours (already applied locally), or another namespace's
	}
	return n.apply(m)
}

// unread decodes a broadcast kept by keepUnread: the event data, if a
// socket in rooms would have been sent it.
func (n *nspAdapter) unread(payload []byte, rooms *types.Set[socket.Room]) ([]any, bool) {
	m, err := decodeBroadcast(payload)
	if err != nil || m.Nsp != n.name || m.RequestID != "" {
		return nil, false
	}
	if p := (&parser.Packet{Type: parser.EVENT, Data: m.Data}); !storable(p, m.Target) || !targets(rooms, m.Target) {
		return nil, false
	}
	return m.Data, true
}

// apply carries out a message of another server (or of an emitter).
func (n *nspAdapter) apply(m message) error {
	switch m.Kind {
	case kindBroadcast:
		if m.RequestID != "" {
			n.onBroadcastWithAck(m)
			return nil
		}
		if n.buffering.Load() > 0 {
			n.bufferBroadcast(m)
		}
		n.deliverRaw(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: m.Data}, optionsOf(m.Target), m.raw)
	case kindSocketsJoin, kindSocketsLeave, kindDisconnectSockets:
		return n.onRemoteSelect(m)
	case kindFetchSockets:
		var out []any
		n.Adapter.FetchSockets(optionsOf(m.Target))(func(local []socket.SocketDetails, _ error) {
			out = make([]any, 0, len(local))
			for _, s := range local {
				out = append(out, socketJSON(s))
			}
		})
		return n.reply(m, message{Kind: kindFetchSocketsResponse, Sockets: out})
	case kindServerSideEmit:
		n.onServerSideEmit(m)
	case kindSockets:
		ids := n.Sockets(roomSet(m.Rooms))
		out := make([]any, 0, ids.Len())
		for _, id := range ids.Keys() {
			out = append(out, string(id))
		}
		return n.reply(m, message{Kind: kindSocketsResponse, Sockets: out})
	case kindAllRooms:
		rooms := []string{}
		n.Rooms().Range(func(room socket.Room, _ *types.Set[socket.SocketId]) bool {
			rooms = append(rooms, string(room))
			return true
		})
		return n.reply(m, message{Kind: kindAllRoomsResponse, Rooms: rooms})
	case kindFetchSocketsResponse, kindServerSideEmitResponse, kindBroadcastClientCount, kindBroadcastAck:
		n.onResponse(m)
	}
	return nil
}

func (n *nspAdapter) onRemoteSelect(m message) error {
	if m.Legacy { // classic single-socket form, answered
		s, ok := n.nsp.Sockets().Load(socket.SocketId(m.Sid))
		if !ok {
			return nil
		}
		switch m.Kind {
		case kindSocketsJoin:
			s.Join(socket.Room(m.Room))
		case kindSocketsLeave:
			s.Leave(socket.Room(m.Room))
		default:
			s.Disconnect(m.Close)
		}
		return n.reply(m, message{Kind: kindLegacyDone})
	}
	opts := optionsOf(m.Target)
	switch m.Kind {
	case kindSocketsJoin:
		n.Adapter.AddSockets(opts, roomsOf(m.Rooms))
	case kindSocketsLeave:
		n.Adapter.DelSockets(opts, roomsOf(m.Rooms))
	default:
		n.Adapter.DisconnectSockets(opts, m.Close)
	}
	return nil
}

func (n *nspAdapter) onServerSideEmit(m message) {
	if m.RequestID == "" {
		n.nsp.OnServerSideEmit(m.Data)
		return
	}
	var once sync.Once
	reply := socket.Ack(func(args []any, _ error) {
		once.Do(func() {
			_ = n.reply(m, message{Kind: kindServerSideEmitResponse, Value: firstOrNil(args)})
		})
	})
	n.nsp.OnServerSideEmit(append(m.Data, reply))
}

func (n *nspAdapter) onBroadcastWithAck(m message) {
	if n.acks.has(m.RequestID) {
		return // our own request (classic Node servers send no uid with it)
	}
	n.Adapter.BroadcastWithAck(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: m.Data}, optionsOf(m.Target),
		func(count uint64) {
			_ = n.reply(m, message{Kind: kindBroadcastClientCount, ClientCount: count})
		},
		func(args []any, _ error) {
			_ = n.reply(m, message{Kind: kindBroadcastAck, Value: firstOrNil(args)})
		})
}

// onResponse collects the answers to this server's requests.
func (n *nspAdapter) onResponse(m message) {
	switch m.Kind {
	case kindBroadcastClientCount:
		n.acks.count(m.RequestID, m.ClientCount)
		return
	case kindBroadcastAck:
		n.acks.ack(m.RequestID, m.Value)
		return
	}
	p := n.pending.get(m.RequestID)
	if p == nil {
		return // someone else's, or too late
	}
	switch {
	case m.Kind == kindFetchSocketsResponse && p.op == kindFetchSockets:
		details := make([]socket.SocketDetails, 0, len(m.Sockets))
		for _, s := range m.Sockets {
			if d, err := remoteSocketFrom(s); err == nil {
				details = append(details, d)
			}
		}
		p.addSockets(details)
	case m.Kind == kindServerSideEmitResponse && p.op == kindServerSideEmit:
		p.addValue(m.Value)
	}
}

// wait blocks until a request has all its answers or times out.
func (n *nspAdapter) wait(id string, p *pendingRequest, what string, timeout *time.Duration) error {
	defer n.pending.remove(id)
	d := n.bus.opts.RequestTimeout
	if timeout != nil && *timeout > 0 {
		d = *timeout
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err()
	case <-t.C:
		n.bus.timedOut.Add(1)
		got, want := p.progress()
		return fmt.Errorf("%s: timeout reached: only %d responses received out of %d", what, got, want)
	case <-n.bus.ctx.Done():
		return errors.New(what + ": adapter closed")
	}
}

// targetOf turns the library's options into the wire selector.
func targetOf(opts *socket.BroadcastOptions) target {
	var t target
	if opts == nil {
		return t
	}
	if opts.Rooms != nil {
		t.Rooms = roomStrings(opts.Rooms.Keys())
	}
	if opts.Except != nil {
		t.Except = roomStrings(opts.Except.Keys())
	}
	if f := opts.Flags; f != nil {
		t.Flags = flags{Volatile: f.Volatile, Compress: f.Compress, Local: f.Local, Timeout: f.Timeout}
	}
	return t
}

// optionsOf turns a wire selector into the library's options, for local
// delivery.
func optionsOf(t target) *socket.BroadcastOptions {
	f := &socket.BroadcastFlags{}
	f.Volatile = t.Flags.Volatile
	f.Compress = t.Flags.Compress
	f.Timeout = t.Flags.Timeout
	return &socket.BroadcastOptions{Rooms: roomSet(t.Rooms), Except: roomSet(t.Except), Flags: f}
}

func roomSet(rooms []string) *types.Set[socket.Room] {
	return types.NewSet(roomsOf(rooms)...)
}

func roomsOf(rooms []string) []socket.Room {
	out := make([]socket.Room, len(rooms))
	for i, r := range rooms {
		out[i] = socket.Room(r)
	}
	return out
}

func roomStrings(rooms []socket.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

func firstOrNil(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// socketJSON is a socket as Node's fetchSockets response carries it.
func socketJSON(s socket.SocketDetails) map[string]any {
	rooms := []string{}
	if r := s.Rooms(); r != nil {
		rooms = roomStrings(r.Keys())
	}
	return map[string]any{"id": string(s.Id()), "handshake": s.Handshake(), "rooms": rooms, "data": s.Data()}
}

// remoteSocket is a socket of another server, as fetchSockets returns it.
type remoteSocket struct {
	id        socket.SocketId
	handshake *socket.Handshake
	rooms     *types.Set[socket.Room]
	data      any
}

func (r *remoteSocket) Id() socket.SocketId            { return r.id }
func (r *remoteSocket) Handshake() *socket.Handshake   { return r.handshake }
func (r *remoteSocket) Rooms() *types.Set[socket.Room] { return r.rooms }
func (r *remoteSocket) Data() any                      { return r.data }

func remoteSocketFrom(v any) (*remoteSocket, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("socket is not an object")
	}
	id, _ := m["id"].(string)
	if id == "" {
		return nil, errors.New("socket without id")
	}
	hs := &socket.Handshake{}
	if raw, err := json.Marshal(m["handshake"]); err == nil {
		_ = json.Unmarshal(raw, hs) // a partial handshake is still useful
	}
	return &remoteSocket{id: socket.SocketId(id), handshake: hs, rooms: roomSet(stringList(m["rooms"])), data: m["data"]}, nil
}
