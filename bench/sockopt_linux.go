package bench

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// DialControl sets IP_BIND_ADDRESS_NO_PORT on load connections that bind
// a source address: the kernel then picks the local port at connect time,
// per destination, instead of at bind time among every port of that
// address, so one source address serves about 28,000 connections to each
// server port rather than failing early with EADDRINUSE.
// Best effort: without it the dial still works, with fewer ports.
func DialControl(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
}
