package redisadapter

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// sessionStore is connection state recovery's memory, kept smaller than
// the library's session-aware adapter, which holds every event of the last
// max_disconnection (2 minutes by default, plus a minute until its cleanup)
// for everyone: at thousands of events per second, gigabytes.
//
// What a returning client needs is every event meant for it after the
// last one it got (its offset). Two kinds of events qualify:
//   - those written to its transport while the transport was already
//     dead: at most pingInterval + pingTimeout before the server noticed,
//     so a window of recent events, for everyone, of that length (recent);
//   - those emitted after the server noticed (PersistSession), for as long
//     as the session may come back: kept per session, and only the events
//     whose rooms match (away).
//
// Offsets are this store's own: a prefix unique to the namespace adapter
// and a counter. They are only compared with offsets of the same store.
type sessionStore struct {
	prefix    string
	recentFor time.Duration // pingInterval + pingTimeout + margin
	keep      time.Duration // max_disconnection

	mu     sync.Mutex
	seq    uint64
	recent []storedPacket // oldest first
	head   int            // recent[head:] is live
	away   map[socket.PrivateSessionId]*awaySession
	byRoom map[socket.Room]map[*awaySession]struct{} // away sessions by room, for record
	born   map[socket.SocketId]time.Time             // connected sockets' first join
}

// FromSessionStart is the offset of a client that asks for its session
// back before it received any event (socket.io-client then sends no
// offset, and the library would not try): it missed every event meant
// for it since its socket was created. RecoveringParser puts it in.
const FromSessionStart = "-"

// maxRecent and maxAwayPackets bound the store whatever the event rate: a
// client whose events fell off comes back as a new session.
const (
	maxRecent      = 200_000
	maxAwayPackets = 10_000
)

// storedPacket is an event kept for recovery. Its data ([event, ...args,
// offset]) is kept msgpack-encoded: hundreds of thousands of events wait
// here at a few thousand per second, and as decoded values (maps, slices,
// strings) the garbage collector scanned them all at every cycle, about a
// third of a worker's CPU at 5,000 emits/s; encoded, they are bytes it
// does not scan.
type storedPacket struct {
	seq    uint64 // the offset is the store's prefix and seq in base 36
	at     int64  // UnixNano
	enc    []byte // msgpack of the data
	target target
}

type awaySession struct {
	session *socket.SessionToPersist
	born    time.Time // when its socket was created (zero: unknown)
	since   time.Time
	until   time.Time
	packets []storedPacket
}

func newSessionStore(prefix string, recentFor, keep time.Duration) *sessionStore {
	return &sessionStore{prefix: prefix + "-", recentFor: recentFor, keep: keep,
		away: map[socket.PrivateSessionId]*awaySession{}, byRoom: map[socket.Room]map[*awaySession]struct{}{},
		born: map[socket.SocketId]time.Time{}}
}

// bornAt notes when a socket joined its first room: its creation.
func (st *sessionStore) bornAt(id socket.SocketId, at time.Time) {
	st.mu.Lock()
	if _, ok := st.born[id]; !ok {
		st.born[id] = at
	}
	st.mu.Unlock()
}

// forget drops a socket that left every room.
func (st *sessionStore) forget(id socket.SocketId) {
	st.mu.Lock()
	delete(st.born, id)
	st.mu.Unlock()
}

// storable reports whether a packet is kept for recovery: events without
// ack (an ack cannot be restored elsewhere) that are not volatile.
func storable(p *parser.Packet, t target) bool {
	return p.Type == parser.EVENT && p.Id == nil && !t.Flags.Volatile
}

// record gives an event its offset (appended to its data, as Socket.IO
// does) and keeps it.
func (st *sessionStore) record(p *parser.Packet, t target) {
	data, ok := p.Data.([]any)
	if !ok {
		return
	}
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	id := st.prefix + strconv.FormatUint(st.seq, 36)
	data = withOffset(data, id)
	p.Data = data
	enc, err := appendValue(nil, data)
	if err != nil {
		return // not encodable (a value msgpack cannot carry): delivered, not kept
	}
	sp := storedPacket{seq: st.seq, at: now.UnixNano(), enc: enc, target: t}
	st.recent = append(st.recent, sp)
	st.pruneLocked(now)
	if st.seq%4096 == 0 {
		for pid, a := range st.away {
			if now.After(a.until) {
				st.dropLocked(pid)
			}
		}
	}
	if len(st.away) == 0 {
		return
	}
	keep := func(a *awaySession) {
		if len(a.packets) < maxAwayPackets && now.Before(a.until) && targets(a.session.Rooms, t) {
			a.packets = append(a.packets, sp)
		}
	}
	if len(t.Rooms) == 0 { // to everyone: rare
		for _, a := range st.away {
			keep(a)
		}
		return
	}
	seen := map[*awaySession]bool{}
	for _, r := range t.Rooms {
		for a := range st.byRoom[socket.Room(r)] {
			if !seen[a] {
				seen[a] = true
				keep(a)
			}
		}
	}
}

// pruneLocked drops recent events older than the window, and the oldest
// beyond maxRecent.
func (st *sessionStore) pruneLocked(now time.Time) {
	cut := now.Add(-st.recentFor).UnixNano()
	for st.head < len(st.recent) && (st.recent[st.head].at < cut || len(st.recent)-st.head > maxRecent) {
		st.recent[st.head] = storedPacket{}
		st.head++
	}
	if st.head > 1024 && st.head > len(st.recent)/2 { // compact now and then
		n := copy(st.recent, st.recent[st.head:])
		clear(st.recent[n:])
		st.recent = st.recent[:n]
		st.head = 0
	}
}

// persist keeps a disconnected session for max_disconnection.
func (st *sessionStore) persist(s *socket.SessionToPersist) {
	now := time.Now()
	if s.Rooms == nil {
		s.Rooms = types.NewSet[socket.Room]()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.dropLocked(s.Pid)
	a := &awaySession{session: s, born: st.born[s.Sid], since: now, until: now.Add(st.keep)}
	st.away[s.Pid] = a
	for _, r := range s.Rooms.Keys() {
		m := st.byRoom[r]
		if m == nil {
			m = map[*awaySession]struct{}{}
			st.byRoom[r] = m
		}
		m[a] = struct{}{}
	}
}

// dropLocked forgets a session and its index entries.
func (st *sessionStore) dropLocked(pid socket.PrivateSessionId) *awaySession {
	a := st.away[pid]
	if a == nil {
		return nil
	}
	delete(st.away, pid)
	for _, r := range a.session.Rooms.Keys() {
		if m := st.byRoom[r]; m != nil {
			delete(m, a)
			if len(m) == 0 {
				delete(st.byRoom, r)
			}
		}
	}
	return a
}

// restore returns the session of pid with the events it missed after
// offset, and forgets it; nil when it is unknown or expired.
func (st *sessionStore) restore(pid socket.PrivateSessionId, offset string) *socket.Session {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.dropLocked(pid)
	if a == nil {
		return nil
	}
	if now.After(a.until) {
		return nil
	}
	// Events before the disconnect that the client may not have got: the
	// recent ones after its offset (all recent ones for it, when the offset
	// is older than the window: it got none of them; with no offset, all
	// since its socket was created).
	live := st.recent[st.head:]
	from := 0
	if seq, ok := st.seqOf(offset); ok {
		for i := len(live) - 1; i >= 0; i-- {
			if live[i].seq == seq {
				from = i + 1
				break
			}
		}
	}
	var missed []any
	since, born := a.since.UnixNano(), a.born.UnixNano()
	for _, p := range live[from:] {
		if p.at >= since {
			break // from here on, a.packets has them
		}
		if offset == FromSessionStart && !a.born.IsZero() && p.at < born {
			continue // meant for an earlier socket of its rooms
		}
		if targets(a.session.Rooms, p.target) {
			missed = appendDecoded(missed, p.enc)
		}
	}
	for _, p := range a.packets {
		missed = appendDecoded(missed, p.enc)
	}
	return &socket.Session{SessionToPersist: a.session, MissedPackets: missed}
}

// seqOf is the counter of one of this store's offsets.
func (st *sessionStore) seqOf(offset string) (uint64, bool) {
	rest, ok := strings.CutPrefix(offset, st.prefix)
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 36, 64)
	return seq, err == nil
}

// appendDecoded appends a stored event's data, decoded.
func appendDecoded(missed []any, enc []byte) []any {
	v, err := decodeValue(enc)
	if err != nil {
		return missed // cannot happen: the store encoded it
	}
	return append(missed, v)
}

// awayUntil reports whether a disconnected session that may still come
// back was in room, and until when the last of them may.
func (st *sessionStore) awayUntil(room socket.Room, now time.Time) (time.Time, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var until time.Time
	for a := range st.byRoom[room] {
		if now.Before(a.until) && a.until.After(until) {
			until = a.until
		}
	}
	return until, !until.IsZero()
}

// awayCount is the number of sessions that may still come back.
func (st *sessionStore) awayCount() int {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	for pid, a := range st.away {
		if now.After(a.until) {
			st.dropLocked(pid)
		}
	}
	return len(st.away)
}

// keepOnly records events for one restored socket without delivering
// them (see keepForSession): they get offsets of this store.
func (st *sessionStore) keepOnly(sid socket.SocketId, data []any) []any {
	p := &parser.Packet{Type: parser.EVENT, Data: data}
	st.record(p, target{Rooms: []string{string(sid)}})
	d, _ := p.Data.([]any)
	return d
}
