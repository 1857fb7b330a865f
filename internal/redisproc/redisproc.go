// Package redisproc runs a redis-server process on a loopback port, for
// the test helpers (internal/testutil/redistest) and the chaos suite
// (bench/chaos): start and wait until it answers, signal, kill and reap.
package redisproc

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one running redis-server.
type Process struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs redis-server on 127.0.0.1:port with its data and log in dir:
// lead comes first (a configuration file, --sentinel), extra last. It
// returns once the server answers PING, or fails with the end of its log.
// No snapshots and no AOF unless extra asks for them.
func Start(port int, dir string, lead, extra []string) (*Process, error) {
	logFile := filepath.Join(dir, "redis.log")
	args := append(append(append([]string{}, lead...),
		"--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--logfile", logFile,
	), extra...)
	cmd := exec.Command("redis-server", args...)
	// a suite killed hard must not leave its Redis behind
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w (install it: apt-get install -y redis-server)", err)
	}
	p := &Process{Port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-p.done:
			log, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server exited: %s: %s", cmd.ProcessState, LastLines(string(log), 3))
		default:
		}
		if Ready(addr) {
			return p, nil
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	p.Kill()
	return nil, fmt.Errorf("redis-server on port %d not ready after 10s", port)
}

// Signal sends sig (SIGSTOP freezes the server, SIGCONT thaws it).
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill ends the process with SIGKILL and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Ready reports whether addr answers PING (or demands auth, which also
// proves a server is up).
func Ready(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && (strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH"))
}

// LastLines is the last n lines of s, joined with " | ".
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
