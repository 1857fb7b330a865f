package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/redisproc"
)

// Redis is a redis-server process the suite starts, stops, freezes and
// replaces, always on the same loopback port.
type Redis struct {
	Port int
	dir  string
	proc *redisproc.Process
}

// StartRedis starts redis-server on a free loopback port with its data in
// dir (an RDB on shutdown, so a stop and start keeps the dataset).
func StartRedis(dir string) (*Redis, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Redis{Port: port, dir: dir}
	return r, r.Start(false)
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d", r.Port) }

// Start starts the server again on its port; fresh starts it with an
// empty data directory (a new, empty dataset).
func (r *Redis) Start(fresh bool) error {
	if fresh {
		_ = os.RemoveAll(r.dir)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	p, err := redisproc.Start(r.Port, r.dir, nil, []string{"--loglevel", "warning"})
	r.proc = p
	return err
}

// Stop shuts the server down as an operator would (SHUTDOWN SAVE), keeping
// its dataset on disk; SIGKILL if it has not exited within 10 s.
func (r *Redis) Stop() error {
	if r.proc == nil {
		return nil
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.Port), time.Second); err == nil {
		_, _ = c.Write([]byte("SHUTDOWN SAVE\r\n"))
		c.Close()
	}
	select {
	case <-r.proc.Done():
	case <-time.After(10 * time.Second):
		r.proc.Kill()
	}
	r.proc = nil
	return nil
}

// Kill ends the server with SIGKILL.
func (r *Redis) Kill() error {
	if r.proc != nil {
		r.proc.Kill()
		r.proc = nil
	}
	return nil
}

// Freeze stops the process (SIGSTOP): connections stay open and nothing
// answers, the worst kind of outage. Thaw resumes it.
func (r *Redis) Freeze() error { return r.proc.Signal(syscall.SIGSTOP) }
func (r *Redis) Thaw() error   { return r.proc.Signal(syscall.SIGCONT) }

// System is a frutos installation under test: the binary, its state home,
// its configuration file and the environment the CLI runs with.
type System struct {
	Bin  string
	Home string
	Port int
	// Config is the configuration file given to start.
	Config string
	env    []string
}

// NewSystem prepares a home and a configuration file for the binary.
// yaml is the configuration (port and home are set here).
func NewSystem(bin, home string, env []string, yaml string) (*System, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &System{Bin: bin, Home: home, Port: port, Config: filepath.Join(home, "frutos.yaml")}
	s.env = append(append(os.Environ(), "FRUTOS_HOME="+home, "NO_COLOR=1"), env...)
	full := fmt.Sprintf("host: 127.0.0.1\nport: %d\nhome: %s\n%s", port, home, yaml)
	if err := os.WriteFile(s.Config, []byte(full), 0o600); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the public address of the front door.
func (s *System) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.Port) }

// CLI runs the binary with the system's environment and configuration,
// and returns its standard output; a non-zero exit is an error that
// carries its standard error.
func (s *System) CLI(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Bin, append([]string{"--config", s.Config}, args...)...)
	cmd.Env = s.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if ctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %s", timeout)
		}
		return out.String(), fmt.Errorf("frutos %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return out.String(), nil
}

// Status is `frutos status --json`.
func (s *System) Status(ctx context.Context) (control.Status, error) {
	var st control.Status
	out, err := s.CLI(ctx, 10*time.Second, "status", "--json")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// WaitOnline waits until n workers are online and ready.
func (s *System) WaitOnline(ctx context.Context, n int, within time.Duration) error {
	var last string
	err := waitUntil(within, fmt.Sprintf("%d workers online", n), func() bool {
		st, err := s.Status(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		online := 0
		for _, w := range st.Workers {
			if w.Status == control.StatusOnline && w.Ready && !w.Draining {
				online++
			}
		}
		last = fmt.Sprintf("%d of %d online", online, len(st.Workers))
		return online == n && len(st.Workers) == n
	})
	if err != nil {
		return fmt.Errorf("%w (%s)", err, last)
	}
	return nil
}

// Shutdown stops the daemon and its workers; when the daemon does not
// answer, its pid file names the process to end.
func (s *System) Shutdown() {
	if _, err := s.CLI(context.Background(), 60*time.Second, "kill"); err == nil {
		return
	}
	if pid := s.daemonPID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (s *System) daemonPID() int {
	b, err := os.ReadFile(filepath.Join(s.Home, "daemon.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// waitUntil polls cond every 50 ms until it holds or within has passed.
func waitUntil(within time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// freePort finds a free loopback port in 20000-32767, below the usual
// ephemeral range, where the load's own connections cannot take it later.
func freePort() (int, error) {
	for range 100 {
		p := 20000 + rand.IntN(12768)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("no free loopback port in 20000-32767")
}
