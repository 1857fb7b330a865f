package daemon

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
)

// Friction (issue 17): `frutos start --port 80` as a user other than root
// gave the raw "bind: permission denied". The error says the port is
// privileged and the two ways out.
func TestListenErrorPrivilegedPort(t *testing.T) {
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	checkPrivilegedPortError(t, listenError(publicPort, "0.0.0.0:80", denied), "0.0.0.0:80")

	taken := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	if err := listenError(publicPort, "0.0.0.0:3000", taken); !strings.Contains(err.Error(), "port 3000 is taken by another process") {
		t.Errorf("a taken port: %v", err)
	}
	other := errors.New("boom")
	if err := listenError(publicPort, "0.0.0.0:3000", other); !errors.Is(err, other) || !strings.HasPrefix(err.Error(), "listen on 0.0.0.0:3000: ") {
		t.Errorf("another error: %v", err)
	}

	// The real bind, where this user may not bind port 80.
	if os.Geteuid() == 0 || unprivilegedPortStart(t) <= 80 {
		t.Log("this user may bind port 80: the real bind is not tried")
		return
	}
	fd, err := listenFrontDoor("127.0.0.1:80", nil, nil)
	if err == nil {
		fd.ln.Close()
		t.Fatal("bound port 80 without privileges")
	}
	checkPrivilegedPortError(t, err, "127.0.0.1:80")
}

// Friction: emit.listen's bind failures were raw errors; they get the
// public port's hints, naming emit.listen as the setting to change.
func TestListenErrorEmitEndpoint(t *testing.T) {
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	err := listenError(emitListen, "127.0.0.1:80", denied)
	for _, want := range []string{"emit.listen: listen on 127.0.0.1:80: permission denied", "is privileged", "port >= 1024 in emit.listen", "CAP_NET_BIND_SERVICE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "--port") || strings.Contains(err.Error(), "reverse proxy") {
		t.Errorf("err = %v; the emit endpoint is not moved with --port nor put behind a proxy", err)
	}
	other := errors.New("boom")
	if err := listenError(emitListen, "127.0.0.1:3001", other); !errors.Is(err, other) || !strings.HasPrefix(err.Error(), "emit.listen: listen on 127.0.0.1:3001: ") {
		t.Errorf("another error: %v", err)
	}
	if os.Geteuid() == 0 || unprivilegedPortStart(t) <= 80 {
		t.Log("this user may bind port 80: the real bind is not tried")
		return
	}
	cfg := configs.Default()
	cfg.Emit.Listen, cfg.Emit.Key = "127.0.0.1:80", "emit-key-0123456789abcdef"
	s, err := startEmitAPI(cfg, nil, slog.New(slog.DiscardHandler), nil)
	if err == nil {
		s.close()
		t.Fatal("bound port 80 without privileges")
	}
	if !strings.Contains(err.Error(), "port >= 1024 in emit.listen") {
		t.Errorf("the real bind: %v", err)
	}
}

func checkPrivilegedPortError(t *testing.T, err error, addr string) {
	t.Helper()
	for _, want := range []string{"listen on " + addr + ": permission denied", "is privileged", "port >= 1024", "reverse proxy", "CAP_NET_BIND_SERVICE"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v; want it to say %q", err, want)
		}
	}
}

func unprivilegedPortStart(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Bug: a front door closed before it served (the emit endpoint, or
// anything else between binding the public port and serving it, failed)
// waited forever for its Serve to end: the start hung, the control
// request timed out and the public port stayed bound.
func TestFrontDoorCloseBeforeServe(t *testing.T) {
	fd, err := listenFrontDoor("127.0.0.1:0", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	addr := fd.Addr().String()
	closed := make(chan struct{})
	go func() { fd.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a front door that never served did not return")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port stayed bound: %v", err)
	}
	l.Close()
	fd.Serve() // after Close: returns at once
}
