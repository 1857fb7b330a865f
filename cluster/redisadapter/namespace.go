package redisadapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// nspAdapter is the adapter of one namespace. It embeds the library's
// in-memory adapter (session-aware when connection state recovery is on),
// which does every local delivery, and adds the Redis side: what the
// namespace does is published, what the other servers publish is applied
// locally through the embedded adapter.
type nspAdapter struct {
	socket.Adapter

	bus              *Adapter
	nsp              socket.Namespace
	name             string
	uid              string
	ch               channels
	specificResponse string

	// recovery: every received broadcast is kept for sessions that may
	// come back, so the "skip rooms we do not have" shortcut must spare
	// the rooms of disconnected sessions (away).
	recovery bool
	awayFor  time.Duration
	awayMu   sync.Mutex
	away     map[socket.Room]time.Time

	pending pendingSet
	acks    ackSet
}

func newNspAdapter(bus *Adapter, nsp socket.Namespace) *nspAdapter {
	csr := nsp.Server().Opts().ConnectionStateRecovery()
	var inner socket.Adapter
	if csr != nil {
		inner = socket.MakeSessionAwareAdapter()
	} else {
		inner = socket.MakeAdapter()
	}
	n := &nspAdapter{
		Adapter: inner,
		bus:     bus,
		nsp:     nsp,
		name:    nsp.Name(),
		uid:     newID(6),
		ch:      channelsFor(bus.opts.Key, nsp.Name()),
	}
	n.specificResponse = n.ch.response + n.uid + "#"
	if csr != nil {
		n.recovery = true
		n.awayFor = time.Duration(csr.MaxDisconnectionDuration()) * time.Millisecond
		n.away = map[socket.Room]time.Time{}
	}
	n.Prototype(n)
	n.Construct(nsp)
	return n
}

// Init subscribes the namespace's channels (the namespace calls it after New).
func (n *nspAdapter) Init() {
	n.Adapter.Init()
	n.bus.register(n)
}

// Close unsubscribes and fails the requests still waiting.
func (n *nspAdapter) Close() {
	n.bus.unregister(n)
	n.pending.failAll(errors.New("adapter closed"))
	n.acks.clear()
	n.Adapter.Close()
}

// ServerCount is the number of servers on this namespace, this one included.
func (n *nspAdapter) ServerCount() int64 {
	return n.bus.serverCount(n.ch.request)
}

// Broadcast publishes to the other servers, then delivers locally.
func (n *nspAdapter) Broadcast(packet *parser.Packet, opts *socket.BroadcastOptions) {
	if t := targetOf(opts); !t.Flags.Local {
		if data, ok := packet.Data.([]any); ok {
			msg, err := encodeBroadcast(broadcastMessage{UID: n.uid, Nsp: n.name, Data: data, Target: t})
			if err != nil {
				n.bus.log.Warn("cannot encode a broadcast for redis; delivered locally only", "err", err)
			} else {
				n.bus.publish(n.ch.broadcastChannel(t.Rooms), msg)
			}
		}
	}
	n.Adapter.Broadcast(packet, opts)
}

// BroadcastWithAck publishes a request that other servers answer with
// their client count and then one message per client acknowledgement.
func (n *nspAdapter) BroadcastWithAck(packet *parser.Packet, opts *socket.BroadcastOptions, clientCount func(uint64), ack socket.Ack) {
	if t := targetOf(opts); !t.Flags.Local {
		if data, ok := packet.Data.([]any); ok {
			id := newID(6)
			msg, err := encodeBroadcastRequest(n.uid, id, n.name, data, t)
			if err != nil {
				n.bus.log.Warn("cannot encode a broadcast for redis; delivered locally only", "err", err)
			} else {
				timeout := n.bus.opts.RequestTimeout
				if t.Flags.Timeout != nil {
					timeout = *t.Flags.Timeout
				}
				n.acks.add(id, clientCount, ack, timeout)
				n.bus.publish(n.ch.request, msg)
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
		id := newID(6)
		p := n.pending.add(id, reqRemoteFetch, expected)
		n.publishJSON(n.ch.request, map[string]any{
			"uid": n.uid, "requestId": id, "type": reqRemoteFetch, "opts": targetJSON(t),
		})
		err := n.wait(id, p, "fetchSockets")
		cb(append(sockets, p.sockets()...), err)
	}
}

// AddSockets makes the matching sockets of every server join rooms.
func (n *nspAdapter) AddSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	n.remoteSelect(opts, reqRemoteJoin, map[string]any{"rooms": roomStrings(rooms)})
	n.Adapter.AddSockets(opts, rooms)
}

// DelSockets makes the matching sockets of every server leave rooms.
func (n *nspAdapter) DelSockets(opts *socket.BroadcastOptions, rooms []socket.Room) {
	n.remoteSelect(opts, reqRemoteLeave, map[string]any{"rooms": roomStrings(rooms)})
	n.Adapter.DelSockets(opts, rooms)
}

// DisconnectSockets disconnects the matching sockets of every server.
func (n *nspAdapter) DisconnectSockets(opts *socket.BroadcastOptions, close bool) {
	n.remoteSelect(opts, reqRemoteDisconnect, map[string]any{"close": close})
	n.Adapter.DisconnectSockets(opts, close)
}

func (n *nspAdapter) remoteSelect(opts *socket.BroadcastOptions, typ int, fields map[string]any) {
	t := targetOf(opts)
	if t.Flags.Local {
		return
	}
	fields["uid"] = n.uid
	fields["type"] = typ
	fields["opts"] = targetJSON(t)
	n.publishJSON(n.ch.request, fields)
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
		return n.publishJSON(n.ch.request, map[string]any{"uid": n.uid, "type": reqServerSideEmit, "data": packet})
	}
	packet = packet[:len(packet)-1]
	expected := int(n.ServerCount()) - 1
	if expected <= 0 {
		ack([]any{}, nil)
		return nil
	}
	id := newID(6)
	p := n.pending.add(id, reqServerSideEmit, expected)
	if err := n.publishJSON(n.ch.request, map[string]any{
		"uid": n.uid, "requestId": id, "type": reqServerSideEmit, "data": packet,
	}); err != nil {
		n.pending.remove(id)
		return err
	}
	n.bus.wg.Add(1)
	go func() {
		defer n.bus.wg.Done()
		err := n.wait(id, p, "serverSideEmit")
		ack(p.values(), err)
	}()
	return nil
}

// PersistSession remembers the rooms of a disconnected session so that
// broadcasts to them are kept while it may come back.
func (n *nspAdapter) PersistSession(s *socket.SessionToPersist) {
	if n.recovery && s != nil && s.Rooms != nil {
		until := time.Now().Add(n.awayFor)
		n.awayMu.Lock()
		for _, r := range s.Rooms.Keys() {
			n.away[r] = until
		}
		n.awayMu.Unlock()
	}
	n.Adapter.PersistSession(s)
}

// wanted reports whether a broadcast sent to exactly this room matters
// here: a local socket is in it, or a session that may come back was.
func (n *nspAdapter) wanted(room socket.Room) bool {
	if _, ok := n.Rooms().Load(room); ok {
		return true
	}
	if !n.recovery {
		return false
	}
	now := time.Now()
	n.awayMu.Lock()
	defer n.awayMu.Unlock()
	until, ok := n.away[room]
	if ok && now.After(until) {
		delete(n.away, room)
		ok = false
	}
	if len(n.away) > 1024 && len(n.away)%1024 == 0 { // sweep now and then
		for r, u := range n.away {
			if now.After(u) {
				delete(n.away, r)
			}
		}
	}
	return ok
}

// onBroadcast applies a broadcast published by another server.
func (n *nspAdapter) onBroadcast(channel string, payload []byte) error {
	if len(channel) > len(n.ch.broadcast) {
		room := channel[len(n.ch.broadcast) : len(channel)-1]
		if room != "" && !n.wanted(socket.Room(room)) {
			return nil // not decoded at all: the common case for user rooms
		}
	}
	m, err := decodeBroadcast(payload)
	if err != nil {
		return err
	}
	if m.UID == n.uid || m.Nsp != n.name {
		return nil
	}
	n.Adapter.Broadcast(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: m.Data}, optionsOf(m.Target))
	return nil
}

// onRequest answers a request of another server (or of an emitter).
func (n *nspAdapter) onRequest(payload []byte) error {
	r, err := decodeRequest(payload)
	if err != nil {
		return err
	}
	if r.UID == n.uid {
		return nil // ours: already applied locally
	}
	switch r.Type {
	case reqSockets:
		ids := n.Sockets(roomSet(r.Rooms))
		out := make([]string, 0, ids.Len())
		for _, id := range ids.Keys() {
			out = append(out, string(id))
		}
		return n.respond(map[string]any{"requestId": r.RequestID, "sockets": out})
	case reqAllRooms:
		rooms := []string{}
		n.Rooms().Range(func(room socket.Room, _ *types.Set[socket.SocketId]) bool {
			rooms = append(rooms, string(room))
			return true
		})
		return n.respond(map[string]any{"requestId": r.RequestID, "rooms": rooms})
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		return n.onRemoteSelect(r)
	case reqRemoteFetch:
		var out []map[string]any
		n.Adapter.FetchSockets(optionsOf(optsTarget(r.Opts)))(func(local []socket.SocketDetails, _ error) {
			out = make([]map[string]any, 0, len(local))
			for _, s := range local {
				out = append(out, socketJSON(s))
			}
		})
		return n.respond(map[string]any{"requestId": r.RequestID, "sockets": out})
	case reqServerSideEmit:
		return n.onServerSideEmit(r)
	case reqBroadcast:
		return n.onBroadcastWithAck(r)
	}
	return nil // unknown types are ignored, as Node does
}

func (n *nspAdapter) onRemoteSelect(r request) error {
	if r.Opts == nil { // legacy form: one socket by id, answered
		s, ok := n.nsp.Sockets().Load(socket.SocketId(r.Sid))
		if !ok {
			return nil
		}
		switch r.Type {
		case reqRemoteJoin:
			s.Join(socket.Room(r.Room))
		case reqRemoteLeave:
			s.Leave(socket.Room(r.Room))
		default:
			s.Disconnect(r.Close)
		}
		return n.respond(map[string]any{"requestId": r.RequestID})
	}
	opts := optionsOf(optsTarget(r.Opts))
	switch r.Type {
	case reqRemoteJoin:
		n.Adapter.AddSockets(opts, roomsOf(r.Rooms))
	case reqRemoteLeave:
		n.Adapter.DelSockets(opts, roomsOf(r.Rooms))
	default:
		n.Adapter.DisconnectSockets(opts, r.Close)
	}
	return nil
}

func (n *nspAdapter) onServerSideEmit(r request) error {
	data, ok := r.Data.([]any)
	if !ok || len(data) == 0 {
		return errors.New("serverSideEmit: data is not [event, ...args]")
	}
	if r.RequestID == "" {
		n.nsp.OnServerSideEmit(data)
		return nil
	}
	var once sync.Once
	reply := socket.Ack(func(args []any, _ error) {
		once.Do(func() {
			_ = n.respond(map[string]any{"type": reqServerSideEmit, "requestId": r.RequestID, "data": firstOrNil(args)})
		})
	})
	n.nsp.OnServerSideEmit(append(data, reply))
	return nil
}

func (n *nspAdapter) onBroadcastWithAck(r request) error {
	if n.acks.has(r.RequestID) {
		return nil // our own request
	}
	packet, _ := r.Packet.(map[string]any)
	data, ok := packet["data"].([]any)
	if !ok || len(data) == 0 {
		return errors.New("broadcast request: packet data is not [event, ...args]")
	}
	id := r.RequestID
	n.Adapter.BroadcastWithAck(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: data}, optionsOf(optsTarget(r.Opts)),
		func(count uint64) {
			_ = n.respond(map[string]any{"type": reqBroadcastClientCount, "requestId": id, "clientCount": count})
		},
		func(args []any, _ error) {
			if msg, err := encodeBroadcastAck(id, firstOrNil(args)); err == nil {
				n.bus.publish(n.ch.response, msg)
			}
		})
	return nil
}

// onResponse collects the answers to this server's requests.
func (n *nspAdapter) onResponse(payload []byte) error {
	r, err := decodeRequest(payload)
	if err != nil {
		return err
	}
	switch r.Type {
	case reqBroadcastClientCount:
		if r.ClientCount != nil {
			n.acks.count(r.RequestID, *r.ClientCount)
		}
		return nil
	case reqBroadcastAck:
		n.acks.ack(r.RequestID, r.Packet)
		return nil
	}
	p := n.pending.get(r.RequestID)
	if p == nil {
		return nil // someone else's, or too late
	}
	switch p.kind {
	case reqRemoteFetch:
		details := make([]socket.SocketDetails, 0, len(r.Sockets))
		for _, s := range r.Sockets {
			if d, err := remoteSocketFrom(s); err == nil {
				details = append(details, d)
			}
		}
		p.addSockets(details)
	case reqServerSideEmit:
		p.addValue(r.Data)
	}
	return nil
}

// wait blocks until a request has all its answers or times out.
func (n *nspAdapter) wait(id string, p *pendingRequest, what string) error {
	defer n.pending.remove(id)
	t := time.NewTimer(n.bus.opts.RequestTimeout)
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

func (n *nspAdapter) respond(v map[string]any) error {
	return n.publishJSON(n.ch.response, v)
}

func (n *nspAdapter) publishJSON(channel string, v map[string]any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	n.bus.publish(channel, b)
	return nil
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
