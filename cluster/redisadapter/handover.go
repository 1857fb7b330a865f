package redisadapter

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Session handover: connection state recovery across servers, for the
// common case of a reload or scale-down.
//
// A draining server closes its clients' transports; each client reconnects
// through the front door to another server, with the private id of its
// session and the offset of the last event it got. The session (rooms,
// data) and the events missed since that offset are in the memory of the
// server it left, which keeps receiving and storing broadcasts for it
// while it drains (see PersistSession and keepUnread). So the new server,
// when it does not know the session, asks the others on a channel of
// their own, "<key>-frutos#<nsp>#", and the old one answers with the
// session and the missed events. The client gets recovered=true and every
// event emitted to it meanwhile, the Node emitter's included.
//
// Only frutos servers listen on that channel, so Node servers of a mixed
// fleet are neither asked nor waited for. Offsets stay those of the
// server that stored the events: the answer is consistent with the offset
// the client sent. What it cannot do is recover a session whose server is
// gone (crashed, or exited before the client came back): that needs a
// shared log (RECOVERY.md).

// handoverWait bounds how long a connecting client waits for the answer;
// joinWait how long the receiving goroutine waits for it to join its rooms.
const (
	handoverWait = 2 * time.Second
	joinWait     = 500 * time.Millisecond
)

func handoverChannel(key, nsp string) string { return key + "-frutos#" + nsp + "#" }

// handoverSub is the subscription of the handover channel.
func (n *nspAdapter) handoverSub() subscription {
	mode := subChannel
	if n.bus.opts.Sharded {
		mode = subShard
	}
	return subscription{mode: mode, name: n.handover}
}

// RestoreSession restores a session this server kept, or else asks the
// other frutos servers for it (the client may come from one that drains).
func (n *nspAdapter) RestoreSession(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	if n.stream != nil {
		if !n.csr {
			return nil, nil
		}
		return n.restoreFromRedis(pid, offset)
	}
	if n.store == nil {
		return nil, nil
	}
	if s := n.store.restore(pid, offset); s != nil {
		return s, nil
	}
	return n.restoreFromPeer(pid, offset)
}

func (n *nspAdapter) restoreFromPeer(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	peers := int(n.bus.serverCount(n.handover)) - 1
	if peers <= 0 {
		return nil, nil
	}
	id := newID(8)
	w := n.handovers.add(id, peers)
	defer n.handovers.remove(id)
	defer n.takeBuffer(id)
	payload, err := encodeHandover(map[string]any{"t": "restore", "uid": n.uid, "id": id, "pid": string(pid), "offset": offset})
	if err != nil {
		return nil, err
	}
	n.bus.publish(outgoing{channel: n.handover, payload: payload})
	t := time.NewTimer(min(handoverWait, n.bus.opts.RequestTimeout))
	defer t.Stop()
	select {
	case s := <-w.found:
		n.bus.handedOver.Add(1)
		return s, nil
	case <-w.none:
		return nil, nil
	case <-t.C:
		return nil, nil // nobody has it: a new session
	case <-n.bus.ctx.Done():
		return nil, nil
	}
}

// onHandover handles the handover channel: requests from servers that
// look for a session, and the answers to our own requests.
func (n *nspAdapter) onHandover(payload []byte) error {
	v, err := decodeValue(payload)
	if err != nil {
		return err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return errors.New("handover: not a map")
	}
	uid, _ := m["uid"].(string)
	id, _ := m["id"].(string)
	switch m["t"] {
	case "restore":
		if uid == n.uid {
			// Our own request, back from Redis: from here until the
			// answer, broadcasts reach the old server after it answered,
			// so they are not among the missed events; keep them.
			n.startBuffer(id)
			return nil
		}
		if id == "" {
			return nil
		}
		pid, _ := m["pid"].(string)
		offset, _ := m["offset"].(string)
		return n.answerHandover(uid, id, socket.PrivateSessionId(pid), offset)
	case "session":
		if to, _ := m["to"].(string); to != n.uid {
			return nil
		}
		found, _ := m["found"].(bool)
		if !found {
			n.handovers.none(id)
			return nil
		}
		s, err := sessionFrom(m)
		if err != nil {
			return err
		}
		s.MissedPackets = append(s.MissedPackets, n.keepForSession(s, n.takeBuffer(id))...)
		// Hold this receiving goroutine until the restored socket has
		// joined its rooms: a broadcast published after the old server
		// answered is not among the missed events, so it must find the
		// socket in its rooms here.
		joined := n.expectJoins(s)
		if n.handovers.found(id, s) {
			select {
			case <-joined:
			case <-time.After(joinWait):
			}
		}
		n.forgetJoins(s.Sid)
		return nil
	}
	return fmt.Errorf("handover: unknown message %v", m["t"])
}

// answerHandover gives away a session this server kept, with the events
// it missed; the session is then forgotten here.
func (n *nspAdapter) answerHandover(to, id string, pid socket.PrivateSessionId, offset string) error {
	answer := map[string]any{"t": "session", "uid": n.uid, "to": to, "id": id, "found": false}
	if pid != "" && n.store != nil {
		if s := n.store.restore(pid, offset); s != nil && s.SessionToPersist != nil {
			rooms := []string{}
			if s.Rooms != nil {
				rooms = roomStrings(s.Rooms.Keys())
			}
			missed := s.MissedPackets
			if missed == nil {
				missed = []any{}
			}
			answer["found"] = true
			answer["sid"] = string(s.Sid)
			answer["pid"] = string(s.Pid)
			answer["rooms"] = rooms
			answer["data"] = s.Data
			answer["missed"] = missed
		}
	}
	payload, err := encodeHandover(answer)
	if err != nil {
		return err
	}
	n.bus.publish(outgoing{channel: n.handover, payload: payload})
	return nil
}

func encodeHandover(m map[string]any) ([]byte, error) {
	return appendValue(make([]byte, 0, 256), m)
}

func sessionFrom(m map[string]any) (*socket.Session, error) {
	sid, _ := m["sid"].(string)
	pid, _ := m["pid"].(string)
	if sid == "" || pid == "" {
		return nil, errors.New("handover: session without ids")
	}
	missed, _ := m["missed"].([]any)
	return &socket.Session{
		SessionToPersist: &socket.SessionToPersist{
			Sid:   socket.SocketId(sid),
			Pid:   socket.PrivateSessionId(pid),
			Rooms: types.NewSet(roomsOf(stringList(m["rooms"]))...),
			Data:  m["data"],
		},
		MissedPackets: missed,
	}, nil
}

// awaySessionCount is how many disconnected sessions may still be
// restored from this server.
func (n *nspAdapter) awaySessionCount() int {
	if n.store == nil {
		return 0
	}
	return n.store.awayCount()
}

// AwaySessions is the number of disconnected sessions this server keeps
// for clients that may come back (or be handed over). A draining worker
// waits for them to be claimed before it exits.
func (a *Adapter) AwaySessions() int {
	a.mu.Lock()
	nsps := make([]*nspAdapter, 0, len(a.namespaces))
	for _, n := range a.namespaces {
		nsps = append(nsps, n)
	}
	a.mu.Unlock()
	total := 0
	for _, n := range nsps {
		total += n.awaySessionCount()
	}
	return total
}

// handoverWaiters routes answers to the requests of this namespace.
type handoverWaiters struct {
	mu sync.Mutex
	m  map[string]*handoverWaiter
}

type handoverWaiter struct {
	left  int // answers still expected
	found chan *socket.Session
	none  chan struct{} // closed when every peer said no
}

func (h *handoverWaiters) add(id string, peers int) *handoverWaiter {
	w := &handoverWaiter{left: peers, found: make(chan *socket.Session, 1), none: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*handoverWaiter{}
	}
	h.m[id] = w
	return w
}

func (h *handoverWaiters) remove(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, id)
}

// found hands a session to its waiter; false when nobody waits for it.
func (h *handoverWaiters) found(id string, s *socket.Session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.m[id]; w != nil {
		select {
		case w.found <- s:
			return true
		default:
		}
	}
	return false
}

func (h *handoverWaiters) none(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.m[id]; w != nil && w.left > 0 {
		w.left--
		if w.left == 0 {
			close(w.none)
		}
	}
}

// expectJoins returns a channel closed once the socket of s has joined
// every room of the session (AddAll reports the joins).
func (n *nspAdapter) expectJoins(s *socket.Session) <-chan struct{} {
	j := &pendingJoins{rooms: map[socket.Room]bool{}, done: make(chan struct{})}
	if s.Rooms != nil {
		for _, r := range s.Rooms.Keys() {
			j.rooms[r] = true
		}
	}
	if len(j.rooms) == 0 {
		close(j.done)
		return j.done
	}
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	n.joining[s.Sid] = j
	return j.done
}

func (n *nspAdapter) forgetJoins(sid socket.SocketId) {
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	delete(n.joining, sid)
}

// AddAll joins a socket to rooms, notes its creation (its first join, for
// recovery without an offset), and tells a handover waiting for a
// restored socket's joins.
func (n *nspAdapter) AddAll(id socket.SocketId, rooms *types.Set[socket.Room]) {
	if n.store != nil {
		n.store.joined(id)
	}
	n.Adapter.AddAll(id, rooms)
	if n.stream != nil && n.csr {
		if n.restoringN.Load() > 0 && rooms != nil && rooms.Has(socket.Room(id)) {
			n.finishRestore(id)
		}
		n.bus.leases.changed(n, id)
	}
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	j := n.joining[id]
	if j == nil || rooms == nil {
		return
	}
	for _, r := range rooms.Keys() {
		delete(j.rooms, r)
	}
	if len(j.rooms) == 0 {
		delete(n.joining, id)
		close(j.done)
	}
}

// pendingJoins are the rooms a restored socket has still to join.
type pendingJoins struct {
	rooms map[socket.Room]bool
	done  chan struct{}
}

// maxHandoverBuffer bounds the broadcasts kept while a handover is in
// flight (it lasts a Redis round trip).
const maxHandoverBuffer = 10000

// handoverBuffer keeps the broadcasts received while a handover request
// waits for its answer.
type handoverBuffer struct {
	packets []bufferedPacket
}

type bufferedPacket struct {
	data   []any
	target target
}

func (n *nspAdapter) startBuffer(id string) {
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	if _, ok := n.buffers[id]; !ok {
		n.buffers[id] = &handoverBuffer{}
		n.buffering.Add(1)
	}
}

func (n *nspAdapter) takeBuffer(id string) *handoverBuffer {
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	b, ok := n.buffers[id]
	if ok {
		delete(n.buffers, id)
		n.buffering.Add(-1)
	}
	return b
}

// bufferBroadcast keeps a received broadcast for the handovers in flight.
func (n *nspAdapter) bufferBroadcast(m message) {
	if m.Target.Flags.Volatile {
		return // volatile events are never recovered
	}
	n.roomMu.Lock()
	defer n.roomMu.Unlock()
	for _, b := range n.buffers {
		if len(b.packets) < maxHandoverBuffer {
			b.packets = append(b.packets, bufferedPacket{data: append([]any(nil), m.Data...), target: m.Target})
		}
	}
}

// keepForSession stores, in this server's session store, the buffered
// broadcasts meant for the session being restored, and returns them (with
// this server's offsets) to be sent after the old server's missed events.
func (n *nspAdapter) keepForSession(s *socket.Session, b *handoverBuffer) []any {
	if b == nil || s.Rooms == nil || n.store == nil {
		return nil
	}
	var out []any
	for _, p := range b.packets {
		if targets(s.Rooms, p.target) {
			out = append(out, n.store.keepOnly(s.Sid, p.data))
		}
	}
	return out
}

// targets reports whether a broadcast to t reaches a socket in rooms.
func targets(rooms *types.Set[socket.Room], t target) bool {
	included := len(t.Rooms) == 0
	for _, r := range t.Rooms {
		if rooms.Has(socket.Room(r)) {
			included = true
			break
		}
	}
	for _, r := range t.Except {
		if rooms.Has(socket.Room(r)) {
			return false
		}
	}
	return included
}
