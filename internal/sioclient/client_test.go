package sioclient_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// startWorker runs a real worker in this process; tokens are "sub|role".
func startWorker(t *testing.T, tweak func(*configs.Config)) (*cluster.Worker, string) {
	t.Helper()
	rs := redistest.Start(t)
	cfg := configs.Default()
	if tweak != nil {
		tweak(cfg)
	}
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	w, err := cluster.New(cluster.Options{Config: cfg, Redis: rc, Authenticate: func(tok string) (cluster.Identity, error) {
		sub, role, ok := strings.Cut(tok, "|")
		if !ok {
			return cluster.Identity{}, errors.New("bad token")
		}
		return cluster.Identity{Sub: sub, Role: role}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: w.Handler()}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		_ = srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.Close(ctx)
		_ = rc.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !w.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("worker not ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w, "http://" + l.Addr().String()
}

func TestTransports(t *testing.T) {
	w, url := startWorker(t, nil)
	for _, tc := range []struct {
		name, transport string
		keepAlive       bool
	}{{"websocket", sioclient.Websocket, false}, {"polling", sioclient.Polling, false}, {"polling keep-alive", sioclient.Polling, true}} {
		tr := tc.transport
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			events := make(chan sioclient.Event, 10)
			c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: tr, KeepAlive: tc.keepAlive, Auth: map[string]any{"token": "7|student"},
				OnEvent: func(e sioclient.Event) { events <- e }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Transport() != tr || c.SID == "" || c.ID == "" {
				t.Fatalf("transport %q sid %q id %q", c.Transport(), c.SID, c.ID)
			}
			ack, err := c.EmitWithAck(ctx, "ping", 1)
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := ack[0].(map[string]any); m["pong"] != true {
				t.Fatalf("ping ack = %v", ack)
			}
			if err := w.EmitToUser("7", "hola", map[string]any{"n": 1}, "dos"); err != nil {
				t.Fatal(err)
			}
			if err := w.EmitToUser("7", "bin", []byte{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			e := waitEvent(t, events)
			// With connection state recovery on, the server appends its offset.
			if e.Name != "hola" || len(e.Args) < 2 || e.Args[1] != "dos" {
				t.Fatalf("event = %+v", e)
			}
			e = waitEvent(t, events)
			if b, _ := e.Args[0].([]byte); e.Name != "bin" || string(b) != "\x01\x02\x03" {
				t.Fatalf("binary event = %+v", e)
			}
		})
	}
}

func TestRawArgs(t *testing.T) {
	w, url := startWorker(t, func(c *configs.Config) { c.Recovery.Enabled = false }) // no offset argument
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := make(chan sioclient.Event, 10)
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, RawArgs: true, Auth: map[string]any{"token": "8|student"},
		OnEvent: func(e sioclient.Event) { events <- e }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = w.EmitToUser("8", "a", map[string]any{"q": 3})
	_ = w.EmitToUser("8", "b")
	if e := waitEvent(t, events); e.Name != "a" || e.Raw != `[{"q":3}]` || e.Args != nil {
		t.Fatalf("raw event = %+v", e)
	}
	if e := waitEvent(t, events); e.Name != "b" || e.Raw != `[]` {
		t.Fatalf("raw event without args = %+v", e)
	}
}

// A refused handshake is an *HTTPError with the engine's message, on both
// transports.
func TestHTTPError(t *testing.T) {
	_, url := startWorker(t, func(c *configs.Config) { c.CORS.Origins = []string{"https://ok.example"} })
	for _, tr := range []string{sioclient.Websocket, sioclient.Polling} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: tr, Auth: map[string]any{"token": "1|student"},
			Header: http.Header{"Origin": {"https://evil.example"}}})
		cancel()
		var he *sioclient.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusForbidden || he.Message != "Origin not allowed" || !strings.Contains(err.Error(), "403") {
			t.Errorf("%s: err = %v, want HTTP 403 Origin not allowed", tr, err)
		}
	}
}

func TestUnauthorizedPolling(t *testing.T) {
	_, url := startWorker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: sioclient.Polling, Auth: map[string]any{"token": "nope"}})
	var ce *sioclient.ConnectError
	if !errors.As(err, &ce) || ce.Message != "Unauthorized" {
		t.Fatalf("err = %v, want connect_error Unauthorized", err)
	}
}

// Close on a polling session ends it on the server too.
func TestPollingCloseEndsSession(t *testing.T) {
	w, url := startWorker(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: sioclient.Polling, Auth: map[string]any{"token": "3|student"},
		OnClose: func(err error) { closed <- err }})
	if err != nil {
		t.Fatal(err)
	}
	if n := w.Stats().Sockets; n != 1 {
		t.Fatalf("sockets = %d, want 1", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-closed
	deadline := time.Now().Add(5 * time.Second)
	for w.Stats().Sockets != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d sockets after Close", w.Stats().Sockets)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitEvent(t *testing.T, ch <-chan sioclient.Event) sioclient.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return sioclient.Event{}
	}
}

// A client that lost its connection asks for its session back with the
// pid and the offset of its last event, and gets what was sent meanwhile,
// on both argument paths.
func TestResumeRecoversMissedEvents(t *testing.T) {
	for _, raw := range []bool{true, false} {
		t.Run(map[bool]string{true: "raw", false: "decoded"}[raw], func(t *testing.T) {
			w, url := startWorker(t, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			events := make(chan sioclient.Event, 10)
			opts := sioclient.Options{URL: url, RawArgs: raw, Auth: map[string]any{"token": "9|student"},
				OnEvent: func(e sioclient.Event) { events <- e }}
			c, err := sioclient.Dial(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.PID == "" || c.Recovered {
				t.Fatalf("first connect: pid %q, recovered %v", c.PID, c.Recovered)
			}
			_ = w.EmitToUser("9", "before")
			if e := waitEvent(t, events); e.Name != "before" {
				t.Fatalf("event = %+v", e)
			}
			s := c.Session()
			if s == nil || s.Offset == "" {
				t.Fatalf("no offset recorded after an event: %+v", s)
			}
			_ = c.Close()
			// Resume once the server saw the drop, as a client's reconnection
			// delay makes sure of (a session is kept only once it ended).
			for deadline := time.Now().Add(10 * time.Second); w.Stats().Connections > 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the worker never saw the connection drop")
				}
			}
			_ = w.EmitToUser("9", "while_away")

			opts.Resume = s
			c2, err := sioclient.Dial(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			if !c2.Recovered || c2.PID != s.PID {
				t.Fatalf("resume: recovered %v, pid %q (was %q)", c2.Recovered, c2.PID, s.PID)
			}
			if e := waitEvent(t, events); e.Name != "while_away" {
				t.Fatalf("missed event = %+v", e)
			}
			if c2.Session().Offset == s.Offset {
				t.Error("the offset did not move with the recovered event")
			}
		})
	}
}
