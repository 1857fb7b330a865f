// Package handoff passes accepted TCP connections from one process to
// another over a unix seqpacket socket (SCM_RIGHTS), together with the bytes
// the sender already read from them. The front door uses it to give a
// websocket upgrade to the worker that owns the session: from then on the
// worker talks to the client directly, with no relay in between.
package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxHead bounds the bytes sent along with a connection (request head plus
// what was buffered after it).
const MaxHead = 64 << 10

// Sender hands connections to one receiver.
type Sender struct {
	mu   sync.Mutex
	conn *net.UnixConn
}

// Dial connects to a receiver's socket.
func Dial(path string) (*Sender, error) {
	c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("dial handoff socket %s: %w", path, err)
	}
	return &Sender{conn: c}, nil
}

// Send gives conn to the receiver with head, the bytes to replay before
// reading from conn. The caller still owns its copy of conn and should
// close it (the connection stays open through the receiver's copy).
func (s *Sender) Send(conn syscall.Conn, head []byte) error {
	if len(head) > MaxHead {
		return fmt.Errorf("handoff: %d bytes of head exceed %d", len(head), MaxHead)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var sendErr error
	err = raw.Control(func(fd uintptr) {
		rights := unix.UnixRights(int(fd))
		_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		var n, oobn int
		n, oobn, sendErr = s.conn.WriteMsgUnix(append([]byte{1}, head...), rights, nil)
		if sendErr == nil && (n != len(head)+1 || oobn != len(rights)) {
			sendErr = io.ErrShortWrite
		}
	})
	if err != nil {
		return err
	}
	return sendErr
}

// Close closes the sender's socket.
func (s *Sender) Close() error { return s.conn.Close() }

// Listener receives connections on a unix seqpacket socket. Take them as
// descriptors with AcceptFD, or as net.Conns with Accept (then it is a
// net.Listener, for an http.Server).
type Listener struct {
	l     *net.UnixListener
	conns chan Handed
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

// Handed is a connection handed over: its descriptor, owned by the
// receiver from then on, and the bytes the sender already read from it.
type Handed struct {
	FD   int
	Head []byte
}

// Listen creates the socket at path (mode 0600) and starts receiving.
func Listen(path string) (*Listener, error) {
	_ = os.Remove(path)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("listen on handoff socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	hl := &Listener{l: l, conns: make(chan Handed), done: make(chan struct{})}
	hl.wg.Add(1)
	go hl.acceptSenders()
	return hl, nil
}

func (hl *Listener) acceptSenders() {
	defer hl.wg.Done()
	for {
		c, err := hl.l.AcceptUnix()
		if err != nil {
			return
		}
		hl.wg.Add(1)
		go hl.receive(c)
	}
}

// receive reads handed-over connections from one sender until it closes.
func (hl *Listener) receive(c *net.UnixConn) {
	defer hl.wg.Done()
	defer c.Close()
	go func() { <-hl.done; c.Close() }()
	buf := make([]byte, MaxHead+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		h, err := fromMessage(buf[:n], oob[:oobn])
		if err != nil {
			continue // a malformed message: nothing to serve
		}
		select {
		case hl.conns <- h:
		case <-hl.done:
			unix.Close(h.FD)
			return
		}
	}
}

func fromMessage(msg, oob []byte) (Handed, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Handed{}, err
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) == 0 {
		return Handed{}, errors.New("handoff: message without a descriptor")
	}
	for _, extra := range fds[1:] {
		unix.Close(extra)
	}
	if len(msg) == 0 || msg[0] != 1 {
		unix.Close(fds[0])
		return Handed{}, errors.New("handoff: unknown message version")
	}
	unix.CloseOnExec(fds[0])
	return Handed{FD: fds[0], Head: append([]byte(nil), msg[1:]...)}, nil
}

// AcceptFD returns the next handed-over connection as a descriptor.
func (hl *Listener) AcceptFD() (Handed, error) {
	select {
	case h := <-hl.conns:
		return h, nil
	case <-hl.done:
		return Handed{}, net.ErrClosed
	}
}

// Accept returns the next handed-over connection as a net.Conn that
// replays the head before reading from the connection.
func (hl *Listener) Accept() (net.Conn, error) {
	for {
		h, err := hl.AcceptFD()
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(h.FD), "handoff")
		conn, err := net.FileConn(f)
		f.Close() // FileConn holds its own duplicate
		if err != nil {
			continue
		}
		return &prefixConn{Conn: conn, head: bytes.NewReader(h.Head)}, nil
	}
}

// Close stops receiving; connections already accepted are not affected.
func (hl *Listener) Close() error {
	hl.once.Do(func() {
		close(hl.done)
		hl.l.Close()
	})
	hl.wg.Wait()
	return nil
}

// Addr is the socket's address.
func (hl *Listener) Addr() net.Addr { return hl.l.Addr() }

// prefixConn replays the head before reading from the connection.
type prefixConn struct {
	net.Conn
	head *bytes.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.head.Len() > 0 {
		return c.head.Read(p)
	}
	return c.Conn.Read(p)
}
