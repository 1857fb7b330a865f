//go:build linux

package engine

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// detachFD takes conn's descriptor out of Go's network poller: a
// duplicate is kept (non-blocking, close-on-exec) and conn is closed,
// which unregisters it from the runtime's epoll but leaves the connection
// open through the duplicate.
func detachFD(conn net.Conn) (int, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		conn.Close()
		return -1, errors.New("the connection has no descriptor (TLS must end before the server)")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		conn.Close()
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(f uintptr) {
		fd, dupErr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		dupErr = err
	}
	conn.Close()
	if dupErr != nil {
		return -1, dupErr
	}
	if err := setNonblock(fd); err != nil {
		closeFD(fd)
		return -1, err
	}
	return fd, nil
}

func setNonblock(fd int) error { return unix.SetNonblock(fd, true) }

func closeFD(fd int) { _ = unix.Close(fd) }

func getpeername(fd int) (net.Addr, error) {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}, nil
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}, nil
	}
	return nil, errors.New("unknown address family")
}
