package redisctl

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

// openT opens rawURL fail-fast and closes it when the test ends.
func openT(t *testing.T, rawURL string) *Target {
	t.Helper()
	tg, err := Open(rawURL, FailFast())
	if err != nil {
		t.Fatalf("Open(%q): %v", rawURL, err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

// pingT pings with a timeout and returns the result or the *Error.
func pingT(t *testing.T, tg *Target, timeout time.Duration) (*PingResult, *Error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := tg.Ping(ctx, 3)
	if err == nil {
		return res, nil
	}
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("Ping error is %T (%v), want *Error", err, err)
	}
	if strings.Contains(e.Error(), "\n") || e.Hint == "" {
		t.Errorf("error must be one line with a hint: %q (hint %q)", e.Error(), e.Hint)
	}
	return nil, e
}

// fakeServer and silentServer are redistest's (shared with cmd/frutos).
func fakeServer(t *testing.T, serve func(net.Conn)) string { return redistest.FakeServer(t, serve) }

func silentServer(t *testing.T) string { return redistest.Silent(t) }

// httpServer answers every connection like a web server would, then closes it.
func httpServer(t *testing.T) string {
	return fakeServer(t, func(c net.Conn) {
		_, _ = bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
	})
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int { return redistest.FreePort(t) }

// startClusterNode runs a one-node Redis Cluster owning every slot.
func startClusterNode(t *testing.T) *redistest.Server {
	t.Helper()
	s := redistest.Start(t, "--cluster-enabled", "yes")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r, err := s.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || !strings.HasPrefix(r, "+OK") {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %q %v", r, err)
	}
	// The node says cluster_state:ok once its cron has seen the slots.
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "*2\r\n$7\r\nCLUSTER\r\n$4\r\nINFO\r\n")
		r := bufio.NewReader(c)
		_, _ = r.ReadString('\n') // bulk length
		line, _ := r.ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "cluster_state:ok") {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("cluster node never reached cluster_state:ok (last %q)", line)
		case <-time.After(20 * time.Millisecond): // polling a condition with a deadline
		}
	}
}

// startSentinel runs a redis-server in Sentinel mode monitoring the master
// at masterAddr under the name "mymaster", and returns its address.
func startSentinel(t *testing.T, masterAddr string) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed")
	}
	host, port, _ := net.SplitHostPort(masterAddr)
	dir := t.TempDir()
	sport := redistest.FreePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster %s %s 1\n", sport, dir, host, port)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	addr := fmt.Sprintf("127.0.0.1:%d", sport)
	deadline := time.Now().Add(10 * time.Second)
	for !answersPing(addr, 200*time.Millisecond) {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "sentinel.log"))
			t.Fatalf("sentinel exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sentinel on %s not ready after 10s", addr)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	return addr
}

// answersPing reports whether a Redis server at addr answers PING.
func answersPing(addr string, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
