package workerproto

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
