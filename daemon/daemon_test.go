package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Start two workers; status shows them online; a client connects through
// the public port and receives what is emitted for it.
func TestStartStatusAndDelivery(t *testing.T) {
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), 2)
	td.start(t, cfg)
	st := td.waitStatus(t, 10*time.Second, "2 workers online", allOnline(2))
	if st.Port != cfg.Port || st.App != cfg.App || st.Daemon.PID != os.Getpid() {
		t.Errorf("status header: %+v", st)
	}
	if st.Redis.URL == "" || !st.Redis.Up {
		t.Errorf("redis status: %+v", st.Redis)
	}

	got := make(chan sioclient.Event, 1)
	if _, err := connect(t, cfg.Port, "42", func(e sioclient.Event) { got <- e }); err != nil {
		t.Fatalf("connect through the front door: %v", err)
	}
	em := redisadapter.NewEmitter(rs.Client(t), "")
	if _, err := em.To("user:42").Emit(context.Background(), "evidencia_aprobada", map[string]any{"id": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Name != "evidencia_aprobada" {
			t.Errorf("got %q", e.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event through the front door")
	}
	td.waitStatus(t, 5*time.Second, "the connection counted", func(st control.Status) bool {
		return st.Workers[0].Connections+st.Workers[1].Connections == 1
	})

	// log files exist, PM2-style
	for _, name := range []string{"frutos-out-0.log", "frutos-error-0.log", "frutos-out-1.log"} {
		if _, err := os.Stat(filepath.Join(td.home, "logs", name)); err != nil {
			t.Errorf("log file: %v", err)
		}
	}
}

// A worker killed with SIGKILL is restarted, with its restart count up.
func TestKilledWorkerIsRestarted(t *testing.T) {
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), 2)
	td.start(t, cfg)
	st := td.waitStatus(t, 10*time.Second, "online", allOnline(2))
	victim := st.Workers[1].PID
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = td.waitStatus(t, 20*time.Second, "worker 1 back", func(st control.Status) bool {
		w := st.Workers[1]
		return w.Status == control.StatusOnline && w.PID != victim && w.PID != 0 && w.Restarts == 1
	})
	if st.Workers[0].Restarts != 0 || st.Workers[0].Status != control.StatusOnline {
		t.Errorf("worker 0 was disturbed: %+v", st.Workers[0])
	}
	if _, err := connect(t, cfg.Port, "7", nil); err != nil {
		t.Errorf("a client cannot connect after the restart: %v", err)
	}
}

// A worker that crashes at every start ends errored after max_restarts;
// the daemon and the other workers stay healthy.
func TestWorkerThatKeepsCrashingEndsErrored(t *testing.T) {
	rs := redistest.Start(t)
	bin := frutosbin.Path(t)
	dir := shortTempDir(t)
	marker := filepath.Join(dir, "crash")
	script := filepath.Join(dir, "frutos-wrapper")
	// crashes at start once the marker exists: a bad deploy
	body := fmt.Sprintf("#!/bin/sh\n[ -e %q ] && { echo 'boom: bad deploy' >&2; exit 3; }\nexec %q \"$@\"\n", marker, bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	td := startDaemon(t, func() (string, error) { return script, nil })
	cfg := testConfig(t, td.home, rs.URL(), 2)
	td.start(t, cfg)
	st := td.waitStatus(t, 10*time.Second, "online", allOnline(2))
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(st.Workers[0].PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = td.waitStatus(t, 30*time.Second, "worker 0 errored", func(st control.Status) bool {
		return st.Workers[0].Status == control.StatusErrored
	})
	if st.Workers[0].Restarts != cfg.Restart.MaxRestarts {
		t.Errorf("restarts = %d, want %d (max_restarts)", st.Workers[0].Restarts, cfg.Restart.MaxRestarts)
	}
	if !strings.Contains(st.Workers[0].LastExit, "exit status 3") {
		t.Errorf("last exit = %q", st.Workers[0].LastExit)
	}
	if st.Workers[1].Status != control.StatusOnline {
		t.Errorf("worker 1: %+v", st.Workers[1])
	}
	errLog, _ := os.ReadFile(filepath.Join(td.home, "logs", "frutos-error-0.log"))
	if !strings.Contains(string(errLog), "boom: bad deploy") {
		t.Errorf("the crash's stderr is not in the worker's err log:\n%s", errLog)
	}
	// fixed deploy: restart brings it back
	os.Remove(marker)
	if err := opErr(td.client.Restart(context.Background(), control.Target{ID: 0})); err != nil {
		t.Fatal(err)
	}
	td.waitStatus(t, 20*time.Second, "both online again", allOnline(2))
}

// A start that cannot complete leaves nothing behind.
func TestStartFailsCleanly(t *testing.T) {
	rs := redistest.Start(t)
	td := startDaemon(t, nil)

	t.Run("port taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := testConfig(t, td.home, rs.URL(), 1)
		cfg.Port = l.Addr().(*net.TCPAddr).Port
		err = opErr(td.client.Start(context.Background(), startRequest(t, cfg)))
		if err == nil || !strings.Contains(err.Error(), "is taken") {
			t.Errorf("err = %v, want the port named as taken", err)
		}
		if n := len(td.status(t).Workers); n != 0 {
			t.Errorf("%d workers left after a failed start", n)
		}
	})
	// Friction: a taken emit.listen gave the raw "bind: address already in
	// use", where the public port says what to do.
	t.Run("emit.listen taken", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cfg := testConfig(t, td.home, rs.URL(), 1)
		cfg.Emit.Listen = l.Addr().String()
		cfg.Emit.Key = "emit-key-0123456789abcdef"
		err = opErr(td.client.Start(context.Background(), startRequest(t, cfg)))
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		for _, want := range []string{"emit.listen: port " + port + " is taken by another process", "ss -ltnp", "another address in emit.listen"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want it to say %q", err, want)
			}
		}
		if n := len(td.status(t).Workers); n != 0 {
			t.Errorf("%d workers left after a failed start", n)
		}
		if !portFree(cfg.Port) {
			t.Error("the public port stayed bound after a failed start")
		}
	})
	t.Run("redis unreachable", func(t *testing.T) {
		cfg := testConfig(t, td.home, fmt.Sprintf("redis://127.0.0.1:%d", redistest.FreePort(t)), 1)
		err := opErr(td.client.Start(context.Background(), startRequest(t, cfg)))
		if err == nil || !strings.Contains(err.Error(), "Redis unreachable") {
			t.Errorf("err = %v, want Redis unreachable", err)
		}
		// Friction (issue 17): "Redis unreachable at X: Redis at X: refused".
		if err != nil && strings.Count(err.Error(), cfg.Redis.URL) != 1 {
			t.Errorf("err = %v, want the URL said once", err)
		}
		if err != nil && !strings.Contains(err.Error(), "refused: nothing accepts connections at ") {
			t.Errorf("err = %v, want the cause and its detail", err)
		}
		if !portFree(cfg.Port) {
			t.Error("the public port stayed bound after a failed start")
		}
	})
	t.Run("workers never ready", func(t *testing.T) {
		script := filepath.Join(shortTempDir(t), "silent-worker")
		if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		slow := startDaemon(t, func() (string, error) { return script, nil })
		cfg := testConfig(t, slow.home, rs.URL(), 2)
		cfg.Restart.ListenTimeout = configs.Duration(time.Second)
		err := opErr(slow.client.Start(context.Background(), startRequest(t, cfg)))
		if err == nil || !strings.Contains(err.Error(), "listen_timeout") {
			t.Fatalf("err = %v, want workers not ready within listen_timeout", err)
		}
		if n := len(slow.status(t).Workers); n != 0 {
			t.Errorf("%d workers left after a failed start", n)
		}
		if !portFree(cfg.Port) {
			t.Error("the public port stayed bound after a failed start")
		}
	})
	// and the daemon still works
	cfg := testConfig(t, td.home, rs.URL(), 1)
	td.start(t, cfg)
	td.waitStatus(t, 10*time.Second, "online", allOnline(1))
}

// scale N, +N, -N; removed workers are the highest ids.
func TestScale(t *testing.T) {
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), 1)
	td.start(t, cfg)
	scale := func(mode string, n int) error {
		return opErr(td.client.Scale(context.Background(), control.ScaleRequest{Mode: mode, N: n}))
	}
	if err := scale("add", 2); err != nil {
		t.Fatal(err)
	}
	td.waitStatus(t, 20*time.Second, "3 online", allOnline(3))
	if err := scale("sub", 1); err != nil {
		t.Fatal(err)
	}
	st := td.waitStatus(t, 20*time.Second, "2 online", allOnline(2))
	if st.Workers[0].ID != 0 || st.Workers[1].ID != 1 {
		t.Errorf("scale -1 removed the wrong id: %+v", st.Workers)
	}
	if err := scale("sub", 2); err == nil {
		t.Error("scale -2 with 2 workers was accepted")
	}
	if err := scale("set", 1); err != nil {
		t.Fatal(err)
	}
	td.waitStatus(t, 20*time.Second, "1 online", allOnline(1))
}

// stop keeps the worker in the list, stopped; restart brings it back.
func TestStopAndRestart(t *testing.T) {
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), 2)
	td.start(t, cfg)
	st := td.waitStatus(t, 10*time.Second, "online", allOnline(2))
	pid0 := st.Workers[0].PID
	if err := opErr(td.client.Stop(context.Background(), control.Target{ID: 0})); err != nil {
		t.Fatal(err)
	}
	st = td.status(t)
	if st.Workers[0].Status != control.StatusStopped || st.Workers[0].PID != 0 {
		t.Errorf("after stop 0: %+v", st.Workers[0])
	}
	if alive(pid0) {
		t.Errorf("stopped worker %d still runs", pid0)
	}
	if err := opErr(td.client.Restart(context.Background(), control.Target{ID: 0})); err != nil {
		t.Fatal(err)
	}
	td.waitStatus(t, 10*time.Second, "online", allOnline(2))
	if err := opErr(td.client.Stop(context.Background(), control.Target{All: true})); err != nil {
		t.Fatal(err)
	}
	for _, w := range td.status(t).Workers {
		if w.Status != control.StatusStopped {
			t.Errorf("after stop all: %+v", w)
		}
	}
	if err := opErr(td.client.Stop(context.Background(), control.Target{ID: 9})); err == nil || !strings.Contains(err.Error(), "no worker 9") {
		t.Errorf("stop 9: %v", err)
	}
}

// Garbage and huge requests on the control socket get clean errors; the
// daemon keeps answering.
func TestControlSocketHostileRequests(t *testing.T) {
	td := startDaemon(t, nil)
	sock := td.client.Socket()
	httpc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	post := func(path, body string) (int, string) {
		resp, err := httpc.Post("http://d"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct{ path, body string }{
		{"/v1/start", "{not json"},
		{"/v1/start", `{"config": 42}`},
		{"/v1/scale", `{"mode": "set", "n": 1, "extra": true}`},
		{"/v1/stop", `[]`},
		{"/v1/stop", ``},
		{"/v1/scale", `{"mode":"sideways","n":1}`},
	} {
		code, body := post(c.path, c.body)
		if code < 400 || code >= 500 || !strings.Contains(body, `"message"`) {
			t.Errorf("POST %s %q: HTTP %d %s", c.path, c.body, code, body)
		}
	}
	code, _ := post("/v1/start", `{"config":"`+strings.Repeat("x", 4<<20)+`"}`)
	if code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge request: HTTP %d", code)
	}
	// raw garbage on the socket
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("\x00\xff garbage \r\n\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(c)
	c.Close()
	if err := td.client.Ping(context.Background()); err != nil {
		t.Fatalf("daemon stopped answering: %v", err)
	}
}

// A second daemon for the same home refuses to start.
func TestSecondDaemonRefused(t *testing.T) {
	td := startDaemon(t, nil)
	_, err := daemonNew(td.home)
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second daemon: %v", err)
	}
}

// A process of another user is refused even when the socket's mode would
// let it connect: the daemon checks the peer's credentials.
func TestControlRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	td := startDaemon(t, nil)
	sock := td.client.Socket()
	// open the door as wide as it goes: mode and directories
	if err := os.Chmod(sock, 0o777); err != nil {
		t.Fatal(err)
	}
	for dir := filepath.Dir(sock); dir != "/" && dir != os.TempDir(); dir = filepath.Dir(dir) {
		_ = os.Chmod(dir, 0o755)
	}
	// this test binary, where the other user can run it
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := shortTempDir(t)
	_ = os.Chmod(dir, 0o755)
	helper := filepath.Join(dir, "peer.test")
	if err := os.WriteFile(helper, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helper, "-test.run", "^$")
	cmd.Env = append(os.Environ(), "FRUTOS_TEST_PEER_SOCKET="+sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "uid 65534") || strings.Contains(string(out), "uid 65534: <nil>") {
		t.Errorf("another user's control request was not refused: %s", out)
	}
	if err := td.client.Ping(context.Background()); err != nil {
		t.Errorf("the owner is refused too: %v", err)
	}
}

// An update whose new daemon fails (here the binary found is not frutos)
// changes nothing: the daemon answers the error and carries on with its
// workers, its clients and its operations.
func TestUpdateThatFailsKeepsTheDaemon(t *testing.T) {
	rs := redistest.Start(t)
	bin := frutosbin.Path(t)
	var broken atomic.Bool
	td := startDaemon(t, func() (string, error) {
		if broken.Load() {
			return "/bin/false", nil
		}
		return bin, nil
	})
	cfg := testConfig(t, td.home, rs.URL(), 1)
	td.start(t, cfg)
	st := td.waitStatus(t, 10*time.Second, "online", allOnline(1))
	cl, err := connect(t, cfg.Port, "1", nil)
	if err != nil {
		t.Fatal(err)
	}

	broken.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = td.client.Update(ctx)
	if err == nil || !strings.Contains(err.Error(), "carries on") {
		t.Fatalf("update with a broken binary: %v", err)
	}
	broken.Store(false)
	after := td.status(t)
	if after.Daemon.PID != os.Getpid() || after.Workers[0].PID != st.Workers[0].PID {
		t.Errorf("after the failed update: %+v", after)
	}
	select {
	case <-cl.Done():
		t.Error("the client was dropped by a failed update")
	default:
	}
	if err := opErr(td.client.Scale(ctx, control.ScaleRequest{Mode: "add", N: 1})); err != nil {
		t.Errorf("scale after the failed update: %v", err)
	}
	td.waitStatus(t, 20*time.Second, "2 online", allOnline(2))
	if _, err := connect(t, cfg.Port, "2", nil); err != nil {
		t.Errorf("a new client after the failed update: %v", err)
	}
}
