//go:build linux

package engine

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// poller waits for the readiness of every websocket descriptor of a server
// in one epoll instance, on one goroutine. A connection costs no goroutine
// while it is idle: a reader goroutine exists only while its descriptor has
// bytes to read (see wsConn.readable), and a blocked write is finished by
// the poller itself when the descriptor becomes writable again.
//
// Descriptors are registered edge-triggered for input, output and peer
// hang-up: the kernel reports a change once, and the connection keeps
// reading (or writing) until the socket says EAGAIN.
type poller struct {
	epfd int
	wake int // an eventfd that ends the loop

	mu    sync.RWMutex
	conns []*wsConn // by descriptor

	done chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	p := &poller{epfd: epfd, wake: wake, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// add starts watching c's descriptor.
func (p *poller) add(c *wsConn) error {
	p.mu.Lock()
	if c.fd >= len(p.conns) {
		grown := make([]*wsConn, max(c.fd+1, 2*len(p.conns), 1024))
		copy(grown, p.conns)
		p.conns = grown
	}
	p.conns[c.fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.forget(c)
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// remove stops watching c's descriptor; call it before the descriptor is
// closed, so that a new connection given the same number is not mistaken
// for c.
func (p *poller) remove(c *wsConn) {
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	p.forget(c)
}

func (p *poller) forget(c *wsConn) {
	p.mu.Lock()
	if c.fd < len(p.conns) && p.conns[c.fd] == c {
		p.conns[c.fd] = nil
	}
	p.mu.Unlock()
}

func (p *poller) lookup(fd int32) *wsConn {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if int(fd) < len(p.conns) {
		return p.conns[fd]
	}
	return nil
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			ev := &events[i]
			if int(ev.Fd) == p.wake {
				return
			}
			c := p.lookup(ev.Fd)
			if c == nil {
				continue
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				c.writable()
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				c.readable()
			}
		}
	}
}

// close ends the loop; the connections are the server's to close.
func (p *poller) close() {
	var one = [8]byte{1}
	_, _ = unix.Write(p.wake, one[:])
	<-p.done
	unix.Close(p.wake)
	unix.Close(p.epfd)
}
