package redisadapter_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// streamsOpts is the streams protocol with Node's defaults, or with a
// small MaxLen.
func streamsOpts(maxLen int64) redisadapter.Options {
	return redisadapter.Options{Streams: true, Stream: redisadapter.StreamOptions{MaxLen: maxLen}}
}

// recoverable dials g as user with recovery (optionally resuming a
// session) and records the events, offsets included.
func recoverable(t testing.TB, g *goServer, user string, resume *sioclient.Session) (*sioclient.Client, *eventlog.Recorder) {
	t.Helper()
	rec := eventlog.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: g.URL, Auth: map[string]any{"user": user}, OnEvent: rec.On, Resume: resume})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", g.URL, user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
}

// streamEntries are the stream's entries with their fields in order.
func streamEntries(t testing.TB, c redis.UniversalClient, stream string) [][]string {
	t.Helper()
	v, err := c.Do(context.Background(), "XRANGE", stream, "-", "+").Slice()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for _, e := range v {
		pair := e.([]any)
		row := []string{pair[0].(string)}
		switch f := pair[1].(type) {
		case []any:
			for _, x := range f {
				row = append(row, x.(string))
			}
		case map[any]any: // RESP3 may hand a map: order lost, so the test asks RESP2 below
			t.Fatalf("fields as a map: %v", f)
		}
		out = append(out, row)
	}
	return out
}

// The bytes in Redis are @socket.io/redis-streams-adapter 0.3's: XADD of
// uid, nsp, type, data in that order; data JSON, or base64 msgpack when
// binary; the offset a client gets is the entry id; MAXLEN ~ trims; the
// session of a connected socket is Node's value plus frutosFrom.
func TestStreamsWireFormat(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(100)})
	raw := redis.NewClient(&redis.Options{Addr: rs.Addr(), Protocol: 2})
	t.Cleanup(func() { _ = raw.Close() })
	c, rec := recoverable(t, a, "7", nil)
	settled(t, a, "user:7")

	a.IO.To("user:7").Emit("hola", map[string]any{"n": 1})
	got := rec.WaitN(t, "hola", 1, 5*time.Second)[0]
	entries := streamEntries(t, raw, "socket.io")
	if len(entries) != 1 {
		t.Fatalf("stream holds %d entries, want 1: %v", len(entries), entries)
	}
	e := entries[0]
	if off := got.Args[len(got.Args)-1]; off != e[0] {
		t.Errorf("the client's offset is %v, want the entry id %s", off, e[0])
	}
	if len(e) != 9 || e[1] != "uid" || e[3] != "nsp" || e[4] != "/" || e[5] != "type" || e[6] != "3" || e[7] != "data" {
		t.Fatalf("entry fields = %q, want uid, nsp, type, data in that order", e[1:])
	}
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(e[2]) {
		t.Errorf("uid %q is not 16 hex digits", e[2])
	}
	var data any
	if err := json.Unmarshal([]byte(e[8]), &data); err != nil {
		t.Fatalf("data is not JSON: %q", e[8])
	}
	want := `{"opts":{"except":[],"flags":{},"rooms":["user:7"]},"packet":{"data":["hola",{"n":1}],"nsp":"/","type":2}}`
	if js := jsonOf(t, data); js != want {
		t.Errorf("data = %s\nwant %s", js, want)
	}

	// binary: base64 of msgpack, decoded here by an independent decoder
	a.IO.To("user:7").Emit("bin", []byte{0, 1, 250})
	rec.WaitN(t, "bin", 1, 5*time.Second)
	entries = streamEntries(t, raw, "socket.io")
	b64 := entries[len(entries)-1][8]
	mp, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("binary data is not base64: %q", b64)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(mp, &m); err != nil {
		t.Fatalf("binary data is not msgpack: %v", err)
	}
	pd := m["packet"].(map[string]any)["data"].([]any)
	if pd[0] != "bin" || !bytes.Equal(asBytes(pd[1]), []byte{0, 1, 250}) {
		t.Errorf("binary entry = %v", m)
	}

	// the session of the connected socket
	key := "sio:session:" + c.PID
	sess := storedSession(t, raw, key)
	if sess["sid"] != c.ID || sess["pid"] != c.PID || !strings.Contains(fmt.Sprint(sess["rooms"]), "user:7") {
		t.Errorf("session = %v", sess)
	}
	if _, ok := sess["frutosFrom"].(string); !ok {
		t.Errorf("session without frutosFrom: %v", sess)
	}
	if ttl := raw.PTTL(context.Background(), key).Val(); ttl <= 60*time.Second || ttl > 60*time.Second+30*time.Second {
		t.Errorf("a connected socket's session lives %v, want max_disconnection (60s) + 30s", ttl)
	}

	// MAXLEN ~ 100
	for i := range 1000 {
		a.IO.To("nobody").Emit("fill", i)
	}
	waitFor(t, 10*time.Second, "1000 entries appended", func() bool { return a.Adapter.Status().Appended >= 1002 })
	if n := raw.XLen(context.Background(), "socket.io").Val(); n < 100 || n > 300 {
		t.Errorf("XLEN after 1002 entries with MAXLEN ~ 100 = %d", n)
	}

	// a dropped transport: Node's TTL; a client that leaves: deleted
	_ = c.Close()
	waitFor(t, 5*time.Second, "session stored with Node's TTL", func() bool {
		ttl := raw.PTTL(context.Background(), key).Val()
		return ttl > 0 && ttl <= 60*time.Second
	})
	c2, _ := recoverable(t, a, "8", nil)
	key2 := "sio:session:" + c2.PID
	waitFor(t, 5*time.Second, "lease written", func() bool { return raw.Exists(context.Background(), key2).Val() == 1 })
	a.IO.In("user:8").DisconnectSockets(false) // not recoverable: the session ends
	// (The library may also see the client's transport close first, a
	// recoverable reason: then the session stays, with Node's TTL.)
	waitFor(t, 5*time.Second, "session of a socket disconnected deleted, or kept with Node's TTL", func() bool {
		ttl := raw.PTTL(context.Background(), key2).Val()
		return ttl == -2*time.Nanosecond || ttl > 0 && ttl <= 60*time.Second
	})
}

func storedSession(t testing.TB, c redis.UniversalClient, key string) map[string]any {
	t.Helper()
	var v string
	eventlog.WaitFor(t, 5*time.Second, "session "+key+" stored", func() bool {
		var err error
		v, err = c.Get(context.Background(), key).Result()
		return err == nil
	})
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatalf("session is not base64: %q", v)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatalf("session is not msgpack: %v", err)
	}
	return m
}

// A client whose server went away gets its session back from another
// server, with every event emitted meanwhile (to its user room, to its own
// socket id, binary), in stream order, once, each with its offset; not
// the ones that excluded it. crash: the first server dies without writing
// anything (its Redis client is closed first), so only the session kept
// while the socket was connected is there.
func TestStreamsRecoveryAcrossServers(t *testing.T) {
	t.Parallel()
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "transport-closed", true: "server-crashed"}[crash], func(t *testing.T) {
			t.Parallel()
			rs := redistest.Start(t)
			a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
			b := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
			_, observer := join(t, b, "observer") // B has read what was appended before its sentinel
			c, rec := recoverable(t, a, "77", nil)
			settled(t, a, "user:77")
			b.IO.To("user:77").Emit("live", 0)
			rec.WaitN(t, "live", 1, 5*time.Second)
			sid := c.ID
			waitFor(t, 5*time.Second, "A keeps the session in Redis", func() bool {
				return a.Client.Exists(context.Background(), "sio:session:"+c.PID).Val() == 1
			})

			if crash {
				_ = a.Client.Close() // nothing A does from now on reaches Redis
				a.IO.Close(nil)
			}
			sess := c.Session()
			_ = c.Close()
			waitFor(t, 5*time.Second, "A sees the client gone", func() bool { return !roomHas(a, "user:77") })

			for i := 1; i <= 5; i++ {
				b.IO.To("user:77").Emit("missed", i)
			}
			b.IO.To("user:77").Emit("missed-binary", []byte{7, 7})
			b.IO.To(socket.Room(sid)).Emit("missed-private", "to the old socket id")
			b.IO.Except("user:77").Emit("not-for-77")
			b.IO.Emit("sentinel")
			observer.WaitN(t, "sentinel", 1, 5*time.Second)

			c2, rec2 := recoverable(t, b, "77", sess)
			if !c2.Recovered || c2.ID != sid {
				t.Fatalf("recovered=%v id=%s (was %s)", c2.Recovered, c2.ID, sid)
			}
			rec2.WaitN(t, "sentinel", 1, 5*time.Second)
			b.IO.To("user:77").Emit("after", 1)
			rec2.WaitN(t, "after", 1, 5*time.Second)
			var names []string
			var offsets []string
			for _, e := range rec2.All() {
				names = append(names, e.Name)
				off, _ := e.Args[len(e.Args)-1].(string)
				offsets = append(offsets, off)
			}
			want := "[missed missed missed missed missed missed-binary missed-private sentinel after]"
			if fmt.Sprint(names) != want {
				t.Errorf("events after recovery:\n got %v\nwant %s", names, want)
			}
			for i := 1; i < len(offsets); i++ {
				if offsets[i] == "" || offsets[i] <= offsets[i-1] && len(offsets[i]) == len(offsets[i-1]) {
					t.Errorf("offsets not increasing: %v", offsets)
					break
				}
			}
			if b.Adapter.Status().Restored != 1 {
				t.Errorf("B status: %+v", b.Adapter.Status())
			}
		})
	}
}

// A client that had received no event (socket.io-client then sends its
// pid without an offset) is restored from where its socket connected.
func TestStreamsRecoveryWithoutOffset(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	b := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	_, observer := join(t, b, "observer")
	_, seenByA := join(t, a, "observer-a")
	b.IO.To("user:5").Emit("before-it-connected")
	b.IO.Emit("sentinel-0")
	seenByA.WaitN(t, "sentinel-0", 1, 5*time.Second) // A has read it: not for the client below
	c, _ := recoverable(t, a, "5", nil)
	settled(t, a, "user:5")
	waitFor(t, 5*time.Second, "session kept", func() bool {
		return a.Client.Exists(context.Background(), "sio:session:"+c.PID).Val() == 1
	})
	sess := c.Session()
	if sess.Offset != "" {
		t.Fatalf("offset %q: the client got an event", sess.Offset)
	}
	_ = c.Close()
	waitFor(t, 5*time.Second, "A sees the client gone", func() bool { return !roomHas(a, "user:5") })
	b.IO.To("user:5").Emit("while-away", 1)
	b.IO.Emit("sentinel")
	observer.WaitN(t, "sentinel", 1, 5*time.Second)
	c2, rec := recoverable(t, b, "5", sess)
	if !c2.Recovered {
		t.Fatal("not recovered")
	}
	rec.WaitN(t, "sentinel", 1, 5*time.Second)
	if got := fmt.Sprint(names(rec.All())); got != "[while-away sentinel]" {
		t.Errorf("events = %s", got)
	}
}

func names(es []sioclient.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}

// Many clients whose offsets are older than what a server has read (it
// started after they got their last event) are restored with one read of
// the stream between them, not one per client as in Node.
func TestStreamsRestoresShareOneRead(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	const n = 100
	var sessions []*sioclient.Session
	for i := range n {
		user := fmt.Sprint(i)
		c, rec := recoverable(t, a, user, nil)
		settled(t, a, "user:"+user)
		a.IO.To(socket.Room("user:"+user)).Emit("first", i)
		rec.WaitN(t, "first", 1, 5*time.Second)
		sessions = append(sessions, c.Session())
		_ = c.Close()
	}
	for i := range n {
		a.IO.To(socket.Room(fmt.Sprint("user:", i))).Emit("missed", i)
	}
	waitFor(t, 5*time.Second, "appended", func() bool { return a.Adapter.Status().Appended >= 2*n })

	b := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	var wg sync.WaitGroup
	recs := make([]*eventlog.Recorder, n)
	for i := range n {
		wg.Go(func() {
			c, rec := recoverable(t, b, fmt.Sprint(i), sessions[i])
			if !c.Recovered {
				t.Errorf("client %d not recovered", i)
			}
			recs[i] = rec
		})
	}
	wg.Wait()
	for i, rec := range recs {
		got := rec.WaitN(t, "missed", 1, 5*time.Second)
		if fmt.Sprint(got[0].Args[0]) != fmt.Sprint(i) {
			t.Errorf("client %d got %v", i, got[0].Args)
		}
	}
	st := b.Adapter.Status()
	if st.Restored != n || st.StreamRanges != 1 {
		t.Errorf("%d restored with %d stream reads (XRANGE/XREVRANGE), want %d with 1", st.Restored, st.StreamRanges, n)
	}
	t.Logf("%d restores on a fresh server: %d range reads, %d XREAD", n, st.StreamRanges, st.StreamReads)
}

// Redis going away loses nothing that it accepted: the reader resumes
// from the last id it read; after a restart with an empty dataset it reads
// the new stream from its start.
func TestStreamsSurviveRedisRestarts(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{adapter: streamsOpts(0)})
	_, rec := join(t, a, "1")
	em := redisadapter.NewEmitter(a.Client, "").Streams(redisadapter.StreamOptions{}).To("user:1")
	ctx := ctxT(t)
	if _, err := em.Emit(ctx, "before", 0); err != nil {
		t.Fatal(err)
	}
	rec.WaitN(t, "before", 1, 5*time.Second)

	if _, err := rs.Do(ctx, "SAVE"); err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	rs.Restart() // with its dataset
	waitFor(t, 10*time.Second, "emits accepted again", func() bool { _, err := em.Emit(ctx, "after-restart", 1); return err == nil })
	rec.WaitN(t, "after-restart", 1, 10*time.Second)

	if _, err := rs.Do(ctx, "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Do(ctx, "SAVE"); err != nil {
		t.Fatal(err)
	}
	rs.Stop()
	rs.Restart() // empty
	waitFor(t, 10*time.Second, "emits accepted by the empty Redis", func() bool { _, err := em.Emit(ctx, "after-empty", 2); return err == nil })
	rec.WaitN(t, "after-empty", 1, 10*time.Second)
	waitFor(t, 10*time.Second, "A reads the stream again", func() bool { return a.Adapter.Status().State == redisadapter.StateConnected })
	if n := len(rec.Named("after-empty")); n != 1 {
		t.Errorf("after-empty delivered %d times", n)
	}
}

// After Redis restarted without its data, a client whose last event came
// from the old stream is still restored, with what the new stream holds
// for it: the stream holds everything since it was created, and the client
// got nothing from it (its offset would be newer).
func TestStreamsRecoveryAfterRedisLostItsData(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	c, rec := recoverable(t, a, "9", nil)
	settled(t, a, "user:9")
	a.IO.To("user:9").Emit("old-era")
	rec.WaitN(t, "old-era", 1, 5*time.Second)
	key := "sio:session:" + c.PID

	rs.Stop()
	rs.Restart() // empty: no snapshot was taken
	waitFor(t, 10*time.Second, "A wrote the session again", func() bool {
		return a.Client.Exists(context.Background(), key).Val() == 1
	})
	sess := c.Session()
	_ = c.Close()
	waitFor(t, 5*time.Second, "A sees the client gone", func() bool { return !roomHas(a, "user:9") })
	b := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: streamsOpts(0)})
	_, observer := join(t, b, "observer")
	b.IO.To("user:9").Emit("new-era", 1)
	b.IO.Emit("sentinel")
	observer.WaitN(t, "sentinel", 1, 5*time.Second)

	c2, rec2 := recoverable(t, b, "9", sess)
	if !c2.Recovered {
		t.Fatalf("not recovered after Redis lost its data; B: %+v", b.Adapter.Status())
	}
	rec2.WaitN(t, "sentinel", 1, 5*time.Second)
	if got := fmt.Sprint(names(rec2.All())); got != "[new-era sentinel]" {
		t.Errorf("events = %s", got)
	}
}

// A client idle for longer than the stream holds (its offset was trimmed
// away: Node would start a new session) is restored when its session was
// written after its last event: it got everything meant for it up to
// there, and the stream holds what came after.
func TestStreamsIdleClientRestoredAfterTrim(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	opts := streamsOpts(100)
	opts.Stream.SessionRefresh = 100 * time.Millisecond
	a := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: opts})
	b := startGoServer(t, rs.URL(), serverOptions{recovery: true, adapter: opts})
	c, rec := recoverable(t, a, "1", nil)
	settled(t, a, "user:1")
	a.IO.To("user:1").Emit("last-one")
	off := rec.WaitN(t, "last-one", 1, 5*time.Second)[0]
	offset := off.Args[len(off.Args)-1].(string)
	for i := range 1000 { // trims the stream far past the client's offset
		a.IO.To("nobody").Emit("filler", i)
	}
	key := "sio:session:" + c.PID
	waitFor(t, 10*time.Second, "the offset trimmed and the session written since", func() bool {
		first, err := a.Client.XRangeN(context.Background(), "socket.io", "-", "+", 1).Result()
		if err != nil || len(first) == 0 || first[0].ID == offset {
			return false
		}
		sess := storedSession(t, a.Client, key)
		return sess["frutosLast"] == offset && sess["frutosSeen"] != offset && a.Adapter.Status().Appended >= 1001
	})
	sess := c.Session()
	_ = a.Client.Close() // a crash: nothing more reaches Redis from A
	a.IO.Close(nil)
	_ = c.Close()
	_, observer := join(t, b, "observer")
	b.IO.To("user:1").Emit("while-away")
	b.IO.Emit("sentinel")
	observer.WaitN(t, "sentinel", 1, 5*time.Second)
	c2, rec2 := recoverable(t, b, "1", sess)
	if !c2.Recovered {
		t.Fatalf("an idle client was not restored after its offset was trimmed: %+v", b.Adapter.Status())
	}
	rec2.WaitN(t, "sentinel", 1, 5*time.Second)
	if got := fmt.Sprint(names(rec2.All())); got != "[while-away sentinel]" {
		t.Errorf("events = %s", got)
	}
}
