package main

import (
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

	a := newNetHost(t, n, bin, "a", redisURL)
	b := newNetHost(t, n, bin, "b", redisURL)
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
	tok, err := jwtauth.Mint("lifecycle-secret", "42", "student", time.Hour)
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

	// kill -9 host B's daemon: host A sees B gone once B's TTL has passed
	// (B's worker outlives it, orphaned, waiting for a daemon to adopt
	// it: the fleet view is about daemons).
	stB := b.status()
	killed := time.Now()
	if err := syscall.Kill(stB.Daemon.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventlog.WaitFor(t, 10*time.Second, "host b's daemon gone", func() bool {
		return !processAlive(stB.Daemon.PID)
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
			// Never this test: its main thread shows there if it ever
			// dialled from the namespace and could not come back.
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
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
// there (it stays there), then returns to the test's namespace. A thread
// that cannot return stays locked, so that no other goroutine runs on it.
func (n *testNet) dialFrom(t *testing.T, ns string, opts sioclient.Options) *sioclient.Client {
	t.Helper()
	type result struct {
		c   *sioclient.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer home.Close()
		c, err := inNetns("/run/netns/"+n.ns(ns), func() (*sioclient.Client, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return sioclient.Dial(ctx, opts)
		})
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatalf("connect from namespace %s to %s: %v", ns, opts.URL, r.err)
	}
	return r.c
}

// inNetns runs fn with the calling thread (locked by the caller) in the
// network namespace at path.
func inNetns[T any](path string, fn func() (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return zero, fmt.Errorf("setns %s: %w", path, err)
	}
	return fn()
}

// netHost is a frutos home whose commands run in a host's namespace
// (ip netns exec), with a configuration file of fast heartbeats.
type netHost struct {
	*cli
	name string
}

func newNetHost(t *testing.T, n *testNet, bin, name, redisURL string) *netHost {
	c := newCLI(t, redisURL)
	cfg := filepath.Join(filepath.Dir(c.home), "frutos.yaml")
	// A fast heartbeat, so that "gone" comes within seconds.
	if err := os.WriteFile(cfg, []byte("node:\n  heartbeat: 200ms\n  ttl: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.bin, c.pre = "ip", []string{"netns", "exec", n.ns(name), bin, "--config", cfg}
	c.env = append(c.env, "FRUTOS_NODE_NAME=host-"+name)
	return &netHost{cli: c, name: name}
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
