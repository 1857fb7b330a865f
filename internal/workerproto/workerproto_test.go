package workerproto

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// What the daemon writes, the worker reads back the same.
func TestSpecRoundTripsThroughArgs(t *testing.T) {
	for _, s := range []Spec{
		{},
		Supervised("/home/u/.frutos/run/4242", 3, 17),
		{ID: 7, Listen: "127.0.0.1:3001", Admin: "127.0.0.1:9101", RedisURL: "redis://:p%40ss@10.0.0.5:6379/2?dial_timeout=3s"},
		{ID: 0, Tag: "t1", Listen: "[::1]:0"},
		// values a flag parser could take for flags or split
		{ID: 12, Tag: "w12g1", Socket: "/tmp/with space/-dash=eq.sock", Handoff: "-starts-with-dash", Admin: "--admin"},
		{ID: -1, RedisURL: "redis://h:1/0?a=b&c=d"},
	} {
		got, err := ParseArgs(s.Args())
		if err != nil {
			t.Fatalf("%+v: ParseArgs(%q): %v", s, s.Args(), err)
		}
		if got != s {
			t.Errorf("round trip of %+v through %q gave %+v", s, s.Args(), got)
		}
	}
}

// The daemon's command line is what it has always been (tests and
// operators read /proc/<pid>/cmdline).
func TestSupervisedArgs(t *testing.T) {
	got := Supervised("/h/run/9", 2, 5).Args()
	want := []string{"--id", "2", "--tag", "w2g5", "--socket", "/h/run/9/w2g5.sock", "--handoff", "/h/run/9/w2g5.handoff"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Args() = %q, want %q", got, want)
	}
	if d := RunDir("/h", 9); d != "/h/run/9" || filepath.Dir(d) != RunRoot("/h") {
		t.Fatalf("RunDir = %q", d)
	}
}

func TestParseArgsRefusesBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--id", "two"}, "invalid argument"},
		{[]string{"--id"}, "needs an argument"},
		{[]string{"--bogus", "1"}, "unknown flag"},
		{[]string{"--socket", "/s", "extra"}, "takes no arguments"},
		{[]string{"--tag", "w1.g1"}, "session prefix"},
		{[]string{"--tag", "w1234567890g1"}, "at most 11"},
		{[]string{"--tag", "wé"}, "session prefix"},
		{[]string{"--tag", "a b"}, "session prefix"},
	} {
		if _, err := ParseArgs(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q) = %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}

func TestTags(t *testing.T) {
	for _, tc := range []struct{ id, gen int }{{0, 1}, {3, 17}, {99, 999999}, {12345, 1}} {
		tag := Tag(tc.id, tc.gen)
		if err := CheckTag(tag); err != nil {
			t.Errorf("Tag(%d, %d) = %q is refused: %v", tc.id, tc.gen, tag, err)
		}
	}
	if Tag(1, 2) == Tag(12, 2) || Tag(1, 22) == Tag(12, 2) {
		t.Fatal("two workers share a tag")
	}
	for _, ok := range []string{"", "t1", "A-z_09", "w0g1", "12345678901"} {
		if err := CheckTag(ok); err != nil {
			t.Errorf("CheckTag(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"123456789012", "w0.g1", "w0/g1", "w0 g1", "w0g1\n", "ü"} {
		if err := CheckTag(bad); err == nil {
			t.Errorf("CheckTag(%q) accepted it", bad)
		}
	}
}

// Ids as the engine makes them (base64url, 20 characters) and odd ones.
func TestSessionIDRoundTripsThroughTagOf(t *testing.T) {
	for _, id := range []string{"AbC-123_xyzAbC-123_x", "x", "-", "_-_-"} {
		for _, tag := range []string{Tag(0, 1), Tag(41, 7), "t1", "12345678901"} {
			sid := SessionID(tag, id)
			got, ok := TagOf(sid)
			if !ok || got != tag {
				t.Errorf("TagOf(SessionID(%q, %q) = %q) = %q, %v", tag, id, sid, got, ok)
			}
			if !strings.HasSuffix(sid, id) {
				t.Errorf("SessionID(%q, %q) = %q lost the id", tag, id, sid)
			}
		}
	}
	if sid := SessionID("", "plain"); sid != "plain" {
		t.Fatalf("untagged SessionID = %q", sid)
	}
	// what the front door sees from clients that are not ours, or forged
	for _, sid := range []string{"plain", ""} {
		if tag, ok := TagOf(sid); ok {
			t.Errorf("TagOf(%q) = %q, true; want no tag", sid, tag)
		}
	}
	if tag, ok := TagOf(".x"); !ok || tag != "" {
		t.Errorf(`TagOf(".x") = %q, %v`, tag, ok)
	}
}

// A worker's whole report decodes into what the daemon reads.
func TestStatsReadByTheDaemon(t *testing.T) {
	type adapterStatus struct {
		State     string    `json:"state"`
		Since     time.Time `json:"since"`
		Published uint64    `json:"published"`
	}
	sent := Stats[adapterStatus]{PID: 42, Ready: true, Connections: 3, Transports: map[string]int{"polling": 1, "websocket": 2},
		Delivered: 9, Goroutines: 11, Redis: adapterStatus{State: "connected", Published: 5}}
	b, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	var got Polled
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.PID != 42 || !got.Ready || got.Connections != 3 || got.Transports["websocket"] != 2 || got.Delivered != 9 ||
		got.Goroutines != 11 || got.Redis.State != "connected" {
		t.Fatalf("decoded %+v from %s", got, b)
	}
}

func TestClientReadsStatsOnThePrivateSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "wp") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := SocketPath(dir, Tag(1, 1))
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatsPath, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(Stats[map[string]any]{Ready: true, Connections: 2, Redis: map[string]any{"state": "degraded"}})
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()

	c := NewClient(sock)
	defer c.Close()
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Connections != 2 || st.Redis.State != "degraded" {
		t.Fatalf("stats %+v", st)
	}
	if _, err := NewClient(filepath.Join(dir, "gone.sock")).Stats(context.Background()); err == nil {
		t.Fatal("a worker that is gone answered")
	}
}

func TestUntilEOFEndsWhenTheDaemonIsGone(t *testing.T) {
	r, w := io.Pipe()
	ctx := UntilEOF(context.Background(), r)
	if _, err := w.Write([]byte("ignored")); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("ended while the daemon is there")
	}
	w.Close()
	<-ctx.Done()

	parent, cancel := context.WithCancel(context.Background())
	ctx = UntilEOF(parent, strings.NewReader(""))
	<-ctx.Done() // EOF at once
	cancel()

	held, daemon := io.Pipe()
	defer daemon.Close()
	parent, cancel = context.WithCancel(context.Background())
	ctx = UntilEOF(parent, held)
	cancel()
	<-ctx.Done() // the parent ends it too
}

func TestParseTagReadsTagsBack(t *testing.T) {
	for _, tc := range []struct{ id, gen int }{{0, 1}, {3, 17}, {99, 999999}, {12345, 1}} {
		id, gen, ok := ParseTag(Tag(tc.id, tc.gen))
		if !ok || id != tc.id || gen != tc.gen {
			t.Errorf("ParseTag(Tag(%d, %d)) = %d, %d, %v", tc.id, tc.gen, id, gen, ok)
		}
	}
	for _, bad := range []string{"", "t1", "w1", "wg1", "w1g", "w1g0", "w-1g2", "w01g2", "w1g02", "x1g2", "w1g2x", "w1g+2"} {
		if id, gen, ok := ParseTag(bad); ok {
			t.Errorf("ParseTag(%q) = %d, %d, true", bad, id, gen)
		}
	}
	if g := (Identity{ID: 4, Tag: Tag(4, 9)}).Generation(); g != 9 {
		t.Errorf("Generation = %d", g)
	}
	if g := (Identity{ID: 5, Tag: Tag(4, 9)}).Generation(); g != 0 {
		t.Errorf("Generation of a tag of another id = %d", g)
	}
}

// leaseServer is a worker's private socket that serves leases the way
// cluster does: each one held until the daemon lets go.
type leaseServer struct {
	sock  string
	held  chan *HeldLease
	ended chan struct{}
	logs  chan [2]*os.File
}

func serveLeases(t *testing.T, self Identity) *leaseServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "wl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ls := &leaseServer{sock: SocketPath(dir, Tag(1, 1)), held: make(chan *HeldLease, 4), ended: make(chan struct{}, 4),
		logs: make(chan [2]*os.File, 4)}
	ln, err := net.Listen("unix", ls.sock)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LeasePath, func(w http.ResponseWriter, r *http.Request) {
		h, err := AcceptLease(w, r, self)
		if err != nil {
			return
		}
		ls.held <- h
		h.Hold(func(out, errw *os.File) { ls.logs <- [2]*os.File{out, errw} })
		ls.ended <- struct{}{}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ls
}

// A daemon leases a worker: it learns who serves the socket from the
// kernel before it asks, gets the identity, hands over log pipes, and the
// worker sees the lease end when the daemon lets go.
func TestLeaseRoundTrip(t *testing.T) {
	self := Identity{PID: os.Getpid(), ID: 1, Tag: Tag(1, 1), Socket: "/s", Handoff: "/h", Started: time.Now().UTC().Truncate(time.Millisecond)}
	ls := serveLeases(t, self)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var peer int
	l, err := DialLease(ctx, ls.sock, func(pid int) error { peer = pid; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if peer != os.Getpid() || l.PeerPID() != peer {
		t.Errorf("peer pid %d, want %d", peer, os.Getpid())
	}
	if got := l.Identity(); !reflect.DeepEqual(got, self) {
		t.Errorf("identity %+v, want %+v", got, self)
	}
	held := <-ls.held
	if held.DaemonPID != os.Getpid() {
		t.Errorf("the worker sees daemon pid %d", held.DaemonPID)
	}

	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	if err := l.SendLogs(outW, errW); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	got := <-ls.logs
	for i, pair := range []struct {
		w *os.File
		r *os.File
	}{{got[0], outR}, {got[1], errR}} {
		if _, err := pair.w.Write([]byte("line\n")); err != nil {
			t.Fatal(err)
		}
		pair.w.Close()
		b, _ := io.ReadAll(pair.r)
		if string(b) != "line\n" {
			t.Errorf("stream %d: the daemon read %q", i, b)
		}
	}

	select {
	case <-ls.ended:
		t.Fatal("the lease ended while the daemon holds it")
	default:
	}
	l.Close()
	select {
	case <-ls.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not see the daemon let go")
	}
}

func TestLeaseRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// a worker that lies about its pid
	liar := serveLeases(t, Identity{PID: os.Getpid() + 1, ID: 1, Tag: Tag(1, 1)})
	if _, err := DialLease(ctx, liar.sock, nil); err == nil || !strings.Contains(err.Error(), "served by pid") {
		t.Errorf("a worker answering for another pid: %v", err)
	}
	// the daemon's check fails before anything is asked
	ls := serveLeases(t, Identity{PID: os.Getpid()})
	if _, err := DialLease(ctx, ls.sock, func(int) error { return errors.New("no pidfd") }); err == nil || !strings.Contains(err.Error(), "no pidfd") {
		t.Errorf("onPeer's error: %v", err)
	}
	select {
	case <-ls.held:
		t.Error("the worker was asked although onPeer failed")
	default:
	}
	// a stale socket file: nobody serves it
	dir := t.TempDir()
	stale := filepath.Join(dir, "w0g1.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := DialLease(ctx, stale, nil); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("stale socket: %v, want ECONNREFUSED", err)
	}
	if _, err := DialLease(ctx, filepath.Join(dir, "gone.sock"), nil); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing socket: %v, want ENOENT", err)
	}
	// a request that is not a lease
	rec := httptest.NewRecorder()
	if _, err := AcceptLease(rec, httptest.NewRequest("GET", LeasePath, nil), Identity{}); err == nil || rec.Code != http.StatusBadRequest {
		t.Errorf("plain GET: %v, HTTP %d", err, rec.Code)
	}
}

// The process check reads the kernel's view: this test binary is no worker.
func TestCheckProcessRefusesOtherProcesses(t *testing.T) {
	err := CheckProcess(os.Getpid(), Identity{PID: os.Getpid(), ID: 0, Tag: Tag(0, 1)})
	if err == nil || !strings.Contains(err.Error(), "not a frutos worker") {
		t.Errorf("CheckProcess(self) = %v", err)
	}
	if err := CheckProcess(1<<22+12345, Identity{}); err == nil {
		t.Error("CheckProcess of a pid that does not exist passed")
	}
}
