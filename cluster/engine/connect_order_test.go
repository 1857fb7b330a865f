package engine

import (
	"io"
	"strings"
	"testing"
	"time"

	eiopacket "github.com/zishang520/socket.io/parsers/engine/v3/packet"
	eio "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// connectEcho is a session whose client answers CONNECT with an event at
// once, inside the write of CONNECT: the earliest a client can.
type connectEcho struct {
	*Socket
}

func (c *connectEcho) Write(data io.Reader, opts *eiopacket.Options, fn eio.SendCallback) eio.Socket {
	if b, ok := data.(*types.StringBuffer); ok && strings.HasPrefix(b.String(), "0{") {
		c.Emit("data", types.NewStringBufferString(`2["hello"]`))
	}
	return c.Socket.Write(data, opts, fn)
}

// The library answered CONNECT (in the socket's task queue) before it
// registered the socket with its client: an event sent the moment CONNECT
// arrived (socket.io-client flushes what was emitted before connecting)
// could be read while the client did not know the socket yet, and the
// connection was closed for an "invalid state" (25 connects in 1,000 under
// -race in the worker's fuzz target). Patched in third_party (PATCHES.md,
// "CONNECT after registration"); this test makes the worst order certain.
func TestEventRightAfterConnectIsServed(t *testing.T) {
	srv, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	io := socket.NewServer(nil, nil)
	io.Bind(srv)
	defer io.Close(nil)
	served := make(chan struct{}, 1)
	io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		s.On("hello", func(...any) { served <- struct{}{} })
	})
	sess := newSocket(srv, NewID(), []byte("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: test\r\n\r\n"), "127.0.0.1:1")
	sess.poll = &polling{}
	srv.register(sess)
	conn := &connectEcho{Socket: sess}
	srv.Emit("connection", conn)
	conn.Emit("data", types.NewStringBufferString("0"))
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatalf("the event sent with CONNECT was not served (session %s, reason %q)", sess.ReadyState(), sess.Reason())
	}
}
