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
//     dead: at most pingInterval + pingTimeout before the server noticed
//     (recentFor, with a margin), so a window of recent events, for
//     everyone (recent), held back while a session that may need its
//     window is away;
//   - those emitted after the server noticed (PersistSession), for as long
//     as the session may come back: only the events whose rooms match,
//     once each (kept), the session holding their seqs.
//
// Offsets are this store's own: a prefix unique to the namespace adapter
// and a counter. They are only compared with offsets of the same store.
// Every event gets the next seq under mu, so seqs order events; times are
// monotonic (since start), so a change of the wall clock moves nothing.
type sessionStore struct {
	prefix    string
	recentFor time.Duration // pingInterval + pingTimeout + margin
	keep      time.Duration // max_disconnection
	maxRecent int           // maxRecent; tests lower them
	maxAway   int           // maxAwayPackets
	start     time.Time
	now       func() time.Time // time.Now; tests move a clock of their own

	mu      sync.Mutex
	seq     uint64
	scratch []byte   // record's encoding buffer
	recent  eventLog // every event of the window (at most maxRecent)
	// dropped is the newest event dropped from recent: a restore that
	// needs one at least as new cannot be given every event it missed.
	dropped logEntry
	kept    eventLog // the events some away session waits for, until keep
	// unread decodes a message kept by keepUnread into the event it
	// carries, if it is one a socket in rooms missed.
	unread func(payload []byte, rooms *types.Set[socket.Room]) ([]any, bool)
	away   map[socket.PrivateSessionId]*awaySession
	byRoom map[socket.Room]map[*awaySession]struct{} // away sessions by room, for record
	byAge  []*awaySession                            // away sessions as persisted, oldest first (some gone)
	born   map[socket.SocketId]uint64                // connected sockets: the seq when each joined its first room
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

// maxScratch: record's encoding buffer is not kept past this size.
const maxScratch = 64 << 10

type awaySession struct {
	session  *socket.SessionToPersist
	born     uint64 // seq when its socket was created
	hasBorn  bool
	sinceSeq uint64 // the last seq before the server noticed it gone
	since    time.Time
	until    time.Time
	seqs     []uint64 // its events in kept, in order
	// overflow: more than maxAwayPackets events were meant for it; it
	// cannot be restored whole, so it is not restored.
	overflow bool
}

func newSessionStore(prefix string, recentFor, keep time.Duration) *sessionStore {
	return &sessionStore{prefix: prefix + "-", recentFor: recentFor, keep: keep, maxRecent: maxRecent, maxAway: maxAwayPackets,
		start: time.Now(), now: time.Now,
		away: map[socket.PrivateSessionId]*awaySession{}, byRoom: map[socket.Room]map[*awaySession]struct{}{},
		born: map[socket.SocketId]uint64{}}
}

// clock is t in the store's monotonic nanoseconds.
func (st *sessionStore) clock(t time.Time) int64 { return int64(t.Sub(st.start)) }

// joined notes a socket's first join: its creation, for a restore without
// offset (the events after it are the ones it may have missed).
func (st *sessionStore) joined(id socket.SocketId) {
	st.mu.Lock()
	if _, ok := st.born[id]; !ok {
		st.born[id] = st.seq
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
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	st.seq++
	data = withOffset(data, st.offset(st.seq))
	p.Data = data
	e := logEntry{seq: st.seq, at: st.clock(now), unread: raw != nil}
	enc := raw
	if raw == nil {
		var err error
		if enc, err = appendValue(st.scratch[:0], data); err != nil {
			return // not encodable (a value msgpack cannot carry): delivered, not kept
		}
		if cap(enc) <= maxScratch {
			st.scratch = enc
		}
	}
	st.recent.addEntry(e, enc, &t)
	st.pruneLocked(now)
	if len(st.away) == 0 {
		return
	}
	wanted := false
	keep := func(a *awaySession) {
		if st.keepFor(a, now, t) {
			a.seqs = append(a.seqs, e.seq)
			wanted = true
		}
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

// keepFor reports whether an event to t is one more for the away session
// a; past maxAway of them, a overflows and takes no more.
func (st *sessionStore) keepFor(a *awaySession, now time.Time, t target) bool {
	if a.overflow || !now.Before(a.until) || !targets(a.session.Rooms, t) {
		return false
	}
	if len(a.seqs) == st.maxAway {
		a.overflow, a.seqs = true, nil
		return false
	}
	return true
}

// keepUnread keeps a broadcast that came from Redis for room, where no
// local socket is, for the away sessions of room, without decoding it:
// decoding costs a worker more than the rest of an event's path, and most
// of these events are never asked for. Only its selector is read (a
// volatile event, or one that excludes a session, is not kept for it).
// The message gets its seq now, in arrival order like every other event,
// and is decoded if a session comes back (by unread, which also checks
// its namespace).
func (st *sessionStore) keepUnread(room socket.Room, payload []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.byRoom[room]) == 0 {
		return
	}
	t, err := classicTarget(payload)
	if err != nil || t.Flags.Volatile {
		return
	}
	now := st.now()
	var seq uint64
	for a := range st.byRoom[room] {
		if !st.keepFor(a, now, t) {
			continue
		}
		if seq == 0 {
			st.seq++
			seq = st.seq
		}
		a.seqs = append(a.seqs, seq)
	}
	if seq != 0 {
		st.kept.addEntry(logEntry{seq: seq, at: st.clock(now), unread: true}, payload, nil)
		st.pruneLocked(now)
	}
}

// offset is the offset of the event seq, as its data carries it.
func (st *sessionStore) offset(seq uint64) string {
	return st.prefix + strconv.FormatUint(seq, 36)
}

// pruneLocked drops recent events older than the window, unless an away
// session may still need them (the window before it left), and the
// oldest beyond maxRecent; kept events older than keep (every session
// that waited for them has expired); now and then, expired sessions.
// Called once per seq.
func (st *sessionStore) pruneLocked(now time.Time) {
	cut := st.clock(now) - int64(st.recentFor)
	if a := st.oldestAwayLocked(now); a != nil {
		cut = min(cut, st.clock(a.since)-int64(st.recentFor))
	}
	if e, ok := st.recent.dropWhile(func(e logEntry) bool {
		return e.at < cut || st.recent.n > st.maxRecent
	}); ok {
		st.dropped = e
	}
	keptCut := st.clock(now) - int64(st.keep)
	st.kept.dropWhile(func(e logEntry) bool { return e.at < keptCut })
	if st.seq%4096 == 0 {
		for pid, a := range st.away {
			if now.After(a.until) {
				st.dropLocked(pid)
			}
		}
	}
}

// oldestAwayLocked is the away session persisted first that may still
// come back.
func (st *sessionStore) oldestAwayLocked(now time.Time) *awaySession {
	for len(st.byAge) > 0 {
		a := st.byAge[0]
		if st.away[a.session.Pid] == a && now.Before(a.until) {
			return a
		}
		st.byAge[0] = nil
		st.byAge = st.byAge[1:]
	}
	return nil
}

// persist keeps a disconnected session for max_disconnection.
func (st *sessionStore) persist(s *socket.SessionToPersist) {
	if s.Rooms == nil {
		s.Rooms = types.NewSet[socket.Room]()
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	st.dropLocked(s.Pid)
	born, hasBorn := st.born[s.Sid]
	a := &awaySession{session: s, born: born, hasBorn: hasBorn, sinceSeq: st.seq, since: now, until: now.Add(st.keep)}
	st.away[s.Pid] = a
	st.byAge = append(st.byAge, a)
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
// offset, and forgets it; nil when it is unknown or expired, or when the
// store cannot give it every event it missed.
func (st *sessionStore) restore(pid socket.PrivateSessionId, offset string) *socket.Session {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.dropLocked(pid)
	if a == nil || !st.now().Before(a.until) || a.overflow {
		return nil
	}
	// Recent events up to its departure that it may not have got: after
	// its offset (any of this store's offsets is a bound, wherever the
	// event is kept) and after its socket was created. Without an offset
	// of ours, only the window before it left: an older event for it
	// would have reached it while its transport was alive.
	from, own := st.seqOf(offset)
	if own && from > st.seq {
		from, own = 0, false // not one this store gave
	}
	if a.hasBorn {
		from = max(from, a.born)
	}
	window := st.clock(a.since) - int64(st.recentFor)
	if st.dropped.seq > from && st.dropped.at >= window {
		return nil // recent lost one it may need (to maxRecent)
	}
	var missed []any
	st.recent.after(from, func(e logEntry, c *logChunk) bool {
		if e.seq > a.sinceSeq {
			return false // from here on, kept has them
		}
		if (own || offset == FromSessionStart) || e.at >= window {
			missed = st.appendMissed(missed, e, c, a.session.Rooms, true)
		}
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
// (recent's); an unread one is checked again when decoded.
func (st *sessionStore) appendMissed(missed []any, e logEntry, c *logChunk, rooms *types.Set[socket.Room], match bool) []any {
	if match && !c.targets(e, rooms) {
		return missed
	}
	if e.unread {
		if data, ok := st.unread(c.encoded(e), rooms); ok {
			missed = append(missed, withOffset(data, st.offset(e.seq)))
		}
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
	now := st.now()
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
