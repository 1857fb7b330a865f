package redisadapter

import (
	"fmt"
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
	st.record(seen, target{Rooms: []string{"user:1"}})
	st.record(event("in-flight"), target{Rooms: []string{"user:1"}})
	st.record(event("other-user"), target{Rooms: []string{"user:2"}})
	st.record(event("everyone"), target{})
	st.record(event("excluded"), target{Except: []string{"user:1"}})
	st.persist(session("p1", "user:1", "sid-p1"))
	st.record(event("while-away"), target{Rooms: []string{"user:2", "user:1"}})
	st.record(event("away-other"), target{Rooms: []string{"user:3"}})
	st.record(event("away-all"), target{})
	st.record(event("volatile"), target{Rooms: []string{"user:1"}, Flags: flags{Volatile: true}}) // not storable: callers skip it
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
	st.record(event("a"), target{Rooms: []string{"r"}})
	st.record(event("b"), target{Rooms: []string{"r"}})
	st.persist(session("p", "r"))
	s := st.restore("p", "u-gone")
	if got := fmt.Sprint(names(s.MissedPackets)); got != "[a b]" {
		t.Errorf("missed = %s", got)
	}
}

// Sessions expire after max_disconnection; recent events after the window.
func TestSessionStoreExpiry(t *testing.T) {
	st := newSessionStore("u", 30*time.Millisecond, 30*time.Millisecond)
	st.record(event("old"), target{})
	st.persist(session("p", "r"))
	deadline := time.Now().Add(5 * time.Second)
	for st.awayCount() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("session never expired")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.restore("p", "") != nil {
		t.Error("an expired session was restored")
	}
	st.record(event("new"), target{})
	st.mu.Lock()
	live := len(st.recent) - st.head
	st.mu.Unlock()
	if live != 1 {
		t.Errorf("%d recent events kept, want only the new one", live)
	}
}

// record never writes into the array of the caller's data (the same data
// was just published, and may be shared).
func TestSessionStoreDoesNotAlias(t *testing.T) {
	st := newSessionStore("u", time.Minute, time.Minute)
	data := make([]any, 2, 8)
	data[0], data[1] = "e", 1
	p := &parser.Packet{Type: parser.EVENT, Data: data}
	st.record(p, target{})
	if len(data) != 2 || cap(data) != 8 || data[:3][2] != nil {
		t.Errorf("the caller's array was written: %v", data[:3])
	}
	if len(p.Data.([]any)) != 3 {
		t.Errorf("offset not appended: %v", p.Data)
	}
}
