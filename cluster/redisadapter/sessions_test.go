package redisadapter

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

func event(name string, args ...any) *parser.Packet {
	return &parser.Packet{Type: parser.EVENT, Data: append([]any{name}, args...)}
}

func names(missed []any) []string {
	var out []string
	for _, m := range missed {
		out = append(out, m.([]any)[0].(string))
	}
	return out
}

func offsetOf(p *parser.Packet) string {
	d := p.Data.([]any)
	return d[len(d)-1].(string)
}

func session(pid string, rooms ...string) *socket.SessionToPersist {
	return &socket.SessionToPersist{Sid: socket.SocketId("sid-" + pid), Pid: socket.PrivateSessionId(pid), Rooms: types.NewSet(roomsOf(rooms)...)}
}

// A returning client gets, in order, the events for its rooms after its
// offset: those written before the disconnect was noticed and those
// emitted while it was away; nothing for other rooms, nothing excluded.
func TestSessionStoreRestore(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	seen := event("seen")
	st.record(seen, target{Rooms: []string{"user:1"}}, nil)
	st.record(event("in-flight"), target{Rooms: []string{"user:1"}}, nil)
	st.record(event("other-user"), target{Rooms: []string{"user:2"}}, nil)
	st.record(event("everyone"), target{}, nil)
	st.record(event("excluded"), target{Except: []string{"user:1"}}, nil)
	st.persist(session("p1", "user:1", "sid-p1"))
	st.record(event("while-away"), target{Rooms: []string{"user:2", "user:1"}}, nil)
	st.record(event("away-other"), target{Rooms: []string{"user:3"}}, nil)
	st.record(event("away-all"), target{}, nil)
	st.record(event("volatile"), target{Rooms: []string{"user:1"}, Flags: flags{Volatile: true}}, nil) // not storable: callers skip it
	s := st.restore("p1", offsetOf(seen))
	if s == nil {
		t.Fatal("session not restored")
	}
	want := "[in-flight everyone while-away away-all volatile]"
	if got := fmt.Sprint(names(s.MissedPackets)); got != want {
		t.Errorf("missed = %s, want %s", got, want)
	}
	if st.restore("p1", offsetOf(seen)) != nil {
		t.Error("a session was restored twice")
	}
	if st.awayCount() != 0 {
		t.Errorf("away = %d", st.awayCount())
	}
}

// An offset older than the recent window (or unknown) means the client got
// none of the recent events for it: all of them are missed.
func TestSessionStoreOldOffset(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	st.record(event("a"), target{Rooms: []string{"r"}}, nil)
	st.record(event("b"), target{Rooms: []string{"r"}}, nil)
	st.persist(session("p", "r"))
	s := st.restore("p", "u-gone")
	if got := fmt.Sprint(names(s.MissedPackets)); got != "[a b]" {
		t.Errorf("missed = %s", got)
	}
}

// Sessions expire after max_disconnection; recent events after the window.
func TestSessionStoreExpiry(t *testing.T) {
	st := newSessionStore("u", 30*time.Second, 30*time.Second)
	clock := clocked(st)
	st.record(event("old"), target{}, nil)
	st.persist(session("p", "r"))
	clock.advance(31 * time.Second)
	if n := st.awayCount(); n != 0 {
		t.Fatalf("%d sessions away after max_disconnection", n)
	}
	if st.restore("p", "") != nil {
		t.Error("an expired session was restored")
	}
	st.record(event("new"), target{}, nil)
	if n := recentCount(st); n != 1 {
		t.Errorf("%d recent events kept, want only the new one", n)
	}
}

func recentCount(st *sessionStore) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.recent.n
}

// record never writes into the array of the caller's data (the same data
// was just published, and may be shared).
func TestSessionStoreDoesNotAlias(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	data := make([]any, 2, 8)
	data[0], data[1] = "e", 1
	p := &parser.Packet{Type: parser.EVENT, Data: data}
	st.record(p, target{}, nil)
	if len(data) != 2 || cap(data) != 8 || data[:3][2] != nil {
		t.Errorf("the caller's array was written: %v", data[:3])
	}
	if len(p.Data.([]any)) != 3 {
		t.Errorf("offset not appended: %v", p.Data)
	}
}

// A session meant more events than the store keeps for one is not
// restored (a new session), rather than restored with a gap.
func TestSessionStoreOverflowRefusesRestore(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	st.maxAway = 3
	first := event("first")
	st.record(first, target{Rooms: []string{"r"}}, nil)
	st.persist(session("p", "r"))
	st.persist(session("q", "r"))
	for i := range 3 {
		st.record(event(fmt.Sprint("away", i)), target{Rooms: []string{"r"}}, nil)
	}
	s := st.restore("q", offsetOf(first))
	if s == nil || fmt.Sprint(names(s.MissedPackets)) != "[away0 away1 away2]" {
		t.Fatalf("q at the limit: %v", s)
	}
	st.record(event("one-too-many"), target{Rooms: []string{"r"}}, nil)
	if s := st.restore("p", offsetOf(first)); s != nil {
		t.Errorf("a session past its limit was restored with %v", names(s.MissedPackets))
	}
}

// When recent lost events to its count limit inside the window a restore
// needs, and the client's offset is older than what is left, the restore
// is refused; with an offset still in recent it is whole.
func TestSessionStoreCountLimit(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	st.maxRecent = 5
	first := event("first")
	st.record(first, target{Rooms: []string{"r"}}, nil)
	var last *parser.Packet
	for i := range 10 {
		last = event(fmt.Sprint("e", i))
		st.record(last, target{Rooms: []string{"r"}}, nil)
	}
	st.persist(session("old", "r"))
	st.persist(session("new", "r"))
	if s := st.restore("old", offsetOf(first)); s != nil {
		t.Errorf("restored although events after its offset fell off: %v", names(s.MissedPackets))
	}
	st.record(event("after"), target{Rooms: []string{"r"}}, nil)
	s := st.restore("new", offsetOf(last))
	if s == nil || fmt.Sprint(names(s.MissedPackets)) != "[after]" {
		t.Fatalf("restore from a recent offset: %v", s)
	}
}

// Restores across many chunks: each of 3 sessions gets exactly its rooms'
// events, in order, whether they were recorded before or after it left.
func TestSessionStoreManyChunks(t *testing.T) {
	st := newSessionStore("u", time.Hour, time.Hour)
	payload := strings.Repeat("x", 300) // several events per KB: chunks fill by bytes and by count
	want := map[string][]string{}
	var e1 *parser.Packet
	record := func(i int) {
		room := fmt.Sprint("r", i%3)
		name := fmt.Sprint("e", i)
		p := event(name, payload)
		st.record(p, target{Rooms: []string{room}}, nil)
		if i == 1 {
			e1 = p
		}
		want[room] = append(want[room], name)
	}
	for i := range 3000 {
		record(i)
	}
	mark := event("mark")
	st.record(mark, target{Rooms: []string{"none"}}, nil)
	for r := range 3 {
		st.persist(session(fmt.Sprint("p", r), fmt.Sprint("r", r)))
	}
	offsets := []string{offsetOf(mark), offsetOf(e1), offsetOf(mark)}
	want["r0"], want["r1"], want["r2"] = nil, want["r1"][1:], nil // p1 got e1 and missed the rest
	for i := 3000; i < 3000+3*chunkEntries; i++ {
		record(i)
	}
	big := event("big", strings.Repeat("y", 2*chunkBytes))
	st.record(big, target{Rooms: []string{"r1"}}, nil)
	want["r1"] = append(want["r1"], "big")
	for r := range 3 {
		s := st.restore(socket.PrivateSessionId(fmt.Sprint("p", r)), offsets[r])
		if s == nil {
			t.Fatalf("p%d not restored", r)
		}
		if got, w := names(s.MissedPackets), want[fmt.Sprint("r", r)]; fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("p%d: %d events, want %d (first %v, want %v)", r, len(got), len(w), got[:min(3, len(got))], w[:min(3, len(w))])
		}
	}
}

// The cost of keeping an event for recovery in the shape of the
// side-by-side's emit rows: 15,000 sessions away (the clients of an
// earlier row), events to one of 5,000 users' rooms.
func BenchmarkSessionStoreRecord(b *testing.B) {
	st := newSessionStore("u", time.Minute, time.Minute)
	for i := range 15000 {
		st.persist(session(fmt.Sprint("p", i), fmt.Sprint("user:", i)))
	}
	payload := map[string]any{"s": 1.0, "q": 12345.0, "t": 1764864000000000.0}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		st.record(event("e", payload), target{Rooms: []string{fmt.Sprint("user:", i%5000)}}, nil)
	}
}

// sentBy reads the sender of a broadcast as encodeBroadcast writes it (and
// as Node does), and says no to anything else.
func TestSentBy(t *testing.T) {
	for _, uid := range []string{"abc123", strings.Repeat("u", 40)} { // fixstr, str8
		b, err := encodeBroadcast(message{Kind: kindBroadcast, UID: uid, Nsp: "/", Data: []any{"e"}, Target: target{Rooms: []string{"r"}}})
		if err != nil {
			t.Fatal(err)
		}
		if !sentBy(b, uid) || sentBy(b, uid+"x") || sentBy(b, uid[1:]) {
			t.Errorf("sentBy(%q) wrong", uid)
		}
		for i := range len(b) {
			if sentBy(b[:i], uid) && i < 2+len(uid) {
				t.Errorf("sentBy accepts %d truncated bytes", i)
			}
		}
	}
	for _, garbage := range [][]byte{nil, {0x93}, {0x93, 0xc0}, {0x80}, {0xdc, 0x00}} {
		if sentBy(garbage, "") {
			t.Errorf("sentBy(%x) = true", garbage)
		}
	}
}

// fakeClock is a store's clock that a test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func clocked(st *sessionStore) *fakeClock    { c := &fakeClock{t: st.start}; st.now = c.now; return c }
func broadcastOf(t *testing.T, name string, tg target) []byte {
	t.Helper()
	b, err := encodeBroadcast(message{Kind: kindBroadcast, UID: "other", Nsp: "/", Data: []any{name}, Target: tg})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unreadStore is a store whose unread messages decode as a namespace
// adapter's do.
func unreadStore(recentFor, keep time.Duration) *sessionStore {
	st := newSessionStore("u", recentFor, keep)
	n := &nspAdapter{name: "/"}
	st.unread = n.unread
	return st
}

// The events written to a transport that was already dead (up to a window
// before the server noticed) stay for its session however long it is
// away, not only for a window from now.
func TestSessionStoreHoldsTheWindowOfAnAwaySession(t *testing.T) {
	st := newSessionStore("u", 10*time.Second, time.Minute)
	clock := clocked(st)
	seen := event("seen")
	st.record(seen, target{Rooms: []string{"r"}}, nil)
	clock.advance(time.Second)
	st.record(event("into-the-dead-transport"), target{Rooms: []string{"r"}}, nil)
	clock.advance(8 * time.Second)
	st.persist(session("p", "r")) // the ping timeout noticed it
	clock.advance(30 * time.Second)
	st.record(event("elsewhere"), target{Rooms: []string{"x"}}, nil) // prunes
	s := st.restore("p", offsetOf(seen))
	if s == nil || fmt.Sprint(names(s.MissedPackets)) != "[into-the-dead-transport]" {
		t.Fatalf("restore after 30 s away: %v", s)
	}
	// With no session away, the window is from now again.
	clock.advance(11 * time.Second)
	st.record(event("later"), target{Rooms: []string{"x"}}, nil)
	if n := recentCount(st); n != 1 {
		t.Errorf("recent holds %d events once nobody is away, want 1", n)
	}
}

// A client restored with an event that was only kept unread, whose
// transport dies again before any new event, is restored again with
// nothing: not with the recent events it already had.
func TestSessionStoreSecondRestoreReplaysNothing(t *testing.T) {
	st := unreadStore(time.Minute, time.Minute)
	st.record(event("a"), target{Rooms: []string{"r"}}, nil)
	sid := session("p", "r").Sid
	st.joined(sid)
	st.persist(session("p", "r"))
	st.keepUnread("r", broadcastOf(t, "b", target{Rooms: []string{"r"}}))
	first := st.restore("p", FromSessionStart)
	if first == nil || fmt.Sprint(names(first.MissedPackets)) != "[b]" {
		t.Fatalf("first restore: %v", first)
	}
	last := first.MissedPackets[len(first.MissedPackets)-1].([]any)
	st.persist(session("p", "r"))
	second := st.restore("p", last[len(last)-1].(string))
	if second == nil || len(second.MissedPackets) != 0 {
		t.Fatalf("second restore replays %v", second)
	}
}

// Messages kept unread count toward a session's limit only when they are
// for it: volatile ones and ones excluding it do not make it overflow.
func TestSessionStoreUnreadCountsOnlyItsOwn(t *testing.T) {
	st := unreadStore(time.Minute, time.Minute)
	st.maxAway = 3
	st.persist(session("p", "r", "sid-p"))
	for range 5 {
		st.keepUnread("r", broadcastOf(t, "typing", target{Rooms: []string{"r"}, Flags: flags{Volatile: true}}))
		st.keepUnread("r", broadcastOf(t, "not-for-p", target{Rooms: []string{"r"}, Except: []string{"sid-p"}}))
	}
	st.keepUnread("r", broadcastOf(t, "for-p", target{Rooms: []string{"r"}}))
	s := st.restore("p", FromSessionStart)
	if s == nil || fmt.Sprint(names(s.MissedPackets)) != "[for-p]" {
		t.Fatalf("restore: %v", s)
	}
}
