package redisadapter

import (
	"encoding/binary"
	"sort"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// eventLog keeps encoded events in the order of their seq, in chunks the
// garbage collector does not scan: an entry holds numbers only, and its
// bytes (the event's msgpack, then its target) sit in the chunk's byte
// arena. Recovery keeps hundreds of thousands of events at a few thousand
// per second; as a slice of structs holding slices, they cost a worker a
// growslice and a memmove per event and a scan of every entry at every
// garbage collection (a sixth of its CPU at 10,000 emits/s).
type eventLog struct {
	chunks []*logChunk // oldest first
	n      int         // live entries
	spare  *logChunk   // the last chunk dropped, reused by the next one
}

type logEntry struct {
	seq uint64
	at  int64  // the store's clock (monotonic nanoseconds)
	enc uint32 // buf[enc:tgt] is the event's msgpack (or the unread message),
	tgt uint32 // buf[tgt:end] its target (empty when not kept)
	end uint32
	// unread: buf[enc:tgt] is a broadcast message as it came from Redis,
	// not decoded yet (see sessionStore.keepUnread).
	unread bool
}

type logChunk struct {
	head    int // entries[head:] are live
	entries []logEntry
	buf     []byte
}

const (
	chunkEntries = 4096
	chunkBytes   = 512 << 10
)

// add appends an event; seq must be above every seq already in the log.
func (l *eventLog) add(seq uint64, at int64, enc []byte, t *target) {
	l.addEntry(logEntry{seq: seq, at: at}, enc, t)
}

func (l *eventLog) addEntry(e logEntry, enc []byte, t *target) {
	need := len(enc)
	if t != nil {
		need += targetSize(*t)
	}
	c := l.last()
	if c == nil || len(c.entries) == cap(c.entries) || len(c.buf)+need > cap(c.buf) {
		c = l.grow(need)
	}
	e.enc = uint32(len(c.buf))
	c.buf = append(c.buf, enc...)
	e.tgt = uint32(len(c.buf))
	if t != nil {
		c.buf = appendRooms(c.buf, *t)
	}
	e.end = uint32(len(c.buf))
	c.entries = append(c.entries, e)
	l.n++
}

func (l *eventLog) last() *logChunk {
	if len(l.chunks) == 0 {
		return nil
	}
	return l.chunks[len(l.chunks)-1]
}

// grow starts a chunk with room for need bytes at least.
func (l *eventLog) grow(need int) *logChunk {
	c := l.spare
	l.spare = nil
	if c == nil || cap(c.buf) < need {
		c = &logChunk{entries: make([]logEntry, 0, chunkEntries), buf: make([]byte, 0, max(chunkBytes, need))}
	}
	l.chunks = append(l.chunks, c)
	return c
}

// dropWhile drops the oldest entries while drop says so, and returns the
// last one dropped (ok: one was).
func (l *eventLog) dropWhile(drop func(e logEntry) bool) (last logEntry, ok bool) {
	for len(l.chunks) > 0 {
		c := l.chunks[0]
		for c.head < len(c.entries) && drop(c.entries[c.head]) {
			last, ok = c.entries[c.head], true
			c.head++
			l.n--
		}
		if c.head < len(c.entries) {
			return last, ok
		}
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
		c.head, c.entries, c.buf = 0, c.entries[:0], c.buf[:0]
		if cap(c.buf) == chunkBytes {
			l.spare = c
		}
	}
	return last, ok
}

// after calls fn for each entry with a seq above seq, in order, until fn
// returns false; after(0, fn) visits them all.
func (l *eventLog) after(seq uint64, fn func(e logEntry, c *logChunk) bool) {
	i := sort.Search(len(l.chunks), func(i int) bool {
		c := l.chunks[i]
		return c.entries[len(c.entries)-1].seq > seq
	})
	for ; i < len(l.chunks); i++ {
		c := l.chunks[i]
		live := c.entries[c.head:]
		j := sort.Search(len(live), func(j int) bool { return live[j].seq > seq })
		for _, e := range live[j:] {
			if !fn(e, c) {
				return
			}
		}
	}
}

// find returns the entry of seq.
func (l *eventLog) find(seq uint64) (logEntry, *logChunk, bool) {
	var found logEntry
	var in *logChunk
	l.after(seq-1, func(e logEntry, c *logChunk) bool {
		if e.seq == seq {
			found, in = e, c
		}
		return false
	})
	return found, in, in != nil
}

func (c *logChunk) encoded(e logEntry) []byte { return c.buf[e.enc:e.tgt] }

// targets reports whether the entry's target reaches a socket in rooms
// (see targets), reading the target where it is stored.
func (c *logChunk) targets(e logEntry, rooms *types.Set[socket.Room]) bool {
	b := c.buf[e.tgt:e.end]
	in, b := roomsIn(b, rooms)
	excluded, _ := roomsIn(b, rooms)
	return (in.n == 0 || in.found) && !excluded.found
}

type roomsMatch struct {
	n     int  // rooms in the list
	found bool // one of them is in the set
}

// roomsIn reads one list of appendRooms and says whether any of it is in
// rooms; it returns the rest of b.
func roomsIn(b []byte, rooms *types.Set[socket.Room]) (roomsMatch, []byte) {
	n, k := binary.Uvarint(b)
	b = b[k:]
	m := roomsMatch{n: int(n)}
	for range n {
		l, k := binary.Uvarint(b)
		b = b[k:]
		if !m.found && rooms.Has(socket.Room(b[:l])) {
			m.found = true
		}
		b = b[l:]
	}
	return m, b
}

// appendRooms writes a target's rooms and exceptions (its flags do not
// matter to a restore): for each list, its length and each room's length
// and bytes, as uvarints.
func appendRooms(b []byte, t target) []byte {
	for _, list := range [2][]string{t.Rooms, t.Except} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, r := range list {
			b = binary.AppendUvarint(b, uint64(len(r)))
			b = append(b, r...)
		}
	}
	return b
}

func targetSize(t target) int {
	n := 0
	for _, list := range [2][]string{t.Rooms, t.Except} {
		n += binary.MaxVarintLen64
		for _, r := range list {
			n += binary.MaxVarintLen64 + len(r)
		}
	}
	return n
}
