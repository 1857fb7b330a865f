package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// testServer is an engine behind httptest, whose sessions echo every
// message and report how they ended.
type testServer struct {
	*Server
	url    string // http://127.0.0.1:port/engine.io/
	closed chan closed
	mu     sync.Mutex
	socks  []*Socket
}

type closed struct {
	sid    string
	reason Reason
}

func newTestServer(t *testing.T, opts Options) *testServer {
	t.Helper()
	ts := &testServer{closed: make(chan closed, 10000)}
	opts.OnClose = func(s *Socket, r Reason) { ts.closed <- closed{s.ID(), r} }
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	_ = srv.On("connection", func(args ...any) {
		s := args[0].(*Socket)
		ts.mu.Lock()
		ts.socks = append(ts.socks, s)
		ts.mu.Unlock()
		_ = s.On("data", func(args ...any) {
			switch b := args[0].(type) {
			case *types.StringBuffer:
				s.Write(types.NewStringBuffer(bytes.Clone(b.Bytes())), nil, nil)
			case types.BufferInterface:
				s.Write(types.NewBytesBuffer(bytes.Clone(b.Bytes())), nil, nil)
			}
		})
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", srv)
	hs := httptest.NewServer(mux)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	ts.url = hs.URL + "/engine.io/"
	return ts
}

func (ts *testServer) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(ts.url, "http") + "?EIO=4&transport=websocket" + query
}

func (ts *testServer) waitClosed(t *testing.T) closed {
	t.Helper()
	select {
	case c := <-ts.closed:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no session ended within 10 s")
		return closed{}
	}
}

func dialWS(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

func readText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("got a binary message %q, want text", b)
	}
	return string(b)
}

type openPacket struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

func parseOpen(t *testing.T, s string) openPacket {
	t.Helper()
	if !strings.HasPrefix(s, "0") {
		t.Fatalf("first packet %q is not an open packet", s)
	}
	var o openPacket
	if err := json.Unmarshal([]byte(s[1:]), &o); err != nil {
		t.Fatalf("open packet %q: %v", s, err)
	}
	return o
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestWebsocketSessionEchoes(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	c := dialWS(t, ts.wsURL(""))
	o := parseOpen(t, readText(t, c))
	if o.SID == "" || len(o.Upgrades) != 0 || o.PingInterval != 300 || o.PingTimeout != 200 || o.MaxPayload != 1_000_000 {
		t.Fatalf("open packet %+v", o)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte("4hello")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "4hello" {
		t.Fatalf("echo: got %q", got)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil || typ != websocket.BinaryMessage || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("binary echo: %v %v %v", typ, b, err)
	}
	if got := readText(t, c); got != "2" {
		t.Fatalf("want a ping, got %q", got)
	}
	if ts.Count() != 1 || ts.CountWebsocket() != 1 {
		t.Fatalf("count %d, websocket %d", ts.Count(), ts.CountWebsocket())
	}
	c.Close()
	if got := ts.waitClosed(t); got.sid != o.SID || got.reason != ReasonTransportClose {
		t.Fatalf("closed %+v, want %s transport_close", got, o.SID)
	}
}

func TestPollingUpgradeFlushesWhatWasQueued(t *testing.T) {
	ts := newTestServer(t, Options{})
	_, body := get(t, ts.url+"?EIO=4&transport=polling")
	o := parseOpen(t, body)
	if len(o.Upgrades) != 1 || o.Upgrades[0] != "websocket" {
		t.Fatalf("upgrades %v", o.Upgrades)
	}
	sess := ts.lookup(o.SID)
	poll := ts.url + "?EIO=4&transport=polling&sid=" + o.SID
	upgrades := make(chan string, 2)
	_ = sess.On("upgrade", func(args ...any) { upgrades <- args[0].(transports.Transport).Name() })

	// a poll waits; the probe ends it with a noop
	polled := make(chan string, 1)
	go func() {
		resp, err := http.Get(poll)
		if err != nil {
			polled <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		polled <- string(b)
	}()
	waitFor(t, func() bool { return sess.Transport().Writable() })
	c := dialWS(t, ts.wsURL("&sid="+o.SID))
	if err := c.WriteMessage(websocket.TextMessage, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, c); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if got := <-polled; got != "6" {
		t.Fatalf("the waiting poll got %q, want a noop", got)
	}
	// what is written before the upgrade completes is queued for polling...
	sess.Write(types.NewStringBufferString("queued-1"), nil, nil)
	sess.Write(types.NewStringBufferString("queued-2"), nil, nil)
	if err := c.WriteMessage(websocket.TextMessage, []byte("5")); err != nil {
		t.Fatal(err)
	}
	// ...and goes out on the websocket first, in order
	for _, want := range []string{"4queued-1", "4queued-2"} {
		if got := readText(t, c); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if code, _ := get(t, poll); code != http.StatusBadRequest {
		t.Fatalf("a poll after the upgrade: HTTP %d, want 400", code)
	}
	if sess.TransportName() != "websocket" || ts.CountWebsocket() != 1 {
		t.Fatalf("transport %s, on websocket %d", sess.TransportName(), ts.CountWebsocket())
	}
	// the session said so once, as Node's engine does ("upgrade")
	select {
	case name := <-upgrades:
		if name != "websocket" || len(upgrades) != 0 {
			t.Fatalf("upgrade event with %q (%d more)", name, len(upgrades))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no upgrade event")
	}
}

func TestRefusals(t *testing.T) {
	ts := newTestServer(t, Options{})
	for _, tc := range []struct {
		query  string
		method string
		status int
		code   int
	}{
		{"?EIO=3&transport=polling", "GET", 400, CodeUnsupportedVersion},
		{"?transport=polling", "GET", 400, CodeUnsupportedVersion},
		{"?EIO=4&transport=carrier-pigeon", "GET", 400, CodeUnknownTransport},
		{"?EIO=4&transport=polling", "POST", 400, CodeBadHandshakeMethod},
		{"?EIO=4&transport=polling&sid=nope", "GET", 400, CodeUnknownSID},
		{"?EIO=4&transport=websocket", "GET", 400, CodeBadRequest}, // no upgrade headers
	} {
		req, _ := http.NewRequest(tc.method, ts.url+tc.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Code != tc.code || body.Message != codeMessages[tc.code] {
			t.Errorf("%s %s: HTTP %d %+v, want %d code %d", tc.method, tc.query, resp.StatusCode, body, tc.status, tc.code)
		}
	}
}

func TestPingTimeoutEndsTheSession(t *testing.T) {
	ts := newTestServer(t, Options{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	c := dialWS(t, ts.wsURL(""))
	parseOpen(t, readText(t, c))
	if got := ts.waitClosed(t); got.reason != ReasonPingTimeout {
		t.Fatalf("reason %s, want ping_timeout", got.reason)
	}
}

// The EOF drops of the library's engine: the pong deadline was armed after
// the ping was written, in the timer's goroutine, so a pong read in the
// meantime cleared the previous deadline and the new one ended a healthy
// session one pingTimeout after a ping it had answered. Clients that
// answer every ping at once must never be dropped (pingInterval is longer
// than pingTimeout, as in the defaults, so a stale deadline fires).
func TestQuickPongsNeverTimeOut(t *testing.T) {
	const clients, cycles = 200, 6
	ts := newTestServer(t, Options{PingInterval: 150 * time.Millisecond, PingTimeout: 100 * time.Millisecond})
	stop := make(chan struct{})
	var reached, running sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		c := dialWS(t, ts.wsURL(""))
		reached.Add(1)
		running.Go(func() {
			pings := 0
			for {
				_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
				_, b, err := c.ReadMessage()
				select {
				case <-stop:
					return
				default:
				}
				if err != nil {
					errs <- err
					if pings < cycles {
						reached.Done()
					}
					return
				}
				if string(b) != "2" {
					continue
				}
				if err := c.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
					errs <- err
				}
				if pings++; pings == cycles {
					reached.Done()
				}
			}
		})
	}
	reached.Wait() // every client answered `cycles` pings, and still answers
	select {
	case c := <-ts.closed:
		t.Errorf("session %s ended (%s) while answering pings", c.sid, c.reason)
	default:
	}
	close(stop)
	for _, s := range ts.Sessions() {
		s.Disconnect(ReasonServerClose)
	}
	running.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a client that answered every ping was dropped: %v", err)
	}
}

func TestSlowConsumerIsDisconnected(t *testing.T) {
	const capBytes = 256 << 10
	ts := newTestServer(t, Options{MaxBuffered: capBytes})
	// a raw connection that never reads after the handshake
	conn, br := rawUpgrade(t, ts.url)
	defer conn.Close()
	_ = br
	waitFor(t, func() bool { return ts.Count() == 1 })
	sess := ts.Sessions()[0]
	msg := types.NewStringBufferString(strings.Repeat("x", 16<<10))
	maxSeen := 0
	for i := 0; i < 10_000 && sess.ReadyState() == "open"; i++ {
		sess.Write(msg.Clone(), nil, nil)
		maxSeen = max(maxSeen, sess.Buffered())
	}
	if got := ts.waitClosed(t); got.reason != ReasonWriteCap {
		t.Fatalf("reason %s, want write_cap", got.reason)
	}
	if maxSeen > capBytes+(17<<10) {
		t.Fatalf("%d bytes were buffered, more than the cap %d and one message", maxSeen, capBytes)
	}
}

// The Socket.IO client writes under its own lock, and its "close" handler
// takes that lock again: a write that ends the session must not run the
// close listeners inside the write (the Admin UI deadlocked so when a
// dashboard's connection broke).
func TestAWriteThatEndsTheSessionClosesOutsideTheWrite(t *testing.T) {
	ts := newTestServer(t, Options{MaxBuffered: 64 << 10})
	conn, _ := rawUpgrade(t, ts.url) // never reads
	defer conn.Close()
	waitFor(t, func() bool { return ts.Count() == 1 })
	sess := ts.Sessions()[0]
	var clientLock sync.Mutex
	heard := make(chan struct{})
	sess.On("close", func(...any) {
		clientLock.Lock() // the caller's lock, as the library's onclose
		clientLock.Unlock()
		close(heard)
	})
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		clientLock.Lock()
		defer clientLock.Unlock()
		msg := types.NewStringBufferString(strings.Repeat("x", 16<<10))
		for i := 0; i < 10_000 && sess.ReadyState() == "open"; i++ {
			sess.Write(msg.Clone(), nil, nil)
		}
	}()
	for _, ch := range []chan struct{}{wrote, heard} {
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			t.Fatal("the write that ended the session ran the close listeners under the caller's lock (deadlock)")
		}
	}
	if got := ts.waitClosed(t); got.reason != ReasonWriteCap {
		t.Fatalf("reason %s, want write_cap", got.reason)
	}
}

func TestIdleConnectionsHaveNoGoroutine(t *testing.T) {
	const n = 300
	ts := newTestServer(t, Options{})
	before := runtime.NumGoroutine()
	var conns []net.Conn
	for range n {
		c, _ := rawUpgrade(t, ts.url)
		conns = append(conns, c)
	}
	waitFor(t, func() bool { return ts.Count() == n })
	// The handshakes' goroutines (net/http's, which end after the hijack)
	// may take a moment to leave.
	var after int
	waitFor(t, func() bool {
		after = runtime.NumGoroutine()
		return after-before < n/10
	})
	for _, c := range conns {
		c.Close()
	}
	t.Logf("%d idle websockets: %d goroutines more than before", n, after-before)
}

func TestMessageLargerThanMaxPayloadClosesWith1009(t *testing.T) {
	ts := newTestServer(t, Options{MaxPayload: 1000})
	c := dialWS(t, ts.wsURL(""))
	parseOpen(t, readText(t, c))
	_ = c.WriteMessage(websocket.TextMessage, []byte("4"+strings.Repeat("y", 1001)))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("got %v, want close 1009", err)
	}
	ts.waitClosed(t)

	_, body := get(t, ts.url+"?EIO=4&transport=polling")
	o := parseOpen(t, body)
	if code, _ := post(t, ts.url+"?EIO=4&transport=polling&sid="+o.SID, "4"+strings.Repeat("y", 1000)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a POST over max_payload: HTTP %d, want 413", code)
	}
}

func TestFragmentsAndControlFrames(t *testing.T) {
	ts := newTestServer(t, Options{})
	conn, br := rawUpgrade(t, ts.url)
	defer conn.Close()
	// "4hel" + a ping between the fragments + "lo": one message "4hello"
	writeFrame(t, conn, 0x1, false, []byte("4hel"))
	writeFrame(t, conn, 0x9, true, []byte("p"))
	writeFrame(t, conn, 0x0, true, []byte("lo"))
	op, payload := readFrame(t, br)
	if op != 0xA || string(payload) != "p" {
		t.Fatalf("got op %x %q, want the pong of our ping", op, payload)
	}
	op, payload = readFrame(t, br)
	if op != 0x1 || string(payload) != "4hello" {
		t.Fatalf("got op %x %q, want the echo of the reassembled message", op, payload)
	}
	// invalid UTF-8 in a text frame: closed with 1007
	writeFrame(t, conn, 0x1, true, []byte{'4', 0xff, 0xfe})
	op, payload = readFrame(t, br)
	if op != 0x8 || binary.BigEndian.Uint16(payload) != 1007 {
		t.Fatalf("got op %x %v, want close 1007", op, payload)
	}
}

func TestHandoffServesAnAcceptedConnection(t *testing.T) {
	ts := newTestServer(t, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		// what the front door does: read the request head, then hand the
		// descriptor and those bytes over
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		head, err := readHead(conn)
		if err != nil {
			served <- err
			return
		}
		fd, err := detachFD(conn)
		if err != nil {
			served <- err
			return
		}
		ts.ServeHandoff(fd, head)
		served <- nil
	}()
	c := dialWS(t, "ws://"+ln.Addr().String()+"/engine.io/?EIO=4&transport=websocket")
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	o := parseOpen(t, readText(t, c))
	_ = c.WriteMessage(websocket.TextMessage, []byte("4handed"))
	if got := readText(t, c); got != "4handed" {
		t.Fatalf("echo %q", got)
	}
	if ts.lookup(o.SID) == nil {
		t.Fatal("the session is not registered")
	}
}

func TestDisconnectOnPollingWaitsForTheNextPoll(t *testing.T) {
	ts := newTestServer(t, Options{})
	_, body := get(t, ts.url+"?EIO=4&transport=polling")
	o := parseOpen(t, body)
	sess := ts.lookup(o.SID)
	sess.Write(types.NewStringBufferString("bye"), nil, nil)
	sess.Disconnect(ReasonDrain)
	if code, got := get(t, ts.url+"?EIO=4&transport=polling&sid="+o.SID); code != 200 || got != "4bye\x1e1" {
		t.Fatalf("the next poll: HTTP %d %q, want the queued message and a close packet", code, got)
	}
	if got := ts.waitClosed(t); got.reason != ReasonDrain {
		t.Fatalf("reason %s, want drain", got.reason)
	}
}

func TestBroadcastFrameIsBuiltOnce(t *testing.T) {
	var c frameCache
	k1 := types.NewStringBufferString(`42["news",1]`)
	k2 := types.NewStringBufferString(`42["news",1]`)
	a, b := c.get(k1), c.get(k1)
	if &a[0] != &b[0] {
		t.Fatal("the same broadcast got two frames")
	}
	if other := c.get(k2); &other[0] == &a[0] {
		t.Fatal("two broadcasts share a frame")
	}
	if want := messageFrame('4', []byte(`2["news",1]`), false); !bytes.Equal(a, want) {
		t.Fatalf("frame %q, want %q", a, want)
	}
}

// rawUpgrade opens a websocket session by hand, reads the 101 and the open
// packet, and returns the connection and its reader.
func rawUpgrade(t *testing.T, base string) (net.Conn, *bufio.Reader) {
	t.Helper()
	u := strings.TrimPrefix(base, "http://")
	host, path, _ := strings.Cut(u, "/")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	req := "GET /" + path + "?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if op, p := readFrame(t, br); op != 0x1 || p[0] != '0' {
		t.Fatalf("first frame %x %q", op, p)
	}
	return conn, br
}

// writeFrame writes a masked client frame.
func writeFrame(t *testing.T, w io.Writer, op byte, fin bool, payload []byte) {
	t.Helper()
	if err := writeFrameTo(w, op, fin, payload); err != nil {
		t.Fatal(err)
	}
}

// writeFrameTo writes a masked client frame (payload under 126 bytes).
func writeFrameTo(w io.Writer, op byte, fin bool, payload []byte) error {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{b0, 0x80 | byte(len(payload))}
	frame = append(frame, mask[:]...)
	for i, x := range payload {
		frame = append(frame, x^mask[i%4])
	}
	_, err := w.Write(frame)
	return err
}

// readFrame reads one unmasked server frame (payload under 64 KiB).
func readFrame(t *testing.T, br *bufio.Reader) (byte, []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	if n == 126 {
		var l [2]byte
		_, _ = io.ReadFull(br, l[:])
		n = int(binary.BigEndian.Uint16(l[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, p
}

// readHead reads an HTTP request head, byte by byte (nothing after it).
func readHead(r io.Reader) ([]byte, error) {
	var head []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		if _, err := r.Read(one); err != nil {
			return nil, err
		}
		head = append(head, one[0])
	}
	return head, nil
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10 s")
		case <-tick.C:
		}
	}
}
