package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/daemon"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

func TestMain(m *testing.M) {
	// as a helper process (see TestControlRefusesOtherUsers): try the
	// control socket and report what happened
	if sock := os.Getenv("FRUTOS_TEST_PEER_SOCKET"); sock != "" {
		err := control.NewClientForSocket(sock).Ping(context.Background())
		fmt.Printf("uid %d: %v\n", os.Getuid(), err)
		os.Exit(0)
	}
	code := m.Run()
	frutosbin.Cleanup()
	os.Exit(code)
}

const secret = "daemon-test-secret"

// testDaemon is a daemon running in this process, with real worker
// processes of the built binary.
type testDaemon struct {
	*daemon.Daemon
	home   string
	client *control.Client
	done   chan error
}

func startDaemon(t testing.TB, exe func() (string, error)) *testDaemon {
	t.Helper()
	home := shortTempDir(t)
	if exe == nil {
		bin := frutosbin.Path(t)
		exe = func() (string, error) { return bin, nil }
	}
	d, err := daemon.New(daemon.Options{Home: home, Version: "test", Executable: exe})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	td := &testDaemon{Daemon: d, home: home, client: control.NewClient(home), done: make(chan error, 1)}
	go func() { td.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-td.done:
		case <-time.After(60 * time.Second):
			t.Errorf("daemon did not stop within 60s")
		}
	})
	waitFor(t, 10*time.Second, "control socket", func() bool { return td.client.Ping(context.Background()) == nil })
	return td
}

// shortTempDir keeps unix socket paths under the 108-byte limit.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fh")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testConfig is a configuration for n workers on a free port, with quick
// restart settings.
func testConfig(t testing.TB, home, redisURL string, n int) *configs.Config {
	t.Helper()
	cfg := configs.Default()
	cfg.Home = home
	cfg.Host = "127.0.0.1"
	cfg.Port = redistest.FreePort(t)
	cfg.Redis.URL = redisURL
	cfg.Auth.Secret = secret
	cfg.Instances = configs.Instances(n)
	cfg.Restart.KillTimeout = configs.Duration(10 * time.Second) // the default: drains need it under load
	cfg.Restart.MinUptime = configs.Duration(2 * time.Second)
	cfg.Restart.BackoffInitial = configs.Duration(50 * time.Millisecond)
	cfg.Restart.BackoffMax = configs.Duration(400 * time.Millisecond)
	cfg.Restart.MaxRestarts = 3
	cfg.Restart.ListenTimeout = configs.Duration(20 * time.Second)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (td *testDaemon) start(t testing.TB, cfg *configs.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := opErr(td.client.Start(ctx, startRequest(t, cfg))); err != nil {
		t.Fatalf("start: %v", err)
	}
}

func startRequest(t testing.TB, cfg *configs.Config) control.StartRequest {
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return control.StartRequest{Config: raw}
}

// opErr is the error of an operation whose Result the test does not read.
func opErr(_ control.Result, err error) error { return err }

func (td *testDaemon) status(t testing.TB) control.Status {
	t.Helper()
	st, err := td.client.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return st
}

// waitStatus waits until the process table satisfies cond.
func (td *testDaemon) waitStatus(t testing.TB, within time.Duration, what string, cond func(control.Status) bool) control.Status {
	t.Helper()
	var st control.Status
	waitFor(t, within, what, func() bool { st = td.status(t); return cond(st) })
	return st
}

func allOnline(n int) func(control.Status) bool {
	return func(st control.Status) bool {
		if len(st.Workers) != n {
			return false
		}
		for _, w := range st.Workers {
			if w.Status != control.StatusOnline || w.PID == 0 || !w.Ready {
				return false
			}
		}
		return true
	}
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	eventlog.WaitFor(t, within, what, cond)
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	// a zombie is not alive: read its state
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] != "Z" && syscall.Kill(pid, 0) == nil
}

func token(t testing.TB, sub, role string) string {
	t.Helper()
	tok, err := jwtauth.Mint(secret, sub, role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connect opens a websocket client through the public port.
func connect(t testing.TB, port int, sub string, onEvent func(sioclient.Event)) (*sioclient.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), Auth: map[string]any{"token": token(t, sub, "student")}, OnEvent: onEvent,
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func daemonNew(home string) (*daemon.Daemon, error) {
	return daemon.New(daemon.Options{Home: home})
}
