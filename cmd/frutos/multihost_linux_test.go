package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
)

// Several hosts on one Redis, for real: three network namespaces made by
// the test, joined by a bridge on a private subnet. "r" holds the bridge
// and redis-server; "a" and "b" each run a frutos daemon started with
// `ip netns exec <ns> frutos start`. A client connected to host A receives
// an event emitted on host B; after a kill -9 of B's daemon, host A's
// `status --all-hosts` shows B gone.
func TestTwoHostsOneRedis(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test creates network namespaces (ip netns)")
	}
	for _, tool := range []string{"ip", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s on PATH", tool)
		}
	}
	bin := frutosbin.Path(t)
	n := newTestNet(t, "a", "b")
	redisURL := n.startRedis(t)

	const secret = "multihost-secret"
	a := newNetHost(t, n, bin, "a", redisURL, secret)
	b := newNetHost(t, n, bin, "b", redisURL, secret)
	for _, h := range []*netHost{a, b} {
		eventlog.WaitFor(t, 20*time.Second, "Redis reachable from host "+h.name, func() bool {
			_, _, code := h.run("ping", "--count", "1")
			return code == 0
		})
		h.ok("start", "--instances", "1", "--port", "3000")
	}

	var seen fleetView
	eventlog.WaitFor(t, 30*time.Second, "both hosts up in host a's status --all-hosts", func() bool {
		seen = a.fleet()
		return seen.state("host-a") == control.HostUp && seen.state("host-b") == control.HostUp
	})
	for _, h := range seen.Hosts {
		want := n.addr(h.Name[len("host-"):]) + ":3000"
		if h.Address != want || h.WorkersOnline != 1 || h.Workers != 1 {
			t.Errorf("%s: address %s (want %s), workers %d/%d", h.Name, h.Address, want, h.WorkersOnline, h.Workers)
		}
	}

	// A client of host A receives what host B emits.
	tok, err := jwtauth.Mint(secret, "42", "student", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	events := eventlog.New()
	client := n.dialFrom(t, "r", sioclient.Options{
		URL: "http://" + n.addr("a") + ":3000", Auth: map[string]any{"token": tok}, OnEvent: events.On,
	})
	defer client.Close()
	emitted := time.Now()
	b.ok("emit", "user", "42", "evidencia_aprobada", `{"evidenciaId": 7, "from": "host-b"}`)
	got := events.WaitN(t, "evidencia_aprobada", 1, 10*time.Second)
	t.Logf("emit on host b reached host a's client %s after the command started", time.Since(emitted).Round(time.Millisecond))
	if arg, _ := got[0].Args[0].(map[string]any); arg["from"] != "host-b" {
		t.Errorf("event args %v", got[0].Args)
	}

	// kill -9 host B's daemon: its worker dies with it, and host A sees B
	// gone once B's TTL has passed.
	stB := b.status()
	killed := time.Now()
	if err := syscall.Kill(stB.Daemon.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventlog.WaitFor(t, 10*time.Second, "host b's worker gone with its daemon", func() bool {
		return !processAlive(stB.Workers[0].PID)
	})
	eventlog.WaitFor(t, 30*time.Second, "host b gone in host a's status --all-hosts", func() bool {
		seen = a.fleet()
		return seen.state("host-a") == control.HostUp && seen.state("host-b") == control.HostGone
	})
	t.Logf("host b shown gone %s after its kill -9 (node.ttl 1s)", time.Since(killed).Round(time.Millisecond))
	table := a.ok("status", "--all-hosts")
	if !regexp.MustCompile(`(?m)^host-b +gone +`).MatchString(table) || !regexp.MustCompile(`(?m)^host-a +up +`).MatchString(table) {
		t.Errorf("status --all-hosts:\n%s", table)
	}

	// A clean kill says goodbye: stopped, not gone.
	a.ok("kill")
	eventlog.WaitFor(t, 10*time.Second, "host a stopped", func() bool {
		return b.fleet().state("host-a") == control.HostStopped // read from B's namespace, with no daemon there
	})
}

// testNet is a set of network namespaces joined by a bridge in namespace
// "r", on a /24 of 10.213.0.0/16 chosen from the test's pid.
type testNet struct {
	prefix string // namespace names are prefix + "-" + short name
	subnet string // "10.213.N"
	index  map[string]int
}

func newTestNet(t *testing.T, hosts ...string) *testNet {
	n := &testNet{prefix: fmt.Sprintf("frutos-%d", os.Getpid()), subnet: fmt.Sprintf("10.213.%d", 100+os.Getpid()%100),
		index: map[string]int{"r": 1}}
	t.Cleanup(n.destroy) // registered first: runs after every process cleanup
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	r := n.ns("r")
	ip("netns", "add", r)
	ip("-n", r, "link", "set", "lo", "up")
	ip("-n", r, "link", "add", "br0", "type", "bridge")
	ip("-n", r, "addr", "add", n.subnet+".1/24", "dev", "br0")
	ip("-n", r, "link", "set", "br0", "up")
	for i, h := range hosts {
		n.index[h] = i + 2
		ns, peer := n.ns(h), "v"+h
		ip("netns", "add", ns)
		ip("-n", ns, "link", "set", "lo", "up")
		ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", r)
		ip("-n", ns, "addr", "add", n.addr(h)+"/24", "dev", "eth0")
		ip("-n", ns, "link", "set", "eth0", "up")
		ip("-n", r, "link", "set", peer, "master", "br0")
		ip("-n", r, "link", "set", peer, "up")
	}
	return n
}

func (n *testNet) ns(name string) string   { return n.prefix + "-" + name }
func (n *testNet) addr(name string) string { return n.subnet + "." + strconv.Itoa(n.index[name]) }

// destroy kills whatever still runs in the namespaces (only processes of
// this test live there) and deletes them, with their veths and bridge.
func (n *testNet) destroy() {
	for name := range n.index {
		ns := n.ns(name)
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for name := range n.index {
		ns := n.ns(name)
		// A killed process may take a moment to leave; ip netns del only
		// unmounts the name, the kernel frees the namespace after it.
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

// startRedis runs redis-server in namespace r on the bridge's address.
func (n *testNet) startRedis(t *testing.T) string {
	dir := t.TempDir()
	cmd := exec.Command("ip", "netns", "exec", n.ns("r"), "redis-server",
		"--bind", n.addr("r"), "--port", "6379", "--protected-mode", "no", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return "redis://" + n.addr("r") + ":6379"
}

// dialFrom connects a Socket.IO client from inside namespace ns: the
// dialling goroutine's thread enters the namespace, so the socket is made
// there, and the thread is thrown away afterwards (it stays locked).
func (n *testNet) dialFrom(t *testing.T, ns string, opts sioclient.Options) *sioclient.Client {
	t.Helper()
	type result struct {
		c   *sioclient.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open("/run/netns/" + n.ns(ns))
		if err != nil {
			done <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := sioclient.Dial(ctx, opts)
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("connect from namespace %s to %s: %v", ns, opts.URL, r.err)
	}
	return r.c
}

// netHost is a frutos home whose commands run in a host's namespace.
type netHost struct {
	t    *testing.T
	name string
	ns   string
	bin  string
	cfg  string // its frutos.yaml
	env  []string
}

func newNetHost(t *testing.T, n *testNet, bin, name, redisURL, secret string) *netHost {
	dir, err := os.MkdirTemp("", "fmh")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "h")
	cfg := filepath.Join(dir, "frutos.yaml")
	// A fast heartbeat, so that "gone" comes within seconds.
	if err := os.WriteFile(cfg, []byte("node:\n  heartbeat: 200ms\n  ttl: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := &netHost{t: t, name: name, ns: n.ns(name), bin: bin, cfg: cfg, env: append(os.Environ(),
		"FRUTOS_HOME="+home, "REDIS_URL="+redisURL, "FRUTOS_AUTH_SECRET="+secret,
		"FRUTOS_NODE_NAME=host-"+name, "NO_COLOR=1")}
	t.Cleanup(func() {
		h.run("kill")
		if pid := readPIDFile(filepath.Join(home, "daemon.pid")); pid > 0 && processAlive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		os.RemoveAll(dir)
	})
	return h
}

// run executes `frutos --config <the host's file> args...` in the host's
// namespace.
func (h *netHost) run(args ...string) (string, string, int) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns, h.bin, "--config", h.cfg}, args...)...)
	cmd.Env = h.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("run frutos %v in %s: %v", args, h.ns, err)
	}
	return out.String(), errb.String(), code
}

func (h *netHost) ok(args ...string) string {
	h.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.t.Fatalf("host %s: frutos %s: exit %d\nstdout: %s\nstderr: %s", h.name, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (h *netHost) status() control.Status {
	h.t.Helper()
	var st control.Status
	if err := json.Unmarshal([]byte(h.ok("status", "--json")), &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *netHost) fleet() fleetView {
	h.t.Helper()
	var f control.Fleet
	if err := json.Unmarshal([]byte(h.ok("status", "--all-hosts", "--json")), &f); err != nil {
		h.t.Fatal(err)
	}
	return fleetView{f}
}

// fleetView is the fleet with a lookup by name.
type fleetView struct{ control.Fleet }

func (f fleetView) state(name string) string {
	for _, h := range f.Hosts {
		if h.Name == name {
			return h.State
		}
	}
	return ""
}
