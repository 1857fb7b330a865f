//go:build linux

package engine

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// wsHandler receives what a websocket connection reads. Both methods are
// called from the connection's reader goroutine, one call at a time.
type wsHandler interface {
	// wsMessage is a complete text or binary message. data aliases the
	// read buffer: it is valid only until wsMessage returns.
	wsMessage(c *wsConn, binary bool, data []byte)
	// wsClosed is called once, when the connection ended for any reason
	// (err says why; nil for a clean close by either side).
	wsClosed(c *wsConn, err error)
}

// Errors a websocket connection ends with.
var (
	errWriteCap      = errors.New("too many bytes waiting to be written (slow consumer)")
	errClosed        = errors.New("connection closed")
	errPeerClosed    = errors.New("the peer closed the connection")
	errMessageTooBig = errors.New("message larger than max_payload")
	errProtocol      = errors.New("websocket protocol error")
	errInvalidUTF8   = errors.New("text message is not valid UTF-8")
	errCloseTimeout  = errors.New("the peer did not answer our close frame")
)

// readBufSize is the size of the pooled buffers reads go into; a partial
// frame left at the end of a read is copied out (to the exact size) until
// the rest arrives.
const readBufSize = 16 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// closeGrace is how long a connection we close waits for the peer's close
// frame (or EOF) before its descriptor is closed anyway.
const closeGrace = 5 * time.Second

// wsConn is a server-side websocket connection on a non-blocking
// descriptor watched by the poller. Its idle cost is this struct: no
// goroutine, no buffer.
//
// Writes are made by whoever sends (no writer goroutine): a frame goes to
// the socket at once when nothing is waiting, and is queued otherwise; the
// queue is written with writev when the poller says the socket is writable
// again, so frames that pile up while a client is slow go out together. A
// queue above maxBuffered bytes ends the connection (errWriteCap).
type wsConn struct {
	fd          int
	p           *poller
	h           wsHandler
	maxPayload  int
	maxBuffered int

	// rwork counts readiness events not yet served; the goroutine that
	// moves it from 0 to 1 reads until it can move it back to 0.
	rwork atomic.Int32
	// Read state, touched only by the reader goroutine.
	partial []byte    // the start of a frame whose end has not arrived
	frag    []byte    // a fragmented message being reassembled
	fragOp  ws.OpCode // its opcode

	mu        sync.Mutex
	out       [][]byte // frames waiting for the socket (never modified: broadcast frames are shared)
	outOff    int      // bytes of out[0] already written
	outBytes  int
	reading   bool // a reader goroutine is using fd
	closing   bool // our close frame is queued: nothing else is sent
	closed    bool // the connection is over; fd is closed once no reader uses it
	fdClosed  bool
	ended     atomic.Bool // the handler was told (wsClosed)
	closeTime *time.Timer
}

func newWSConn(fd int, p *poller, h wsHandler, maxPayload, maxBuffered int) *wsConn {
	return &wsConn{fd: fd, p: p, h: h, maxPayload: maxPayload, maxBuffered: maxBuffered}
}

// start registers the connection with the poller and serves the bytes that
// were read before it (after the upgrade request), if any.
func (c *wsConn) start(early []byte) error {
	if len(early) > 0 {
		c.partial = append([]byte(nil), early...)
	}
	if err := c.p.add(c); err != nil {
		return err
	}
	if len(early) > 0 {
		c.readable()
	}
	return nil
}

// readable is the poller saying the descriptor has input (or hung up).
func (c *wsConn) readable() {
	if c.rwork.Add(1) == 1 {
		go c.readLoop()
	}
}

func (c *wsConn) readLoop() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.reading = true
	c.mu.Unlock()
	defer c.releaseRead()
	for {
		n := c.rwork.Load()
		if err := c.readAvailable(); err != nil {
			c.fail(err)
			return
		}
		if c.rwork.CompareAndSwap(n, 0) {
			return
		}
	}
}

func (c *wsConn) releaseRead() {
	c.mu.Lock()
	c.reading = false
	closeNow := c.closed && !c.fdClosed
	if closeNow {
		c.fdClosed = true
	}
	c.mu.Unlock()
	if closeNow {
		unix.Close(c.fd)
	}
}

// readAvailable reads until the socket has nothing more and hands every
// complete message to the handler.
func (c *wsConn) readAvailable() error {
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for {
		var data []byte
		if len(c.partial) > 0 && len(c.partial) >= len(buf)/2 {
			// a large frame: read straight into its own buffer
			data = c.partial
			if cap(data)-len(data) < readBufSize {
				grown := make([]byte, len(data), len(data)+readBufSize)
				copy(grown, data)
				data = grown
			}
			n, err := readFD(c.fd, data[len(data):cap(data)])
			if err != nil {
				return err
			}
			if n == 0 {
				c.partial = data
				return nil
			}
			data = data[:len(data)+n]
			c.partial = nil
			if err := c.consume(data); err != nil {
				return err
			}
			continue
		}
		off := copy(buf, c.partial)
		n, err := readFD(c.fd, buf[off:])
		if err != nil {
			return err
		}
		if n == 0 && off == 0 {
			return nil
		}
		c.partial = nil
		if err := c.consume(buf[:off+n]); err != nil {
			return err
		}
		if n < len(buf)-off {
			return nil // a short read: the socket is empty for now
		}
	}
}

// readFD reads what is there: n == 0 with a nil error means nothing now
// (EAGAIN); the peer's EOF is errPeerClosed.
func readFD(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		switch {
		case err == nil && n == 0:
			return 0, errPeerClosed
		case err == nil:
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		default:
			return 0, err
		}
	}
}

// consume parses the frames in data; an unfinished frame is kept (copied)
// for the next read.
func (c *wsConn) consume(data []byte) error {
	for len(data) > 0 {
		state := ws.StateServerSide
		if c.frag != nil {
			state |= ws.StateFragmented
		}
		h, hlen, err := parseHeader(data, state)
		if err != nil {
			return err
		}
		if hlen == 0 || int64(len(data)-hlen) < h.Length {
			if hlen > 0 && h.Length > int64(c.maxPayload) {
				return errMessageTooBig
			}
			c.partial = append(make([]byte, 0, len(data)), data...)
			return nil
		}
		payload := data[hlen : hlen+int(h.Length)]
		data = data[hlen+int(h.Length):]
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		if err := c.frame(h, payload); err != nil {
			return err
		}
	}
	return nil
}

// parseHeader reads a frame header at the start of b and checks it for a
// connection in state: hlen == 0 when b does not hold all of it yet.
func parseHeader(b []byte, state ws.State) (h ws.Header, hlen int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	h.Rsv = (b[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	hlen = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(b[2])<<8 | int64(b[3])
		hlen = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		for _, x := range b[2:10] {
			h.Length = h.Length<<8 | int64(x)
		}
		if h.Length < 0 {
			return h, 0, errProtocol
		}
		hlen = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < hlen+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[hlen:hlen+4])
		hlen += 4
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return h, 0, errProtocol
	}
	return h, hlen, nil
}

// frame handles one complete frame.
func (c *wsConn) frame(h ws.Header, payload []byte) error {
	switch h.OpCode {
	case ws.OpPing:
		return c.send(compileFrame(ws.OpPong, payload))
	case ws.OpPong:
		return nil
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(payload)
		if code.Empty() {
			code = ws.StatusNormalClosure
		}
		c.closeWith(ws.NewCloseFrameBody(code, ""))
		return errPeerClosed
	case ws.OpContinuation:
		if c.frag == nil {
			return errProtocol
		}
		if len(c.frag)+len(payload) > c.maxPayload {
			return errMessageTooBig
		}
		c.frag = append(c.frag, payload...)
		if !h.Fin {
			return nil
		}
		msg, op := c.frag, c.fragOp
		c.frag = nil
		return c.message(op, msg)
	default: // text or binary
		if c.frag != nil {
			return errProtocol
		}
		if int64(len(payload)) > int64(c.maxPayload) {
			return errMessageTooBig
		}
		if !h.Fin {
			c.frag = append(make([]byte, 0, len(payload)*2), payload...)
			c.fragOp = h.OpCode
			return nil
		}
		return c.message(h.OpCode, payload)
	}
}

func (c *wsConn) message(op ws.OpCode, data []byte) error {
	if op == ws.OpText && !utf8.Valid(data) {
		return errInvalidUTF8
	}
	c.h.wsMessage(c, op == ws.OpBinary, data)
	return nil
}

// send writes frame, or queues it behind what is waiting. It returns
// errWriteCap when the queue grew past maxBuffered, errClosed after a
// close, or the socket's error; the caller ends the connection.
func (c *wsConn) send(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return errClosed
	}
	return c.sendLocked(frame)
}

// sendBatch is send for several frames, in one system call when the
// socket takes them.
func (c *wsConn) sendBatch(frames [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.closing {
		return errClosed
	}
	waiting := len(c.out) > 0 // EPOLLOUT will flush
	c.out = append(c.out, frames...)
	for _, f := range frames {
		c.outBytes += len(f)
	}
	if waiting {
		return c.capCheck()
	}
	return c.flushLocked()
}

func (c *wsConn) sendLocked(frame []byte) error {
	if len(c.out) > 0 {
		c.out = append(c.out, frame)
		c.outBytes += len(frame)
		return c.capCheck()
	}
	n, err := writeFD(c.fd, frame)
	if err != nil {
		return err
	}
	if n == len(frame) {
		return nil
	}
	c.out = append(c.out, frame)
	c.outOff = n
	c.outBytes = len(frame) - n
	return c.flushLocked() // until EAGAIN, so the kernel reports writability
}

func (c *wsConn) capCheck() error {
	if c.maxBuffered > 0 && c.outBytes > c.maxBuffered {
		return errWriteCap
	}
	return nil
}

// writable is the poller saying the socket takes bytes again.
func (c *wsConn) writable() {
	c.mu.Lock()
	if c.closed || len(c.out) == 0 {
		c.mu.Unlock()
		return
	}
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		go c.fail(err)
	}
}

// flushLocked writes the queue until it is empty or the socket is full.
func (c *wsConn) flushLocked() error {
	var iov [16][]byte
	for len(c.out) > 0 {
		vec := iov[:0]
		vec = append(vec, c.out[0][c.outOff:])
		for _, f := range c.out[1:] {
			if len(vec) == len(iov) {
				break
			}
			vec = append(vec, f)
		}
		n, err := writevFD(c.fd, vec)
		if err != nil {
			return err
		}
		if n == 0 {
			return c.capCheck()
		}
		c.outBytes -= n
		for n > 0 {
			left := len(c.out[0]) - c.outOff
			if n < left {
				c.outOff += n
				break
			}
			n -= left
			c.out[0] = nil
			c.out = c.out[1:]
			c.outOff = 0
		}
	}
	c.out = nil // drop the grown backing array of a burst
	if c.closing {
		_ = unix.Shutdown(c.fd, unix.SHUT_WR)
	}
	return nil
}

// writeFD writes what the socket takes: n < len(b) with a nil error means
// it is full (EAGAIN).
func writeFD(fd int, b []byte) (int, error) {
	return retryWrite(func() (int, error) { return unix.Write(fd, b) })
}

func writevFD(fd int, vec [][]byte) (int, error) {
	if len(vec) == 1 {
		return writeFD(fd, vec[0])
	}
	return retryWrite(func() (int, error) { return unix.Writev(fd, vec) })
}

// retryWrite runs a non-blocking write again after EINTR; a full socket
// buffer (EAGAIN) is 0 bytes written, not an error.
func retryWrite(write func() (int, error)) (int, error) {
	for {
		n, err := write()
		switch {
		case err == nil:
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		default:
			return 0, err
		}
	}
}

// closeWith ends the connection gracefully: what is queued goes first,
// then a close frame with body, then the write side is shut; the
// descriptor is closed when the peer answers (EOF) or after closeGrace.
// The handler is told when the connection is over, as for any end.
func (c *wsConn) closeWith(body []byte) {
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.out = append(c.out, compileFrame(ws.OpClose, body))
	err := c.flushLocked()
	c.closeTime = time.AfterFunc(closeGrace, func() { c.fail(errCloseTimeout) })
	c.mu.Unlock()
	if err != nil {
		c.fail(err)
	}
}

// fail ends the connection after an error (or the peer's close) and tells
// the handler, once.
func (c *wsConn) fail(err error) {
	switch {
	case errors.Is(err, errMessageTooBig):
		c.closeWith(ws.NewCloseFrameBody(ws.StatusMessageTooBig, ""))
	case errors.Is(err, errProtocol):
		c.closeWith(ws.NewCloseFrameBody(ws.StatusProtocolError, ""))
	case errors.Is(err, errInvalidUTF8):
		c.closeWith(ws.NewCloseFrameBody(ws.StatusInvalidFramePayloadData, ""))
	}
	c.abort()
	if c.ended.CompareAndSwap(false, true) {
		if errors.Is(err, errPeerClosed) || errors.Is(err, io.EOF) {
			err = nil
		}
		c.h.wsClosed(c, err)
	}
}

// abort closes the connection now: nothing more is read or written. The
// descriptor is closed at once, or by the reader goroutine when it leaves.
func (c *wsConn) abort() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.out = nil
	if c.closeTime != nil {
		c.closeTime.Stop()
	}
	c.p.remove(c)
	closeNow := !c.reading
	if closeNow {
		c.fdClosed = true
	}
	c.mu.Unlock()
	if closeNow {
		unix.Close(c.fd)
	}
}

// buffered is the number of bytes waiting to be written.
func (c *wsConn) buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outBytes
}

// compileFrame builds an unmasked server frame (fin set).
func compileFrame(op ws.OpCode, payload []byte) []byte {
	h := ws.Header{Fin: true, OpCode: op, Length: int64(len(payload))}
	b := make([]byte, ws.HeaderSize(h)+len(payload))
	putHeader(b, h)
	copy(b[len(b)-len(payload):], payload)
	return b
}

// messageFrame builds the frame of an Engine.IO packet: a text frame of
// typ followed by data, or a binary frame of data.
func messageFrame(typ byte, data []byte, binary bool) []byte {
	if binary {
		return compileFrame(ws.OpBinary, data)
	}
	h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(1 + len(data))}
	hs := ws.HeaderSize(h)
	b := make([]byte, hs+1+len(data))
	putHeader(b, h)
	b[hs] = typ
	copy(b[hs+1:], data)
	return b
}

// putHeader writes an unmasked header at the start of b, which is at
// least ws.HeaderSize(h) long.
func putHeader(b []byte, h ws.Header) {
	b[0] = byte(h.OpCode)
	if h.Fin {
		b[0] |= 0x80
	}
	switch {
	case h.Length < 126:
		b[1] = byte(h.Length)
	case h.Length <= 0xffff:
		b[1] = 126
		b[2], b[3] = byte(h.Length>>8), byte(h.Length)
	default:
		b[1] = 127
		for i := range 8 {
			b[2+i] = byte(h.Length >> (56 - 8*i))
		}
	}
}
