package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// The stream side of the streams protocol: each stream is read by one
// goroutine (XREAD BLOCK from the last id read) and every entry is applied
// in stream order, this server's own broadcasts included. So a client
// gets its events in stream order, each with its entry id as offset, and
// the offset it holds splits exactly what it got from what it missed,
// whichever server it had them from (RECOVERY.md, point 3). Node's adapter
// delivers its own broadcasts when XADD answers instead; both are correct
// for their own clients.
//
// The entries read are kept (the last MaxLen or so, see cacheCap): a
// restore reads what its client missed from there, under the same lock as
// the delivery, instead of asking Redis again. Node's adapter issues an
// XRANGE per restored session (socketio/socket.io discussion 5423); here
// 3,000 clients of a dead worker reconnecting at once cost no read at all
// when their offsets are in the cache, and one shared XRANGE when they are
// older than what this server has read (backfill).

// streamLog is one stream as this server reads it.
type streamLog struct {
	a    *Adapter
	name string
	cap  int // entries kept

	// mu is the order of delivery: held while an entry is applied, while
	// a restore takes its snapshot, and while a restored socket gets what
	// arrived in between (streams_sessions.go).
	mu    sync.Mutex
	nsps  map[string]*nspAdapter
	pos   streamID       // the last entry applied, or where reading started
	ready bool           // pos is known: what is added from now on will be read
	cache []*streamEntry // the last entries read, oldest first
	// The cache holds every entry of the stream after floor, up to pos;
	// floorEntry says whether floor is itself an entry (not cached).
	floor      streamID
	floorEntry bool
	pins       int        // restores reading old entries: do not trim
	bytes      int        // the cache's weight (streamEntry.cost)
	epoch      uint64     // bumped when the stream starts again
	fillMu     sync.Mutex // one backfill at a time

	// applied is the last entry fully applied (delivered), readable
	// without mu (a leaf lock): sessions are written with it.
	posMu   sync.Mutex
	applied streamID

	connMu sync.Mutex
	conn   *readConn // the reader's connection, to unblock it on Close

	down    atomic.Bool
	lastErr atomic.Pointer[string]
	errLog  throttle
}

// maxCache and maxCacheBytes bound the entries kept per stream whatever
// MaxLen says (big payloads): restores from older offsets read Redis (one
// shared read).
const (
	maxCache      = 50_000
	maxCacheBytes = 16 << 20
)

// backfillPage is the COUNT of each XRANGE of a backfill.
const backfillPage = 1000

func (a *Adapter) startStreams() {
	a.logs = map[string]*streamLog{}
	a.leases = newLeases(a)
	a.wg.Add(1)
	go a.leases.run(a.ctx)
}

// streamOf is the stream a namespace's broadcasts travel on, read from
// the first namespace on. (Node starts a reader for streams 0 to
// streamCount-1 only, so a namespace whose hash is negative, which it
// sends to "<name>--<i>", is never read by Node servers; here every
// namespace's stream is read.)
func (a *Adapter) streamOf(nsp string) *streamLog {
	name := a.opts.Stream.streamFor(nsp)
	a.logsMu.Lock()
	defer a.logsMu.Unlock()
	if l := a.logs[name]; l != nil {
		return l
	}
	l := &streamLog{a: a, name: name, nsps: map[string]*nspAdapter{},
		cap: int(min(a.opts.Stream.MaxLen+1024, maxCache)), errLog: throttle{every: 10 * time.Second}}
	a.logs[name] = l
	if a.ctx.Err() == nil { // not closed
		a.wg.Add(1)
		go l.run(a.ctx)
	}
	return l
}

// streamLogs lists the streams being read.
func (a *Adapter) streamLogs() []*streamLog {
	a.logsMu.Lock()
	defer a.logsMu.Unlock()
	out := make([]*streamLog, 0, len(a.logs))
	for _, l := range a.logs {
		out = append(out, l)
	}
	return out
}

// streamsReady reports whether every stream is being read (always true in
// the Pub/Sub protocols).
func (a *Adapter) streamsReady() bool {
	for _, l := range a.streamLogs() {
		l.mu.Lock()
		ready := l.ready
		l.mu.Unlock()
		if !ready || l.down.Load() {
			return false
		}
	}
	return true
}

func (a *Adapter) streamStatus(s *Status) {
	s.Appended, s.StreamReads, s.StreamRanges = a.appended.Load(), a.streamReads.Load(), a.streamRanges.Load()
	s.StreamSkipped = a.streamSkipped.Load()
	s.Restored, s.RestoreMisses = a.restored.Load(), a.restoreMisses.Load()
	if a.leases != nil {
		s.LiveSessions = a.leases.count()
	}
	for _, l := range a.streamLogs() {
		if l.down.Load() {
			s.State, s.LastError = StateReconnecting, *l.lastErr.Load()
		}
	}
}

// unblockStreams wakes the readers blocked in XREAD, so Close does not
// wait for their BLOCK to run out.
func (a *Adapter) unblockStreams() {
	for _, l := range a.streamLogs() {
		l.connMu.Lock()
		rc := l.conn
		l.connMu.Unlock()
		if rc != nil {
			rc.unblock()
		}
	}
}

// readConn is a reader's dedicated connection: a blocking XREAD holds it.
type readConn struct {
	cmd  redis.Cmdable
	conn *redis.Conn   // nil when the client cannot give one
	base *redis.Client // where CLIENT UNBLOCK goes
	id   int64         // CLIENT ID of conn; 0 when unknown (embedded Redis)
}

func (rc *readConn) close() {
	if rc.conn != nil {
		_ = rc.conn.Close()
	}
}

func (rc *readConn) unblock() {
	if rc.base == nil || rc.id == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = rc.base.ClientUnblock(ctx, rc.id).Err()
}

// dial opens the reader's connection, on the master of the stream's slot
// on Redis Cluster.
func (l *streamLog) dial(ctx context.Context) (*readConn, error) {
	var base *redis.Client
	switch c := l.a.client.(type) {
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, l.name)
		if err != nil {
			return nil, fmt.Errorf("find the master of stream %s: %w", l.name, err)
		}
		base = node
	case *redis.Client:
		base = c
	default:
		return &readConn{cmd: l.a.client}, nil
	}
	conn := base.Conn()
	rc := &readConn{cmd: conn, conn: conn, base: base}
	id, err := conn.ClientID(ctx).Result()
	var rerr redis.Error
	switch {
	case err == nil:
		rc.id = id
	case errors.As(err, &rerr): // no CLIENT ID (the embedded Redis): Close waits for BLOCK
	default:
		rc.close()
		return nil, err
	}
	return rc, nil
}

// readBatch is what the reader hands the dispatcher: the entries of one
// XREAD, decoded, or the news that the stream started again at reset.
type readBatch struct {
	entries []decodedEntry
	reset   *streamID
}

type decodedEntry struct {
	e   streamEntry
	err error
}

// batchesInFlight bounds the batches read and not yet applied.
const batchesInFlight = 4

// run reads the stream until ctx ends: XREAD BLOCK from the last id read,
// reconnecting with backoff; after a failure it checks that Redis still
// holds what was read (a Redis restarted empty starts the stream again).
// Reading and decoding (this goroutine) overlap with delivery (dispatch),
// in stream order.
func (l *streamLog) run(ctx context.Context) {
	defer l.a.wg.Done()
	batches := make(chan readBatch, batchesInFlight)
	l.a.wg.Add(1)
	go l.dispatch(ctx, batches)
	so := l.a.opts.Stream
	backoff := l.a.opts.BackoffMin
	var rc *readConn
	from := ""
	check := false
	fail := func(err error) {
		if rc != nil {
			rc.close()
			l.setConn(nil)
			rc = nil
		}
		check = true
		l.failed(err)
		if cc, ok := l.a.client.(*redis.ClusterClient); ok {
			cc.ReloadState(ctx)
		}
		sleepCtx(ctx, jitter(backoff))
		backoff = min(backoff*2, l.a.backoffMax())
	}
	defer func() {
		if rc != nil {
			rc.close()
		}
	}()
	send := func(b readBatch) bool {
		select {
		case batches <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for ctx.Err() == nil {
		if rc == nil {
			var err error
			if rc, err = l.dial(ctx); err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				continue
			}
			l.setConn(rc)
		}
		if from == "" || check {
			last, err := lastEntry(ctx, rc.cmd, l.name)
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				continue
			}
			switch read, _ := parseStreamID(from); {
			case from == "":
				l.start(last)
				from = last.String()
			case last.less(read):
				// Redis lost entries this server read: the stream started
				// again, and what it holds is all new.
				l.a.log.Warn("the redis stream lost entries this server had read (Redis restarted without its data?); reading it from its start",
					"stream", l.name, "read_up_to", from, "stream_ends_at", last.String())
				if !send(readBatch{reset: &last}) {
					return
				}
				from = last.String()
			}
			check = false
		}
		res, err := rc.cmd.XRead(ctx, &redis.XReadArgs{Streams: []string{l.name, from},
			Count: so.ReadCount, Block: so.Block}).Result()
		l.a.streamReads.Add(1)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			fail(err)
			continue
		}
		l.recovered()
		backoff = l.a.opts.BackoffMin
		var b readBatch
		for _, s := range res {
			for _, x := range s.Messages {
				e, err := decodeStreamEntry(x)
				b.entries = append(b.entries, decodedEntry{e, err})
			}
		}
		if len(b.entries) == 0 {
			continue
		}
		before := from
		from = b.entries[len(b.entries)-1].e.idStr
		if !send(b) {
			return
		}
		if len(b.entries) == int(so.ReadCount) {
			l.checkLag(ctx, rc.cmd, before) // a full batch: behind the stream's end
		}
	}
}

// dispatch applies what the reader read, in order.
func (l *streamLog) dispatch(ctx context.Context, batches <-chan readBatch) {
	defer l.a.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-batches:
			if b.reset != nil {
				l.restart(*b.reset)
				continue
			}
			for i := range b.entries {
				l.apply(&b.entries[i])
			}
		}
	}
}

// checkLag reports entries Redis trimmed (MAXLEN) before this server read
// them: they are gone for every reader. It asks only when a read came back
// full, so the reader is behind.
func (l *streamLog) checkLag(ctx context.Context, c redis.Cmdable, before string) {
	info, err := c.XInfoStream(ctx, l.name).Result()
	if err != nil {
		return
	}
	deleted, ok1 := parseStreamID(info.MaxDeletedEntryID)
	pos, ok2 := parseStreamID(before)
	if !ok1 || !ok2 || !pos.less(deleted) {
		return
	}
	l.a.streamSkipped.Add(1)
	if n, ok := l.errLog.allow(); ok {
		l.a.log.Warn("this server fell behind the stream: Redis trimmed entries it had not read (MAXLEN); those events are lost to its clients; raise redis.streams.max_len or add CPU",
			"stream", l.name, "read_up_to", before, "trimmed_up_to", deleted.String(), "max_len", l.a.opts.Stream.MaxLen, "suppressed", n)
	}
}

func (l *streamLog) setConn(rc *readConn) {
	l.connMu.Lock()
	l.conn = rc
	l.connMu.Unlock()
}

// lastEntry is the id of the stream's last entry (zero when it is empty
// or missing).
func lastEntry(ctx context.Context, c redis.Cmdable, stream string) (streamID, error) {
	xs, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return streamID{}, err
	}
	if len(xs) == 0 {
		return streamID{}, nil
	}
	id, ok := parseStreamID(xs[0].ID)
	if !ok {
		return streamID{}, fmt.Errorf("stream %s: entry id %q", stream, xs[0].ID)
	}
	return id, nil
}

// start sets where reading starts: the stream's end.
func (l *streamLog) start(last streamID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pos, l.ready = last, true
	l.floor, l.floorEntry = last, !last.isZero()
	l.setApplied(last)
}

func (l *streamLog) setApplied(id streamID) {
	l.posMu.Lock()
	l.applied = id
	l.posMu.Unlock()
}

// appliedPos is the last entry delivered: every entry up to it that was
// meant for a local socket has been handed to its transport.
func (l *streamLog) appliedPos() streamID {
	l.posMu.Lock()
	defer l.posMu.Unlock()
	return l.applied
}

// restart forgets what was read from a stream that started again (Redis
// lost its data): the entries cached, and offsets of the old stream (see
// streamLog.newer for the sessions that hold them).
func (l *streamLog) restart(last streamID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.cache)
	l.cache, l.bytes = l.cache[:0], 0
	l.pos, l.floor, l.floorEntry = last, last, !last.isZero()
	l.epoch++
	l.setApplied(last)
}

func (l *streamLog) failed(err error) {
	msg := err.Error()
	l.lastErr.Store(&msg)
	if !l.down.Swap(true) {
		l.a.log.Warn("redis stream read failed; local delivery only until it resumes (nothing published meanwhile is lost)",
			"stream", l.name, "err", msg)
		return
	}
	if n, ok := l.errLog.allow(); ok {
		l.a.log.Warn("redis stream still unreadable", "stream", l.name, "err", msg, "suppressed", n)
	}
}

func (l *streamLog) recovered() {
	if l.down.Swap(false) {
		l.a.log.Info("redis stream read resumed", "stream", l.name)
		if l.a.leases != nil {
			l.a.leases.rewriteAll() // Redis may have come back empty
		}
	}
}

// register makes the stream's entries for n reach it.
func (l *streamLog) register(n *nspAdapter) {
	l.mu.Lock()
	l.nsps[n.name] = n
	l.mu.Unlock()
}

func (l *streamLog) unregister(n *nspAdapter) {
	l.mu.Lock()
	if l.nsps[n.name] == n {
		delete(l.nsps, n.name)
	}
	l.mu.Unlock()
}

// apply keeps one entry and hands it to its namespace, in stream order.
func (l *streamLog) apply(d *decodedEntry) {
	e, err := &d.e, d.err
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.setApplied(l.pos)
	if err != nil {
		l.malformed(err)
		if e.idStr != "" {
			l.pos = e.id
		}
		return
	}
	l.a.received.Add(1)
	l.pos = e.id
	l.push(e)
	if n := l.nsps[e.m.Nsp]; n != nil {
		if tap := l.a.tap.Load(); tap != nil && e.m.UID != n.uid {
			(*tap)(l.name, nil, e.m)
		}
		if err := n.applyEntry(e); err != nil {
			l.malformed(err)
		}
	}
}

// malformed counts an entry that cannot be applied, and logs it (a few).
func (l *streamLog) malformed(err error) {
	l.a.malformed.Add(1)
	if s, ok := l.a.decodeErrLog.allow(); ok {
		l.a.log.Warn("ignored a malformed stream entry", "stream", l.name, "err", err, "suppressed", s)
	}
}

// push appends an entry to the cache, dropping the oldest beyond cap
// (unless a restore is reading older ones: pins).
func (l *streamLog) push(e *streamEntry) {
	e.cost = e.size()
	l.bytes += e.cost
	l.cache = append(l.cache, e)
	if l.pins > 0 {
		return
	}
	over := max(len(l.cache)-l.cap, 0)
	for b := l.bytes; over < len(l.cache)-1 && b > maxCacheBytes; over++ {
		b -= l.cache[over].cost
	}
	if over > 0 {
		for _, old := range l.cache[:over] {
			l.bytes -= old.cost
		}
		l.floor, l.floorEntry = l.cache[over-1].id, true
		clear(l.cache[:over])
		l.cache = l.cache[over:]
	}
}

// after is the index of the first cached entry newer than id.
func (l *streamLog) after(id streamID) int {
	return sort.Search(len(l.cache), func(i int) bool { return id.less(l.cache[i].id) })
}

// coversLocked reports whether the cache holds every entry after id that
// this server has read.
func (l *streamLog) coversLocked(id streamID) bool { return !id.less(l.floor) }

// knowsLocked reports whether the entry id exists (as far as the cache
// tells), or is newer than what was read: a client ahead of this server,
// whose old server had read further.
func (l *streamLog) knowsLocked(id streamID) bool {
	if l.pos.less(id) {
		return true
	}
	if id == l.floor {
		return l.floorEntry
	}
	i := l.after(id)
	return i > 0 && l.cache[i-1].id == id
}

// backfill reads from Redis the entries before the oldest one cached,
// back to id, and puts them in the cache. It reads as many as the cache
// holds (one XREVRANGE, usually the whole stream: cap is MaxLen and then
// some), not only back to id, so that the restores of a burst, whose
// offsets differ, are served by one read: the others find their entries
// cached (fillMu). The caller holds a pin, so the cache keeps its oldest
// entries meanwhile.
func (l *streamLog) backfill(ctx context.Context, id streamID) error {
	l.fillMu.Lock()
	defer l.fillMu.Unlock()
	l.mu.Lock()
	if l.coversLocked(id) {
		l.mu.Unlock()
		return nil
	}
	end, epoch := l.floor, l.epoch
	room := max(l.cap-len(l.cache), backfillPage)
	l.mu.Unlock()

	// newest first, ending at end (inclusive)
	xs, err := l.a.client.XRevRangeN(ctx, l.name, end.String(), "-", int64(room)).Result()
	l.a.streamRanges.Add(1)
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read stream %s before %s: %w", l.name, end, err)
	}
	got := make([]*streamEntry, 0, len(xs))
	for i := len(xs) - 1; i >= 0; i-- {
		if e, err := decodeStreamEntry(xs[i]); err == nil { // a malformed one is skipped live too
			got = append(got, &e)
		}
	}
	oldest := streamID{} // what the read reaches back to: everything after it
	if len(xs) == room {
		if first, ok := parseStreamID(xs[len(xs)-1].ID); ok {
			oldest = first.prev()
		}
		if id.less(oldest) {
			// Longer ago than the cache holds: read the rest, page by page.
			start, stop := id.String(), oldest.String()
			var more []*streamEntry
			for {
				ys, err := l.a.client.XRangeN(ctx, l.name, start, stop, backfillPage).Result()
				l.a.streamRanges.Add(1)
				if err != nil {
					return fmt.Errorf("read stream %s from %s: %w", l.name, id, err)
				}
				for _, y := range ys {
					if e, err := decodeStreamEntry(y); err == nil {
						more = append(more, &e)
					}
				}
				if len(ys) < backfillPage {
					break
				}
				last, _ := parseStreamID(ys[len(ys)-1].ID)
				start = streamID{last.ms, last.seq + 1}.String()
			}
			got, oldest = append(more, got...), id.prev()
		}
	}
	neverTrimmed := false
	if len(xs) < room {
		info, err := l.a.client.XInfoStream(ctx, l.name).Result()
		neverTrimmed = err == nil && (info.MaxDeletedEntryID == "" || info.MaxDeletedEntryID == "0-0")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch != epoch || l.floor != end {
		return nil // the stream started again meanwhile
	}
	for _, e := range got {
		e.cost = e.size()
		l.bytes += e.cost
	}
	l.cache = append(got, l.cache...)
	l.floor, l.floorEntry = oldest, false
	if len(xs) < room && len(got) > 0 {
		// the whole stream: what it held before its first entry was
		// trimmed, unless it never lost one
		l.floor = got[0].id.prev()
		if neverTrimmed {
			l.floor = streamID{}
		}
	}
	return nil
}

// newer reports whether the stream holds every entry since it was
// created and begins after id: id is an offset of an earlier stream of
// that name (Redis lost its data meanwhile). Asked only for offsets the
// stream does not hold.
func (l *streamLog) newer(ctx context.Context, id streamID) bool {
	info, err := l.a.client.XInfoStream(ctx, l.name).Result()
	if err != nil || info.EntriesAdded == 0 || info.EntriesAdded != info.Length {
		return false // trimmed (or unknown): the offset may just be gone
	}
	first, ok := parseStreamID(info.FirstEntry.ID)
	return ok && id.less(first)
}

// applyEntry carries out one stream entry for this namespace (the
// stream's lock is held).
func (n *nspAdapter) applyEntry(e *streamEntry) error {
	m := e.m
	switch {
	case m.Kind == kindBroadcast && m.RequestID == "":
		return n.deliverEntry(e)
	case m.Kind == kindBroadcast: // with ack: 0.3 sends these on Pub/Sub
		if m.UID != n.uid {
			n.onBroadcastWithAck(m)
		}
	case m.Kind.isResponse():
		n.onResponse(m)
	case m.UID != n.uid: // our own join/leave/disconnect was applied when asked
		return n.apply(m)
	}
	return nil
}

// deliverEntry delivers a broadcast to the local sockets it targets, with
// its entry id as offset (when recovery is on and the event may be
// recovered), and keeps it for the sessions being restored.
func (n *nspAdapter) deliverEntry(e *streamEntry) error {
	if dropForChaos() {
		return nil
	}
	t := e.m.Target
	restoring := n.restoringFor(t)
	if len(restoring) == 0 && len(t.Rooms) > 0 && !n.hasAnyRoom(t.Rooms) {
		return nil // for clients of other servers: not even decoded
	}
	data, err := e.args()
	if err != nil {
		return err
	}
	recoverable := n.csr && !t.Flags.Volatile
	if recoverable {
		data = withOffset(data, e.idStr)
		n.noteSent(t, restoring, e.id)
	}
	opts := optionsOf(t)
	for _, r := range restoring {
		// The socket being restored already sits in its rooms: it gets
		// this event once it is connected, after its missed events.
		opts.Except.Add(socket.Room(r.sid))
		if recoverable && r.after.less(e.id) && len(r.buffer) < maxAwayPackets {
			r.buffer = append(r.buffer, data)
		}
	}
	n.Adapter.Broadcast(&parser.Packet{Type: parser.EVENT, Nsp: n.name, Data: data}, opts)
	return nil
}

// noteSent records that a recoverable entry goes to the local sockets of
// its rooms (or to all): the sessions written later say which entry a
// socket was last sent (lastSentTo). It may say too recent an entry for a
// socket (one it was excluded from): a restore then asks for the client's
// offset in the stream, as Node does; never too old a one.
func (n *nspAdapter) noteSent(t target, restoring []*restoringSession, id streamID) {
	n.lastMu.Lock()
	defer n.lastMu.Unlock()
	if len(t.Rooms) == 0 {
		n.lastAll = id
		return
	}
	for _, r := range t.Rooms {
		room := socket.Room(r)
		local := false
		if _, ok := n.Rooms().Load(room); ok {
			local = true
		}
		for _, rs := range restoring {
			local = local || rs.rooms.Has(room)
		}
		if local {
			n.lastByRoom[room] = id
		}
	}
}

// lastSentTo is the last recoverable entry sent to a socket in rooms, as
// far as this server knows (what it sent, and, for a restored socket, what
// it had been sent before).
func (n *nspAdapter) lastSentTo(sid socket.SocketId, rooms []socket.Room) (streamID, bool) {
	n.lastMu.Lock()
	defer n.lastMu.Unlock()
	last := n.lastAll
	if id, ok := n.lastBySid[sid]; ok && last.less(id) {
		last = id
	}
	for _, r := range rooms {
		if id, ok := n.lastByRoom[r]; ok && last.less(id) {
			last = id
		}
	}
	return last, !last.isZero()
}

// hasAnyRoom reports whether a local socket is in one of rooms.
func (n *nspAdapter) hasAnyRoom(rooms []string) bool {
	for _, r := range rooms {
		if _, ok := n.Rooms().Load(socket.Room(r)); ok {
			return true
		}
	}
	return false
}

// withOffset is an event's data with its offset appended, in a new array
// (never written into the caller's).
func withOffset(data []any, offset string) []any {
	return append(data[:len(data):len(data)], offset)
}
