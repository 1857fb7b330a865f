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
	maxRecent int           // maxRecent; tests lower them
	maxAway   int           // maxAwayPackets

	mu      sync.Mutex
	seq     uint64
	scratch []byte   // record's encoding buffer
	recent  eventLog // every event of the last recentFor (at most maxRecent)
	// countCut is when the newest event dropped from recent for its count,
	// not its age, was recorded: a restore that would need recent events
	// from before it cannot prove it has them all.
	countCut int64
	kept     eventLog // the events some away session waits for, until keep
	// unread decodes a message kept by keepUnread into the event it
	// carries, if it is one a socket in rooms missed.
	unread func(payload []byte, rooms *types.Set[socket.Room]) ([]any, bool)
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
// client whose events fell off comes back as a new session (its restore
// is refused rather than given a gap).
const (
	maxRecent      = 200_000
	maxAwayPackets = 10_000
)

type awaySession struct {
	session *socket.SessionToPersist
	born    time.Time // when its socket was created (zero: unknown)
	since   time.Time
	until   time.Time
	seqs    []uint64 // its events in kept, in order
	// overflow: more than maxAwayPackets events were meant for it; it
	// cannot be restored whole, so it is not restored.
	overflow bool
}

func newSessionStore(prefix string, recentFor, keep time.Duration) *sessionStore {
	return &sessionStore{prefix: prefix + "-", recentFor: recentFor, keep: keep, maxRecent: maxRecent, maxAway: maxAwayPackets,
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
// does) and keeps it: in recent, and once more in kept when an away
// session's rooms match it, that session noting its seq. Events are
// stored encoded (msgpack), in eventLogs: hundreds of thousands wait here
// at a few thousand per second, and as decoded values the garbage
// collector scanned them all at every cycle.
//
// raw, when not nil, is the event's broadcast as it came from Redis: kept
// as it is (unread, see keepUnread), it costs no encoding.
func (st *sessionStore) record(p *parser.Packet, t target, raw []byte) {
	data, ok := p.Data.([]any)
	if !ok {
		return
	}
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.seq++
	data = withOffset(data, st.offset(st.seq))
	p.Data = data
	e := logEntry{seq: st.seq, at: now.UnixNano(), unread: raw != nil}
	enc := raw
	if raw == nil {
		var err error
		if enc, err = appendValue(st.scratch[:0], data); err != nil {
			return // not encodable (a value msgpack cannot carry): delivered, not kept
		}
		st.scratch = enc
		st.recent.addEntry(e, enc, &t)
	} else {
		st.recent.addEntry(e, enc, nil) // its target is in it
	}
	st.pruneLocked(now)
	if len(st.away) == 0 {
		return
	}
	wanted := false
	keep := func(a *awaySession) {
		if a.overflow || !now.Before(a.until) || !targets(a.session.Rooms, t) {
			return
		}
		if len(a.seqs) == st.maxAway {
			a.overflow, a.seqs = true, nil
			return
		}
		a.seqs = append(a.seqs, st.seq)
		wanted = true
	}
	switch {
	case len(t.Rooms) == 0: // to everyone: rare
		for _, a := range st.away {
			keep(a)
		}
	case len(t.Rooms) == 1: // the common case: no session seen twice
		for a := range st.byRoom[socket.Room(t.Rooms[0])] {
			keep(a)
		}
	default:
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
	if wanted {
		st.kept.addEntry(e, enc, nil)
	}
}

// keepUnread keeps a broadcast that came from Redis for room, where no
// local socket is, for the away sessions of room, without decoding it:
// decoding costs a worker more than the rest of an event's path, and most
// of these events are never asked for. The message gets its seq now, in
// arrival order like every other event, and is decoded if a session comes
// back (by unread, which also checks what only the message says: its
// exceptions, flags and namespace).
func (st *sessionStore) keepUnread(room socket.Room, payload []byte) {
	now := time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	var seq uint64
	for a := range st.byRoom[room] {
		if a.overflow || !now.Before(a.until) {
			continue
		}
		if len(a.seqs) == st.maxAway {
			a.overflow, a.seqs = true, nil
			continue
		}
		if seq == 0 {
			st.seq++
			seq = st.seq
		}
		a.seqs = append(a.seqs, seq)
	}
	if seq != 0 {
		st.kept.addEntry(logEntry{seq: seq, at: now.UnixNano(), unread: true}, payload, nil)
		st.pruneLocked(now)
	}
}

// offset is the offset of the event seq, as its data carries it.
func (st *sessionStore) offset(seq uint64) string {
	return st.prefix + strconv.FormatUint(seq, 36)
}

// pruneLocked drops recent events older than the window, and the oldest
// beyond maxRecent; kept events older than keep (every session that
// waited for them has expired); now and then, expired sessions. Called
// once per seq.
func (st *sessionStore) pruneLocked(now time.Time) {
	cut := now.Add(-st.recentFor).UnixNano()
	if at := st.recent.dropWhile(func(e logEntry) bool {
		return e.at < cut || st.recent.n > st.maxRecent
	}); at >= cut {
		st.countCut = at
	}
	keptCut := now.Add(-st.keep).UnixNano()
	st.kept.dropWhile(func(e logEntry) bool { return e.at < keptCut })
	if st.seq%4096 == 0 {
		for pid, a := range st.away {
			if now.After(a.until) {
				st.dropLocked(pid)
			}
		}
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
	if a.overflow {
		return nil
	}
	// Events before the disconnect that the client may not have got: the
	// recent ones after its offset (all recent ones for it, when the offset
	// is older than the window: it got none of them; with no offset, all
	// since its socket was created).
	var missed []any
	from, ok := st.seqOf(offset)
	if ok {
		if _, _, found := st.recent.find(from); !found {
			from, ok = 0, false
		}
	}
	since, born := a.since.UnixNano(), a.born.UnixNano()
	if !ok {
		// The client's last event is older than recent: recent must still
		// reach back a whole window before the disconnect was noticed (or
		// to the socket's creation), or events it missed fell off.
		need := since - int64(st.recentFor)
		if offset == FromSessionStart && !a.born.IsZero() {
			need = max(need, born)
		}
		if st.countCut >= need {
			return nil
		}
	}
	st.recent.after(from, func(e logEntry, c *logChunk) bool {
		if e.at >= since {
			return false // from here on, kept has them
		}
		if offset == FromSessionStart && !a.born.IsZero() && e.at < born {
			return true // meant for an earlier socket of its rooms
		}
		missed = st.appendMissed(missed, e, c, a.session.Rooms, true)
		return true
	})
	for _, seq := range a.seqs {
		e, c, ok := st.kept.find(seq)
		if !ok {
			return nil // cannot happen: kept holds events until every session waiting for them expired
		}
		missed = st.appendMissed(missed, e, c, a.session.Rooms, false)
	}
	return &socket.Session{SessionToPersist: a.session, MissedPackets: missed}
}

// appendMissed appends a stored event's data if it is for a socket in
// rooms. match: the event was not matched against rooms when it was kept
// (recent's are not; kept's unread ones were only by their channel).
func (st *sessionStore) appendMissed(missed []any, e logEntry, c *logChunk, rooms *types.Set[socket.Room], match bool) []any {
	if e.unread {
		if data, ok := st.unread(c.encoded(e), rooms); ok {
			missed = append(missed, withOffset(data, st.offset(e.seq)))
		}
		return missed
	}
	if match && !c.targets(e, rooms) {
		return missed
	}
	return appendDecoded(missed, c.encoded(e))
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
	st.record(p, target{Rooms: []string{string(sid)}}, nil)
	d, _ := p.Data.([]any)
	return d
}
