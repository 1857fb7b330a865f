// epollsrv: gobwas/ws for the handshake and frame helpers + our own epoll
// loops (golang.org/x/sys/unix). No goroutine per connection: a connection
// is a raw non-blocking fd registered in one of N epoll loops
// (EPOLLIN|EPOLLRDHUP, level-triggered). Writes go straight to unix.Write;
// what the kernel does not take is buffered per connection and EPOLLOUT is
// armed until it drains.
//
// Connections arrive as a raw fd plus the bytes already read from it
// (Adopt), either from the simulated front door (-accept=handoff, SCM_RIGHTS)
// or from a plain accept loop (-accept=direct, no pre-read bytes: the
// handshake is then read by the epoll loop).
package main

import (
	"bytes"
	"errors"
	"flag"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"probe/internal/frontdoor"
	"probe/internal/stats"
)

const (
	stateHandshake = iota
	stateOpen
	stateClosed

	maxPending = 4 << 20 // per-connection write backlog before we drop it
	maxHead    = 16 << 10
	evRead     = unix.EPOLLIN | unix.EPOLLRDHUP
)

var (
	errClosed = errors.New("closed")
	park      string
)

type conn struct {
	mu    sync.Mutex // guards fd use, state, out (writers: any goroutine)
	fd    int
	state uint8
	armed bool   // EPOLLOUT registered
	loop  *loop  // owning epoll loop
	in    []byte // partial handshake / partial frame; only the loop touches it
	out   []byte // bytes the kernel did not take yet
	idx   int    // position in the registry (guarded by reg.mu)
}

type loop struct {
	epfd int
	f    *os.File // -park=netpoll: the epoll fd registered in Go's netpoller
}

var (
	loops []*loop
	fdtab []atomic.Pointer[conn]

	reg struct {
		mu   sync.Mutex
		list []*conn
	}
	openFrame []byte
	pongFrame []byte
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8201", "websocket listen address")
	ctl := flag.String("ctl", "127.0.0.1:9201", "control/stats listen address")
	accept := flag.String("accept", "handoff", "handoff (front door + SCM_RIGHTS + pre-read head) or direct (dup fd, handshake read by epoll loop)")
	nloops := flag.Int("loops", runtime.GOMAXPROCS(0), "epoll loop goroutines")
	flag.StringVar(&park, "park", "syscall", "how an idle loop waits: syscall (blocking epoll_wait, holds an OS thread) or netpoll (the epoll fd is parked in Go's netpoller, epoll_wait(0) on readiness)")
	flag.Parse()

	nofile := stats.RaiseNofile()
	fdtab = make([]atomic.Pointer[conn], nofile+16)
	openFrame = compile([]byte(stats.OpenPacket))
	pongFrame = compile([]byte("3"))

	for i := 0; i < *nloops; i++ {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			log.Fatal(err)
		}
		l := &loop{epfd: epfd}
		loops = append(loops, l)
		go l.run()
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	switch *accept {
	case "handoff":
		if err := frontdoor.Start(ln, Adopt); err != nil {
			log.Fatal(err)
		}
	case "direct":
		frontdoor.DupListener(ln, Adopt)
	default:
		log.Fatalf("unknown -accept %q", *accept)
	}
	stats.Serve(*ctl, stats.Hooks{Conns: count, Broadcast: broadcast, Emits: emits})
	log.Printf("epollsrv ws=%s ctl=%s accept=%s loops=%d park=%s nofile=%d", *addr, *ctl, *accept, *nloops, park, nofile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

// compile builds a server (unmasked) text frame.
func compile(payload []byte) []byte {
	b, err := ws.CompileFrame(ws.NewTextFrame(payload))
	if err != nil {
		panic(err)
	}
	return b
}

// Adopt takes ownership of a connected TCP fd and the bytes already read
// from it (the HTTP request head, maybe more). This is the worker side of
// frutos' handoff: no net.Conn, no goroutine.
func Adopt(fd int, head []byte) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if fd >= len(fdtab) {
		unix.Close(fd)
		return
	}
	c := &conn{fd: fd, loop: loops[fd%len(loops)]}
	fdtab[fd].Store(c)
	// Replay the pre-read bytes before the fd is in epoll: nobody else can
	// touch c yet.
	if len(head) > 0 {
		c.onData(head)
		if c.state == stateClosed {
			return
		}
	}
	c.mu.Lock()
	ev := unix.EpollEvent{Events: evRead, Fd: int32(fd)}
	if len(c.out) > 0 { // the 101 did not fit: let the loop flush it
		ev.Events |= unix.EPOLLOUT
	}
	err := unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	c.armed = err == nil && len(c.out) > 0
	c.mu.Unlock()
	if err != nil {
		c.close()
	}
}

func (l *loop) run() {
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10) // shared read buffer of this loop
	wait := func() int {
		for {
			n, err := unix.EpollWait(l.epfd, events, -1)
			if err == nil {
				return n
			}
			if err != unix.EINTR {
				log.Fatalf("epoll_wait: %v", err)
			}
		}
	}
	if park == "netpoll" {
		// The epoll fd is itself pollable: let Go's netpoller tell us when
		// it has ready events, then collect them with a non-blocking
		// epoll_wait. No OS thread sits in a blocking syscall.
		if err := unix.SetNonblock(l.epfd, true); err != nil {
			log.Fatal(err)
		}
		l.f = os.NewFile(uintptr(l.epfd), "epoll")
		rc, err := l.f.SyscallConn()
		if err != nil {
			log.Fatal(err)
		}
		wait = func() int {
			var n int
			err := rc.Read(func(uintptr) bool {
				var err error
				n, err = unix.EpollWait(l.epfd, events, 0)
				if err != nil {
					n = 0
				}
				return n > 0 // false: park until the epoll fd is readable
			})
			if err != nil {
				log.Fatalf("netpoll wait: %v", err)
			}
			return n
		}
	}
	for {
		n := wait()
		for i := 0; i < n; i++ {
			ev := &events[i]
			c := fdtab[ev.Fd].Load()
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				c.close()
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.flush()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
				c.readOnce(buf)
			}
		}
	}
}

// readOnce does one read (level-triggered: more data means another event).
func (c *conn) readOnce(buf []byte) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	n, err := unix.Read(c.fd, buf)
	c.mu.Unlock()
	if n == 0 && err == nil { // EOF
		c.close()
		return
	}
	if err != nil {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		c.close()
		return
	}
	c.onData(buf[:n])
}

// onData consumes bytes read from the socket (or replayed from the head).
// Only the owner (loop, or Adopt before registration) calls it.
func (c *conn) onData(data []byte) {
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	if c.state == stateHandshake {
		i := bytes.Index(data, []byte("\r\n\r\n"))
		if i < 0 {
			if len(data) > maxHead {
				c.close()
				return
			}
			c.keep(data)
			return
		}
		if !c.handshake(data[:i+4]) {
			c.close()
			return
		}
		data = data[i+4:]
	}
	rest, ok := c.frames(data)
	if !ok {
		c.close()
		return
	}
	c.keep(rest)
}

// keep stores the unconsumed tail (copied: data may alias the loop buffer).
func (c *conn) keep(rest []byte) {
	if len(rest) == 0 {
		c.in = nil
		return
	}
	c.in = append([]byte(nil), rest...)
}

var upgrader = ws.Upgrader{
	OnRequest: func(uri []byte) error {
		u := string(uri)
		if !strings.HasPrefix(u, "/socket.io/") || !strings.Contains(u, "EIO=4") || !strings.Contains(u, "transport=websocket") {
			return ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason("bad engine.io request"))
		}
		return nil
	},
}

type rw struct {
	*bytes.Reader
	*bytes.Buffer
}

func (x rw) Read(p []byte) (int, error)  { return x.Reader.Read(p) }
func (x rw) Write(p []byte) (int, error) { return x.Buffer.Write(p) }

// handshake runs gobwas' upgrader on the complete request head and sends the
// 101 response and the Engine.IO open packet in one write.
func (c *conn) handshake(head []byte) bool {
	var out bytes.Buffer
	out.Grow(256)
	_, err := upgrader.Upgrade(rw{bytes.NewReader(head), &out})
	if err != nil {
		_ = c.write(out.Bytes()) // gobwas wrote the error response
		return false
	}
	out.Write(openFrame)
	c.mu.Lock()
	c.state = stateOpen
	c.mu.Unlock()
	if c.write(out.Bytes()) != nil {
		return false
	}
	regAdd(c)
	return true
}

// frames parses complete client frames; returns the unconsumed tail.
func (c *conn) frames(b []byte) ([]byte, bool) {
	for len(b) >= 2 {
		fin := b[0]&0x80 != 0
		op := ws.OpCode(b[0] & 0x0f)
		masked := b[1]&0x80 != 0
		plen := int64(b[1] & 0x7f)
		h := 2
		switch plen {
		case 126:
			if len(b) < 4 {
				return b, true
			}
			plen = int64(b[2])<<8 | int64(b[3])
			h = 4
		case 127:
			if len(b) < 10 {
				return b, true
			}
			plen = 0
			for i := 2; i < 10; i++ {
				plen = plen<<8 | int64(b[i])
			}
			h = 10
		}
		if !masked || plen > 1_000_000 {
			return nil, false // clients must mask; maxPayload
		}
		if len(b) < h+4+int(plen) {
			return b, true
		}
		var mask [4]byte
		copy(mask[:], b[h:h+4])
		payload := b[h+4 : h+4+int(plen)]
		ws.Cipher(payload, mask, 0)
		b = b[h+4+int(plen):]
		switch op {
		case ws.OpText:
			if fin && len(payload) == 1 && payload[0] == '2' { // Engine.IO ping
				if c.write(pongFrame) != nil {
					return nil, false
				}
			}
		case ws.OpPing:
			f, _ := ws.CompileFrame(ws.NewPongFrame(payload))
			_ = c.write(f)
		case ws.OpClose:
			_ = c.write(ws.CompiledCloseNormalClosure)
			return nil, false
		}
	}
	return b, true
}

// write sends b now if it can, else queues the rest and arms EPOLLOUT.
// b is not retained.
func (c *conn) write(b []byte) error {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return errClosed
	}
	if len(c.out) > 0 {
		if len(c.out)+len(b) > maxPending {
			c.mu.Unlock()
			c.close()
			return errClosed
		}
		c.out = append(c.out, b...)
		c.mu.Unlock()
		return nil
	}
	n, err := unix.Write(c.fd, b)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		c.mu.Unlock()
		c.close()
		return err
	}
	if n < 0 {
		n = 0
	}
	if n < len(b) {
		c.out = append([]byte(nil), b[n:]...)
		c.arm(true)
		c.mu.Unlock()
		return errQueued
	}
	c.mu.Unlock()
	return nil
}

var errQueued = errors.New("queued") // not a failure: reported for stats only

// arm switches EPOLLOUT on or off (c.mu held). Only done after the fd is in
// epoll; before that (handshake in Adopt) the MOD fails harmlessly and the
// ADD that follows registers EPOLLIN only, so flush it there.
func (c *conn) arm(on bool) {
	if c.armed == on {
		return
	}
	ev := unix.EpollEvent{Events: evRead, Fd: int32(c.fd)}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev) == nil {
		c.armed = on
	}
}

func (c *conn) flush() {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			c.mu.Unlock()
			c.close()
			return
		}
		if n > 0 {
			c.out = c.out[n:]
		}
	}
	if len(c.out) == 0 {
		c.out = nil
		c.arm(false)
	}
	c.mu.Unlock()
}

func (c *conn) close() {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	wasOpen := c.state == stateOpen
	c.state = stateClosed
	_ = unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	fdtab[c.fd].Store(nil)
	unix.Close(c.fd)
	c.out, c.in = nil, nil
	c.mu.Unlock()
	if wasOpen {
		regDel(c)
	}
}

func regAdd(c *conn) {
	reg.mu.Lock()
	c.idx = len(reg.list)
	reg.list = append(reg.list, c)
	reg.mu.Unlock()
}

func regDel(c *conn) {
	reg.mu.Lock()
	i := c.idx
	if i >= 0 && i < len(reg.list) && reg.list[i] == c {
		last := len(reg.list) - 1
		reg.list[i] = reg.list[last]
		reg.list[i].idx = i
		reg.list[last] = nil
		reg.list = reg.list[:last]
	}
	c.idx = -1
	reg.mu.Unlock()
}

func count() int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return len(reg.list)
}

func snapshot() []*conn {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]*conn(nil), reg.list...)
}

// broadcast writes one prebuilt frame to every open connection.
func broadcast(n int) stats.BroadcastResult {
	frame := compile(stats.BroadcastPayload(n))
	list := snapshot()
	res := stats.BroadcastResult{Size: len(frame), Payload: n, Conns: len(list)}
	cpu0, user0 := stats.CPUNow(), stats.CPUUserNow()
	t0 := time.Now()
	res.StartUnixNs = t0.UnixNano()
	for _, c := range list {
		switch err := c.write(frame); err {
		case nil:
			res.Written += int64(len(frame))
		case errQueued:
			res.Written += int64(len(frame))
			res.Queued++
		default:
			res.Errors++
		}
	}
	res.LoopNanos = time.Since(t0).Nanoseconds()
	res.CPUMicros = stats.CPUNow() - cpu0
	res.UserMicros = stats.CPUUserNow() - user0
	return res
}

// emits writes count single frames, each built for its emit (header +
// payload into a stack buffer, as a real emit would), to random connections.
func emits(count int) stats.EmitsResult {
	list := snapshot()
	res := stats.EmitsResult{Count: count}
	if len(list) == 0 {
		return res
	}
	cpu0, user0 := stats.CPUNow(), stats.CPUUserNow()
	t0 := time.Now()
	var buf [128]byte
	for i := 0; i < count; i++ {
		c := list[rand.IntN(len(list))]
		p := stats.EmitPayload
		buf[0] = 0x81
		buf[1] = byte(len(p)) // < 126
		m := copy(buf[2:], p)
		switch err := c.write(buf[:2+m]); err {
		case nil, errQueued:
			res.Written += int64(2 + m)
		default:
			res.Errors++
		}
	}
	res.Nanos = time.Since(t0).Nanoseconds()
	res.CPUMicros = stats.CPUNow() - cpu0
	res.UserMicros = stats.CPUUserNow() - user0
	res.PerEmitUs = float64(res.CPUMicros) / float64(count)
	res.UserPerEmitUs = float64(res.UserMicros) / float64(count)
	res.PerSecond = float64(count) / (float64(res.Nanos) / 1e9)
	return res
}
