// Package microbench isolates the user-space cost of sending one small
// frame (the syscall excluded): nbio's websocket.Conn.WriteMessage versus
// the epoll probe's framing + per-connection mutex. Run:
//
//	go test -run x -bench . -benchmem ./microbench
package microbench

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lesismal/nbio/nbhttp/websocket"
)

var payload = []byte(`42["msg","hello from the probe"]`)

// discard is a net.Conn whose Write does nothing (no syscall).
type discard struct{ net.Conn }

func (discard) Write(b []byte) (int, error)      { return len(b), nil }
func (discard) Close() error                     { return nil }
func (discard) SetReadDeadline(time.Time) error  { return nil }
func (discard) SetWriteDeadline(time.Time) error { return nil }

func BenchmarkNbioWriteMessage(b *testing.B) {
	u := websocket.NewUpgrader()
	c := websocket.NewServerConn(u, discard{}, "", false, false)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := c.WriteMessage(websocket.TextMessage, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// the epoll probe's emit path minus unix.Write
type conn struct {
	mu    sync.Mutex
	state uint8
	out   []byte
}

var sink int

func (c *conn) write(p []byte) {
	c.mu.Lock()
	if c.state == 2 {
		c.mu.Unlock()
		return
	}
	if len(c.out) > 0 {
		c.out = append(c.out, p...)
		c.mu.Unlock()
		return
	}
	sink += len(p) // stands for unix.Write(fd, p)
	c.mu.Unlock()
}

func BenchmarkOwnFrameWrite(b *testing.B) {
	c := &conn{}
	var buf [128]byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf[0], buf[1] = 0x81, byte(len(payload))
		m := copy(buf[2:], payload)
		c.write(buf[:2+m])
	}
}
