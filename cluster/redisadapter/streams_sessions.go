package redisadapter

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// Sessions in the streams protocol: connection state recovery across
// servers, a crashed one included.
//
// Node's adapter stores a session when its socket disconnects
// (persistSession: SET <prefix><pid> PX maxDisconnectionDuration) and
// restores it with GET+DEL and an XRANGE from the client's offset. A
// server killed with kill -9 stores nothing, so its clients come back as
// new sessions. Here the session of every connected socket is in Redis
// while it is connected, too (a lease):
//
//   - written when the socket connects (its CONNECT packet goes out: the
//     pid is known then, see Parser) and again when its rooms change;
//   - written again every SessionRefresh (a key Redis lost comes back), with
//     a TTL of maxDisconnectionDuration + 2·SessionRefresh: after a crash,
//     the session stays restorable for at least maxDisconnectionDuration;
//   - on a recoverable disconnect, written once more with Node's TTL
//     (maxDisconnectionDuration) and no longer renewed; on any other end
//     (the client left), deleted.
//
// The value is Node's (base64 of msgpack {sid, pid, rooms, data}) plus
// fields Node ignores: "frutosFrom", the stream position when the socket
// connected (a client that had received no event sends no offset, as
// socket.io-client does, and is restored from there; Node does not try);
// "frutosSeen", the position when the value was written, and "frutosLast",
// the last entry sent to the socket by then. A client idle for longer than
// the stream holds (MAXLEN entries) has an offset Redis trimmed away: Node
// gives it a new session. Here, if its offset is frutosLast, it got every
// entry meant for it up to frutosSeen, so it is restored from there, as
// long as the stream still holds what came after.
//
// A restore reads the session with GET and PEXPIRE (not DEL: should this
// server die before the client is back on its feet, the next one finds
// the session still), then takes the events the client missed from the
// stream entries this server keeps (streams.go), under the lock of the
// delivery. From that moment until the restored socket is connected, the
// entries for it are kept aside (restoringSession) and it is excluded
// from live delivery; once connected, it gets them right after its
// missed events, then the live ones: every event once, in stream order.

// restoreWait bounds how long a restored session waits for its socket to
// connect before what was kept for it is dropped.
const restoreWait = 30 * time.Second

// storedSession is a session as Redis holds it.
type storedSession struct {
	sid, pid string
	rooms    []string
	data     any
	from     streamID // frutosFrom: the stream position when it connected
	hasFrom  bool
	// frutosSeen: the stream position when the value was written (every
	// entry up to it meant for the socket had been sent to it), and
	// frutosLast: the last of those (none yet: hasLast false).
	seen, last       streamID
	hasSeen, hasLast bool
}

func encodeSession(s storedSession) (string, error) {
	v := map[string]any{"sid": s.sid, "pid": s.pid, "rooms": nonNil(s.rooms), "data": s.data}
	if s.hasFrom {
		v["frutosFrom"] = s.from.String()
	}
	if s.hasSeen {
		v["frutosSeen"] = s.seen.String()
		if s.hasLast {
			v["frutosLast"] = s.last.String()
		}
	}
	b, err := appendValue(nil, v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

func decodeSession(raw string) (storedSession, error) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return storedSession{}, errors.New("session: not base64")
	}
	v, err := decodeValue(b)
	if err != nil {
		return storedSession{}, fmt.Errorf("session: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return storedSession{}, errors.New("session: not a map")
	}
	s := storedSession{rooms: stringList(m["rooms"]), data: m["data"]}
	s.sid, _ = m["sid"].(string)
	s.pid, _ = m["pid"].(string)
	if s.sid == "" || s.pid == "" {
		return storedSession{}, errors.New("session: without ids")
	}
	if f, ok := m["frutosFrom"].(string); ok {
		s.from, s.hasFrom = parseStreamID(f)
	}
	if f, ok := m["frutosSeen"].(string); ok {
		s.seen, s.hasSeen = parseStreamID(f)
		if f, ok := m["frutosLast"].(string); ok && s.hasSeen {
			s.last, s.hasLast = parseStreamID(f)
		}
	}
	return s, nil
}

// restoringSession is a session handed to the library, whose socket is
// not connected yet.
type restoringSession struct {
	sid    socket.SocketId
	rooms  *types.Set[socket.Room]
	after  streamID // the client has every entry up to here
	buffer [][]any  // entries for it that arrived meanwhile
	timer  *time.Timer
}

// restoringFor lists the sessions being restored that a broadcast to t
// reaches (the stream's lock is held).
func (n *nspAdapter) restoringFor(t target) []*restoringSession {
	if n.restoringN.Load() == 0 {
		return nil
	}
	var out []*restoringSession
	for _, r := range n.restoring {
		if targets(r.rooms, t) {
			out = append(out, r)
		}
	}
	return out
}

// restoreFromRedis is RestoreSession in the streams protocol.
func (n *nspAdapter) restoreFromRedis(pid socket.PrivateSessionId, offset string) (*socket.Session, error) {
	ctx, cancel := context.WithTimeout(n.bus.ctx, n.bus.opts.RequestTimeout)
	defer cancel()
	miss := func(why string, err error) (*socket.Session, error) {
		n.bus.restoreMisses.Add(1)
		if c, ok := n.bus.missLog.allow(); ok {
			// never the pid: it is the key to the session
			n.bus.log.Info("a client's session was not restored; it starts a new one", "why", why, "err", err, "suppressed", c)
		}
		return nil, err
	}
	s, err := n.bus.leases.load(ctx, n, string(pid))
	switch {
	case err != nil:
		return miss("reading it failed", err)
	case s == nil:
		return miss("no such session in Redis (expired, or never stored)", nil)
	}
	after, exact := streamID{}, true
	if offset == FromSessionStart {
		if !s.hasFrom {
			return miss("no offset, and the session was stored by Node (no frutosFrom)", nil)
		}
		after, exact = s.from, false
	} else if after, exact = parseStreamID(offset); !exact {
		return miss("invalid offset", fmt.Errorf("offset %q is not a stream id", offset))
	}
	rooms := types.NewSet(roomsOf(s.rooms)...)
	rooms.Add(socket.Room(s.sid)) // so that excluding it from live delivery works from its first join

	l := n.stream
	for attempt := 0; ; attempt++ {
		l.mu.Lock()
		if !l.coversLocked(after) {
			// Older than what this server read: one read of the stream,
			// shared by the restores that need it; the cache keeps its
			// oldest entries until this one has read them (pins).
			l.pins++
			l.mu.Unlock()
			err := l.backfill(ctx, after)
			l.mu.Lock()
			l.pins--
			if err != nil {
				l.mu.Unlock()
				return miss("reading the stream failed", err)
			}
		}
		if l.coversLocked(after) && (!exact || l.knowsLocked(after)) {
			break // l.mu held
		}
		l.mu.Unlock()
		switch {
		case attempt < 1 && s.hasSeen && s.seen != after && (exact && s.hasLast && s.last == after || !exact && !s.hasLast):
			// Trimmed, but the client has the last entry it was sent by
			// frutosSeen: it missed what came after.
			after, exact = s.seen, false
		case attempt < 2 && exact && l.newer(ctx, after):
			// The stream was created after this offset (Redis restarted
			// without its data; the session was written again since):
			// the client got nothing from it, so what it holds for the
			// client's rooms is what the client missed.
			after, exact = streamID{}, false
		default:
			// trimmed away (MAXLEN): a new session, as in Node
			return miss("its offset is no longer in the stream (raise redis.streams.max_len)", nil)
		}
	}
	defer l.mu.Unlock()
	var missed []any
	for _, e := range l.cache[l.after(after):] {
		t := e.m.Target
		if e.m.Nsp != n.name || e.m.Kind != kindBroadcast || e.m.RequestID != "" || t.Flags.Volatile || !targets(rooms, t) {
			continue
		}
		data, err := e.args()
		if err != nil {
			continue
		}
		missed = append(missed, withOffset(data, e.idStr))
	}
	last, hasLast := s.last, s.hasLast
	if exact && (!hasLast || last.less(after)) {
		last, hasLast = after, true // the client's offset: it was sent that
	}
	if k := len(missed); k > 0 {
		d := missed[k-1].([]any)
		last, hasLast = mustStreamID(d[len(d)-1].(string)), true
	}
	if hasLast {
		n.lastMu.Lock()
		n.lastBySid[socket.SocketId(s.sid)] = last
		n.lastMu.Unlock()
	}
	r := &restoringSession{sid: socket.SocketId(s.sid), rooms: rooms, after: after}
	if r.after.less(l.pos) {
		r.after = l.pos
	}
	if old := n.restoring[r.sid]; old != nil {
		old.timer.Stop()
	} else {
		n.restoringN.Add(1)
	}
	n.restoring[r.sid] = r
	r.timer = time.AfterFunc(restoreWait, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if n.restoring[r.sid] == r {
			delete(n.restoring, r.sid)
			n.restoringN.Add(-1)
		}
	})
	n.bus.restored.Add(1)
	return &socket.Session{
		SessionToPersist: &socket.SessionToPersist{Sid: r.sid, Pid: socket.PrivateSessionId(s.pid), Rooms: rooms, Data: s.data},
		MissedPackets:    missed,
	}, nil
}

// finishRestore hands a restored socket, now connected, what arrived for
// it since its session was read; from here on it gets the live entries.
func (n *nspAdapter) finishRestore(id socket.SocketId) {
	s, ok := n.nsp.Sockets().Load(id)
	if !ok || !s.Connected() {
		return // joining its rooms, not connected yet
	}
	l := n.stream
	l.mu.Lock()
	defer l.mu.Unlock()
	r := n.restoring[id]
	if r == nil {
		return
	}
	delete(n.restoring, id)
	n.restoringN.Add(-1)
	r.timer.Stop()
	for _, data := range r.buffer {
		n.Adapter.Broadcast(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: data},
			&socket.BroadcastOptions{Rooms: types.NewSet(socket.Room(id)), Except: types.NewSet[socket.Room](), Flags: &socket.BroadcastFlags{}})
	}
}

// sockRef names a socket of a namespace.
type sockRef struct {
	n   *nspAdapter
	sid socket.SocketId
}

// lease is the session of a connected socket, kept in Redis.
type lease struct {
	ref  sockRef
	key  string
	pid  string
	from streamID
}

// sessionWrite is a session to store once (its socket disconnected).
type sessionWrite struct {
	session storedSession
	ttl     time.Duration
}

// leases keeps the sessions of connected sockets in Redis, and writes
// those of disconnected ones: one goroutine, pipelined writes.
type leases struct {
	a      *Adapter
	prefix string

	mu     sync.Mutex
	bySock map[sockRef]*lease
	dirty  map[*lease]struct{}
	writes map[string]sessionWrite
	dels   map[string]struct{}
	kick   chan struct{}
	errLog throttle
}

func newLeases(a *Adapter) *leases {
	return &leases{a: a, prefix: a.opts.Stream.SessionPrefix, bySock: map[sockRef]*lease{},
		dirty: map[*lease]struct{}{}, writes: map[string]sessionWrite{}, dels: map[string]struct{}{},
		kick: make(chan struct{}, 1), errLog: throttle{every: 10 * time.Second}}
}

// ttl is how long a connected socket's session lives without renewal.
func leaseTTL(n *nspAdapter) time.Duration { return n.keep + 2*n.bus.opts.Stream.SessionRefresh }

func (ls *leases) wake() {
	select {
	case ls.kick <- struct{}{}:
	default:
	}
}

func (ls *leases) count() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.bySock)
}

// connected starts the lease of a socket that just connected.
func (ls *leases) connected(n *nspAdapter, sid socket.SocketId, pid string, from streamID) {
	ref := sockRef{n, sid}
	ls.mu.Lock()
	if old := ls.bySock[ref]; old != nil {
		delete(ls.dirty, old)
	}
	l := &lease{ref: ref, key: ls.prefix + pid, pid: pid, from: from}
	ls.bySock[ref] = l
	ls.dirty[l] = struct{}{}
	delete(ls.dels, l.key)
	delete(ls.writes, l.key)
	ls.mu.Unlock()
	ls.wake()
}

// changed notes that a connected socket's rooms changed.
func (ls *leases) changed(n *nspAdapter, sid socket.SocketId) {
	ls.mu.Lock()
	l := ls.bySock[sockRef{n, sid}]
	if l != nil {
		ls.dirty[l] = struct{}{}
	}
	ls.mu.Unlock()
	if l != nil {
		ls.wake()
	}
}

// persist stores the session of a socket that disconnected and may come
// back, for maxDisconnectionDuration (Node's persistSession).
func (ls *leases) persist(n *nspAdapter, s *socket.SessionToPersist) {
	ref := sockRef{n, s.Sid}
	st := storedSession{sid: string(s.Sid), pid: string(s.Pid), data: s.Data}
	if s.Rooms != nil {
		st.rooms = roomStrings(s.Rooms.Keys())
	}
	key := ls.prefix + st.pid
	st.seen, st.hasSeen = n.stream.appliedPos(), true // first: see lastSentTo
	st.last, st.hasLast = n.lastSentTo(s.Sid, roomsOf(st.rooms))
	ls.mu.Lock()
	if l := ls.bySock[ref]; l != nil {
		st.from, st.hasFrom = l.from, true
		delete(ls.bySock, ref)
		delete(ls.dirty, l)
	} else if w, ok := ls.writes[key]; ok && w.session.hasFrom {
		// a second call for the same socket (the library may close it
		// twice at once: its transport and its namespace)
		st.from, st.hasFrom = w.session.from, true
	}
	ls.writes[key] = sessionWrite{session: st, ttl: n.keep}
	delete(ls.dels, key)
	ls.mu.Unlock()
	ls.wake()
}

// ended forgets the session of a socket that left for good (its lease is
// still there: PersistSession was not called).
func (ls *leases) ended(n *nspAdapter, sid socket.SocketId) {
	ref := sockRef{n, sid}
	ls.mu.Lock()
	l := ls.bySock[ref]
	if l != nil {
		delete(ls.bySock, ref)
		delete(ls.dirty, l)
		ls.dels[l.key] = struct{}{}
	}
	ls.mu.Unlock()
	if l != nil {
		ls.wake()
	}
}

// rewriteAll writes every lease again (Redis may have lost them).
func (ls *leases) rewriteAll() {
	ls.mu.Lock()
	for _, l := range ls.bySock {
		ls.dirty[l] = struct{}{}
	}
	ls.mu.Unlock()
	ls.wake()
}

// load reads a stored session and extends it while it is restored.
func (ls *leases) load(ctx context.Context, n *nspAdapter, pid string) (*storedSession, error) {
	if pid == "" {
		return nil, nil
	}
	key := ls.prefix + pid
	pipe := ls.a.client.TxPipeline()
	get := pipe.Get(ctx, key)
	pipe.PExpire(ctx, key, leaseTTL(n))
	_, err := pipe.Exec(ctx)
	raw, gerr := get.Result()
	switch {
	case errors.Is(gerr, redis.Nil):
		return nil, nil
	case gerr != nil:
		return nil, fmt.Errorf("read session: %w", gerr)
	case err != nil:
		return nil, fmt.Errorf("read session: %w", err)
	}
	s, err := decodeSession(raw)
	if err != nil || s.pid != pid {
		return nil, fmt.Errorf("stored session %s: %v", pid, err)
	}
	return &s, nil
}

// run writes what changed as it changes, and renews the leases.
func (ls *leases) run(ctx context.Context) {
	defer ls.a.wg.Done()
	tick := time.NewTicker(ls.a.opts.Stream.SessionRefresh)
	defer tick.Stop()
	backoff := ls.a.opts.BackoffMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-ls.kick:
		case <-tick.C:
			// written again, not only extended: frutosSeen moves on, and
			// a key Redis lost comes back
			ls.rewriteAll()
		}
		if err := ls.flush(ctx); err != nil && ctx.Err() == nil {
			if n, ok := ls.errLog.allow(); ok {
				ls.a.log.Warn("cannot store sessions in redis; retrying", "err", err, "suppressed", n)
			}
			if !sleepCtx(ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, ls.a.backoffMax())
			ls.wake()
			continue
		}
		backoff = ls.a.opts.BackoffMin
	}
}

// flushFinal writes what is pending before the adapter closes.
func (ls *leases) flushFinal(ctx context.Context) error {
	if err := ls.flush(ctx); err != nil {
		return fmt.Errorf("redis adapter: sessions not stored: %w", err)
	}
	return nil
}

// flush writes the pending sessions and deletions in one pipeline; what
// fails is kept for the next try.
func (ls *leases) flush(ctx context.Context) error {
	ls.mu.Lock()
	dirty, writes, dels := ls.dirty, ls.writes, ls.dels
	ls.dirty, ls.writes, ls.dels = map[*lease]struct{}{}, map[string]sessionWrite{}, map[string]struct{}{}
	ls.mu.Unlock()
	if len(dirty)+len(writes)+len(dels) == 0 {
		return nil
	}
	pipe := ls.a.client.Pipeline()
	for l := range dirty {
		value, ok := ls.value(l)
		if ok {
			pipe.Set(ctx, l.key, value, leaseTTL(l.ref.n))
		}
	}
	for key, w := range writes {
		value, err := encodeSession(w.session)
		if err != nil {
			if n, ok := ls.errLog.allow(); ok {
				ls.a.log.Warn("cannot store a session (its data does not encode); it will not be recovered", "err", err, "suppressed", n)
			}
			continue
		}
		pipe.Set(ctx, key, value, w.ttl)
	}
	for key := range dels {
		pipe.Del(ctx, key)
	}
	if pipe.Len() == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := pipe.Exec(wctx); err != nil {
		ls.mu.Lock()
		for l := range dirty {
			if ls.bySock[l.ref] == l {
				ls.dirty[l] = struct{}{}
			}
		}
		for key, w := range writes {
			if _, newer := ls.writes[key]; !newer {
				ls.writes[key] = w
			}
		}
		for key := range dels {
			ls.dels[key] = struct{}{}
		}
		ls.mu.Unlock()
		return err
	}
	return nil
}

// value is a connected socket's session as it stands.
func (ls *leases) value(l *lease) (string, bool) {
	s, ok := l.ref.n.nsp.Sockets().Load(l.ref.sid)
	if !ok {
		return "", false
	}
	st := storedSession{sid: string(l.ref.sid), pid: l.pid, data: s.Data(), from: l.from, hasFrom: true}
	// The position first, then what was sent: an entry applied in between
	// makes frutosLast newer than frutosSeen, which a restore does not use.
	st.seen, st.hasSeen = l.ref.n.stream.appliedPos(), true
	rooms := s.Rooms().Keys()
	st.rooms = roomStrings(rooms)
	st.last, st.hasLast = l.ref.n.lastSentTo(l.ref.sid, rooms)
	v, err := encodeSession(st)
	if err != nil {
		if n, ok := ls.errLog.allow(); ok {
			ls.a.log.Warn("cannot store a session (its data does not encode); it will not be recovered", "err", err, "suppressed", n)
		}
		return "", false
	}
	return v, true
}

// Parser wraps the server's Socket.IO parser (nil: the library's): the
// decoder asks for recovery from the session's start when a client sends
// its pid without an offset (RecoveringParser), and, in the streams
// protocol, the encoder tells the adapter when a socket connects, with its
// pid (the CONNECT packet carries it), so that its session is kept in
// Redis from then on. Set it with ServerOptions.SetParser.
func (a *Adapter) Parser(p parser.Parser) parser.Parser {
	rp := RecoveringParser(p).(recoveringParser)
	if !a.opts.Streams {
		return rp
	}
	return streamsParser{recoveringParser: rp, a: a}
}

type streamsParser struct {
	recoveringParser
	a *Adapter
}

func (p streamsParser) NewEncoder() parser.Encoder {
	return connectWatcher{Encoder: p.recoveringParser.NewEncoder(), a: p.a}
}

type connectWatcher struct {
	parser.Encoder
	a *Adapter
}

func (w connectWatcher) Encode(p *parser.Packet) []types.BufferInterface {
	if p != nil && p.Type == parser.CONNECT {
		if sid, pid := connectIDs(p.Data); sid != "" && pid != "" {
			w.a.socketConnected(p.Nsp, socket.SocketId(sid), pid)
		}
	}
	return w.Encoder.Encode(p)
}

// connectIDs reads {sid, pid} from a CONNECT packet's data: a map, or the
// library's struct with Sid and Pid fields.
func connectIDs(data any) (sid, pid string) {
	if m, ok := data.(map[string]any); ok {
		sid, _ = m["sid"].(string)
		pid, _ = m["pid"].(string)
		return sid, pid
	}
	v := reflect.ValueOf(data)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return "", ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return "", ""
	}
	str := func(name string) string {
		f := v.FieldByName(name)
		if f.IsValid() && f.Kind() == reflect.String {
			return f.String()
		}
		return ""
	}
	return str("Sid"), str("Pid")
}

// socketConnected starts the lease of a socket whose CONNECT goes out.
func (a *Adapter) socketConnected(nsp string, sid socket.SocketId, pid string) {
	if nsp == "" {
		nsp = "/"
	}
	a.mu.Lock()
	n := a.namespaces[nsp]
	a.mu.Unlock()
	if n == nil || n.stream == nil || !n.csr {
		return
	}
	l := n.stream
	l.mu.Lock()
	from := l.pos
	l.mu.Unlock()
	a.leases.connected(n, sid, pid, from)
}

// mustStreamID parses an id this package produced.
func mustStreamID(s string) streamID {
	id, _ := parseStreamID(s)
	return id
}
