// Package frontdoor simulates frutos' daemon front door: it accepts a TCP
// connection, reads the HTTP request head in a short-lived goroutine, and
// hands the descriptor plus the bytes already read to the "worker" over a
// unix SOCK_SEQPACKET socket pair with SCM_RIGHTS (the same wire shape as
// frutos internal/handoff: 1 version byte + head, one fd). The worker
// side receives a raw fd and the head and calls Adopt(fd, head).
package frontdoor

import (
	"bytes"
	"errors"
	"log"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

const maxHead = 64 << 10

// Start accepts on ln forever and delivers (fd, head) to adopt, which owns fd.
func Start(ln net.Listener, adopt func(fd int, head []byte)) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	send, err := fileConn(fds[0])
	if err != nil {
		return err
	}
	recv, err := fileConn(fds[1])
	if err != nil {
		return err
	}
	_ = send.SetWriteBuffer(4 << 20)
	_ = recv.SetReadBuffer(4 << 20)
	go receive(recv, adopt)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				log.Printf("accept: %v", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			go handOff(c.(*net.TCPConn), send)
		}
	}()
	return nil
}

func fileConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "handoff")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

// handOff reads the request head (what the daemon's net/http did before
// Hijack) and sends fd + head to the worker. The sender's copy is closed.
func handOff(c *net.TCPConn, send *net.UnixConn) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 0, 1024)
	tmp := make([]byte, 1024)
	for !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := c.Read(tmp)
		if n > 0 {
			buf = append(buf, tmp[:n]...)
		}
		if err != nil || len(buf) > maxHead {
			return
		}
	}
	_ = c.SetReadDeadline(time.Time{})
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	var sendErr error
	err = raw.Control(func(fd uintptr) {
		_, _, sendErr = send.WriteMsgUnix(append([]byte{1}, buf...), unix.UnixRights(int(fd)), nil)
	})
	if err != nil || sendErr != nil {
		log.Printf("handoff send: %v %v", err, sendErr)
	}
}

func receive(c *net.UnixConn, adopt func(fd int, head []byte)) {
	buf := make([]byte, maxHead+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			log.Printf("handoff receive: %v", err)
			return
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			continue
		}
		var fds []int
		for _, m := range msgs {
			if f, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, f...)
			}
		}
		if len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			unix.Close(extra)
		}
		if n < 1 || buf[0] != 1 {
			unix.Close(fds[0])
			continue
		}
		adopt(fds[0], append([]byte(nil), buf[1:n]...))
	}
}

// DupListener is the "direct" path without a front door: accept with Go's
// listener, take the fd out of Go's netpoller (dup, then close the
// net.Conn) and deliver it with no pre-read bytes.
func DupListener(ln net.Listener, adopt func(fd int, head []byte)) {
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				log.Printf("accept: %v", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			fd, err := DupConn(c)
			c.Close()
			if err != nil {
				log.Printf("dup: %v", err)
				continue
			}
			adopt(fd, nil)
		}
	}()
}

// DupConn duplicates the descriptor of a TCP net.Conn (close-on-exec).
func DupConn(c net.Conn) (int, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1, errors.New("not a TCP conn")
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := raw.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}
