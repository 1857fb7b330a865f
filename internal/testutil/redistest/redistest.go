// Package redistest starts a real redis-server on a free loopback port for
// tests, and stops it when the test ends.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/internal/redisproc"
)

// Server is one redis-server process owned by a test.
type Server struct {
	t    testing.TB
	Port int
	dir  string
	lead []string // before the options: a configuration file, --sentinel
	args []string

	mu   sync.Mutex
	proc *redisproc.Process // nil while stopped
}

// Start runs redis-server on a free 127.0.0.1 port and registers its stop
// with t.Cleanup. It skips the test when redis-server is not installed.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return startWith(t, nil, extra)
}

func startWith(t testing.TB, lead, extra []string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (apt-get install -y redis-server)")
	}
	s := &Server{t: t, dir: t.TempDir(), lead: lead, args: extra}
	var err error
	for range 5 { // a free port can be taken between probe and bind: retry
		s.Port = FreePort(t)
		if err = s.start(); err == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("start redis-server: %v", err)
	return nil
}

// URL is the redis:// URL of the server (without credentials).
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d", s.Port) }

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

func (s *Server) start() error {
	p, err := redisproc.Start(s.Port, s.dir, s.lead, s.args)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Stop kills the server and waits until its port is closed. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart starts the server again on the same port (after Stop), with an
// empty dataset.
func (s *Server) Restart() {
	s.t.Helper()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart redis-server on port %d: %v", s.Port, err)
}

// Do sends one command over a fresh connection and returns the raw reply
// line (enough for CONFIG SET, FLUSHALL and the like in tests).
func (s *Server) Do(ctx context.Context, args ...string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// FreePort returns a TCP port that was free a moment ago, on 127.0.0.1 and
// on every address. It asks for one on 0.0.0.0: on some kernels (seen on
// 6.18) a port the kernel picked for 127.0.0.1 stays refused to a later
// bind on 0.0.0.0, the daemon's default host, after it was closed.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	t.Cleanup(func() { c.Close() })
	return c
}

// FakeServer accepts connections on 127.0.0.1 and hands each to serve,
// until the test ends; then it closes the listener and every connection and
// waits for its goroutines. It returns host:port.
func FakeServer(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// Silent is a port that accepts connections and never answers: a hung
// server, for timeout paths.
func Silent(t testing.TB) string {
	t.Helper()
	return FakeServer(t, func(c net.Conn) {
		buf := make([]byte, 1024)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	})
}

// LogTail is the last n lines of the server's log, for failure messages.
func (s *Server) LogTail(n int) string {
	log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return redisproc.LastLines(string(log), n)
}

// Freeze stops the server process (SIGSTOP): its connections stay open and
// nothing answers. Thaw resumes it.
func (s *Server) Freeze() { s.signal(syscall.SIGSTOP) }

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		_ = s.proc.Signal(sig)
	}
}
