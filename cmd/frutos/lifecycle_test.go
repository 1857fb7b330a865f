package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/internal/workerproto"
)

// cli runs the built frutos binary with a home and Redis of the test.
type cli struct {
	t    *testing.T
	bin  string
	pre  []string // arguments before every command's own (a wrapper's, global flags)
	home string
	env  []string
}

func newCLI(t *testing.T, redisURL string) *cli {
	dir, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, bin: frutosbin.Path(t), home: filepath.Join(dir, "h")}
	c.env = append(os.Environ(), "FRUTOS_HOME="+c.home, "REDIS_URL="+redisURL, "FRUTOS_AUTH_SECRET=lifecycle-secret", "NO_COLOR=1")
	t.Cleanup(func() {
		c.run("kill") // stop whatever the test left running
		if pid := readPIDFile(filepath.Join(c.home, "daemon.pid")); pid > 0 && processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		killOrphans(c.home)
		os.RemoveAll(dir)
	})
	return c
}

// run executes one command and returns stdout, stderr and the exit code.
func (c *cli) run(args ...string) (string, string, int) {
	cmd := exec.Command(c.bin, append(slices.Clone(c.pre), args...)...)
	cmd.Env = c.env
	cmd.Dir = filepath.Dir(c.home)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run frutos %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("frutos %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (c *cli) status() control.Status {
	c.t.Helper()
	var st control.Status
	if err := json.Unmarshal([]byte(c.ok("status", "--json")), &st); err != nil {
		c.t.Fatal(err)
	}
	return st
}

func (c *cli) waitStatus(what string, within time.Duration, cond func(control.Status) bool) control.Status {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := c.status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s; status: %+v", what, st.Workers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func online(n int) func(control.Status) bool {
	return func(st control.Status) bool {
		if len(st.Workers) != n {
			return false
		}
		for _, w := range st.Workers {
			if w.Status != control.StatusOnline {
				return false
			}
		}
		return true
	}
}

// The PM2 user's session: start, status, scale, restart, stop, save, a
// daemon killed with SIGKILL (its workers do not linger), resurrect, kill.
func TestLifecycleAsAPM2User(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	port := strconv.Itoa(redistest.FreePort(t))

	out := c.ok("start", "--instances", "2", "--port", port)
	if !strings.Contains(out, "online") {
		t.Errorf("start printed no table:\n%s", out)
	}
	st := c.status()
	if len(st.Workers) != 2 || st.Port != atoi(port) {
		t.Fatalf("status after start: %+v", st)
	}
	if _, errOut, code := c.run("start", "--instances", "2", "--port", port); code == 0 || !strings.Contains(errOut, "already running") {
		t.Errorf("a second start: exit %d, %s", code, errOut)
	}

	c.ok("scale", "+2")
	c.waitStatus("4 online", 30*time.Second, online(4))
	c.ok("scale", "1")
	c.waitStatus("1 online", 30*time.Second, online(1))
	if _, errOut, code := c.run("scale", "-1"); code == 0 || !strings.Contains(errOut, "scale to 0 explicitly") {
		t.Errorf("scale -1 of 1: exit %d %s", code, errOut)
	}
	c.ok("scale", "2")
	c.waitStatus("2 online", 30*time.Second, online(2))

	before := c.status().Workers[0]
	c.ok("restart", "0")
	after := c.waitStatus("restarted", 30*time.Second, online(2)).Workers[0]
	if after.PID == before.PID || after.Restarts != before.Restarts+1 {
		t.Errorf("restart 0: before %+v after %+v", before, after)
	}
	c.ok("stop", "all")
	for _, w := range c.status().Workers {
		if w.Status != control.StatusStopped {
			t.Errorf("after stop all: %+v", w)
		}
	}
	c.ok("restart", "all")
	c.waitStatus("2 online", 30*time.Second, online(2))
	if _, errOut, code := c.run("stop", "7"); code == 0 || !strings.Contains(errOut, "no worker 7") {
		t.Errorf("stop 7: exit %d %s", code, errOut)
	}

	if out := c.ok("save"); !strings.Contains(out, "dump.json") {
		t.Errorf("save: %s", out)
	}
	if _, err := os.Stat(filepath.Join(c.home, "dump.json")); err != nil {
		t.Fatal(err)
	}

	// the daemon dies hard: its workers outlive it (orphan_grace) and the
	// daemon that resurrect starts adopts them, same processes
	st = c.status()
	daemonPID := st.Daemon.PID
	workers := map[int]int{}
	for _, w := range st.Workers {
		workers[w.ID] = w.PID
	}
	if err := syscall.Kill(daemonPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, daemonPID, 10*time.Second, "the daemon after SIGKILL")
	if _, errOut, code := c.run("status"); code != exitDaemon || !strings.Contains(errOut, "not running") {
		t.Errorf("status with no daemon: exit %d %s", code, errOut)
	}
	for id, pid := range workers {
		if !processAlive(pid) {
			t.Errorf("worker %d (pid %d) died with its daemon", id, pid)
		}
	}

	out = c.ok("resurrect")
	if !strings.Contains(out, "online (adopted)") {
		t.Errorf("resurrect printed no adopted workers:\n%s", out)
	}
	st = c.waitStatus("resurrected", 30*time.Second, online(2))
	if st.Port != atoi(port) || st.Daemon.PID == daemonPID {
		t.Errorf("resurrect: %+v", st)
	}
	for _, w := range st.Workers {
		if w.PID != workers[w.ID] || !w.Adopted {
			t.Errorf("worker %d after resurrect: pid %d adopted %v; want pid %d adopted", w.ID, w.PID, w.Adopted, workers[w.ID])
		}
	}

	unit := c.ok("startup")
	for _, want := range []string{"ExecStart=", "daemon --resurrect", "FRUTOS_HOME=" + c.home, "KillMode=process"} {
		if !strings.Contains(unit, want) {
			t.Errorf("startup unit lacks %q:\n%s", want, unit)
		}
	}

	_, errOut, _ := c.run("kill")
	if !strings.Contains(errOut, "daemon exits") {
		t.Errorf("kill: %s", errOut)
	}
	if _, errOut, code := c.run("status"); code != exitDaemon {
		t.Errorf("status after kill: exit %d %s", code, errOut)
	}
	for _, w := range st.Workers {
		if processAlive(w.PID) {
			t.Errorf("worker %d still runs after kill", w.PID)
		}
	}
}

// Bug: a daemon resurrected while the workers of the one that died were
// still draining (systemd restarts it at once) gave its workers the same
// socket names (generations start at 1 again); an old worker's exit then
// unlinked a new worker's sockets, and the front door could no longer
// reach it. Found by the chaos suite (kill-daemon).
func TestResurrectWhileTheOldWorkersDrain(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	// with no orphan grace the old worker drains at once, as it did
	// before adoption
	c.pre = []string{"--config", writeConfig(t, "restart:\n  orphan_grace: 0s\n")}
	port := redistest.FreePort(t)
	c.ok("start", "--instances", "1", "--port", strconv.Itoa(port))
	c.ok("save")
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	tok, err := jwtauth.Mint("lifecycle-secret", "7", "student", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(transport string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cl, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Transport: transport, Auth: map[string]any{"token": tok}})
		if err == nil {
			cl.Close()
		}
		return err
	}
	// clients keep the old worker draining for a while after the daemon
	// dies (it closes their transports spread over seconds)
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		held, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Auth: map[string]any{"token": tok}})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
	}

	st := c.status()
	old := st.Workers[0].PID
	was := socketArg(old)
	if err := syscall.Kill(st.Daemon.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, st.Daemon.PID, 10*time.Second, "the daemon after SIGKILL")
	c.ok("resurrect")
	if now := socketArg(c.status().Workers[0].PID); was == "" || was == now {
		t.Errorf("the new worker's socket %q is the draining old worker's %q: its exit would unlink it", now, was)
	}
	for deadline := time.Now().Add(30 * time.Second); processAlive(old); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the old worker never ended")
		}
	}
	for _, tr := range []string{sioclient.Websocket, sioclient.Polling} {
		if err := dial(tr); err != nil {
			t.Errorf("%s through the front door once the old worker ended: %v", tr, err)
		}
	}
}

// A container's main process: `frutos daemon --start` runs the daemon in
// the foreground with the app started from the configuration; SIGTERM
// stops it cleanly; an app that cannot start makes it exit non-zero.
func TestDaemonStartInTheForeground(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	port := redistest.FreePort(t)
	cmd := exec.Command(c.bin, "daemon", "--start", "--instances", "2", "--port", strconv.Itoa(port))
	cmd.Env = c.env
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := c.run("status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon never answered; stderr:\n%s", errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := c.waitStatus("2 online", 30*time.Second, online(2)); st.Port != port {
		t.Errorf("port %d, want %d", st.Port, port)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon after SIGTERM: %v\n%s", err, errb.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the daemon did not stop on SIGTERM")
	}

	bad := newCLI(t, fmt.Sprintf("redis://127.0.0.1:%d", redistest.FreePort(t)))
	out, errOut, code := bad.run("daemon", "--start", "--instances", "1", "--port", strconv.Itoa(redistest.FreePort(t)))
	if code == 0 || !strings.Contains(errOut, "start the app") {
		t.Errorf("daemon --start with Redis down: exit %d\n%s%s", code, out, errOut)
	}
	if _, _, code := bad.run("status"); code != exitDaemon {
		t.Errorf("a daemon was left running after the failed start (status exit %d)", code)
	}
	if _, errOut, code := bad.run("daemon", "--start", "--resurrect"); code != exitUsage {
		t.Errorf("--start --resurrect: exit %d %s", code, errOut)
	}
}

// start fails with the reason and leaves no daemon behind when it started one.
func TestStartFailureLeavesNothing(t *testing.T) {
	c := newCLI(t, fmt.Sprintf("redis://127.0.0.1:%d", redistest.FreePort(t)))
	_, errOut, code := c.run("start", "--instances", "1", "--port", strconv.Itoa(redistest.FreePort(t)))
	if code != exitRedis || !strings.Contains(errOut, "Redis unreachable") {
		t.Errorf("start with Redis down: exit %d, %s", code, errOut)
	}
	if _, _, code := c.run("status"); code != exitDaemon {
		t.Errorf("a daemon was left running after the failed start (status exit %d)", code)
	}
}

// socketArg is the private socket of a worker process, read from its
// command line as the worker reads it.
func socketArg(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	i := slices.Index(args, workerproto.Command)
	if i < 0 {
		return ""
	}
	spec, err := workerproto.ParseArgs(args[i+1:])
	if err != nil {
		return ""
	}
	return spec.Socket
}

// writeConfig writes a configuration file for the test and names it.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "frutos.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func readPIDFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return atoi(strings.TrimSpace(string(b)))
}

// killOrphans kills the frutos processes of home that outlived their
// daemon (workers waiting to be adopted): their command line names home.
func killOrphans(home string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(b, []byte(home+"/")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
