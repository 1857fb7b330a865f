package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// heldClients are websocket clients connected through the public port,
// each counting the events it receives.
type heldClients struct {
	t       *testing.T
	url     string
	clients []*sioclient.Client
	got     []*atomic.Int64
}

func holdClients(t *testing.T, port, n int) *heldClients {
	t.Helper()
	h := &heldClients{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	for i := range n {
		var got atomic.Int64
		c, err := h.dial(sioclient.Websocket, strconv.Itoa(i), func(sioclient.Event) { got.Add(1) })
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		h.clients = append(h.clients, c)
		h.got = append(h.got, &got)
	}
	return h
}

func (h *heldClients) dial(transport, sub string, onEvent func(sioclient.Event)) (*sioclient.Client, error) {
	tok, err := jwtauth.Mint("lifecycle-secret", sub, "student", time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: h.url, Transport: transport,
		Auth: map[string]any{"token": tok}, OnEvent: onEvent})
	if err == nil {
		h.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// dropped is how many clients lost their connection.
func (h *heldClients) dropped() int {
	n := 0
	for _, c := range h.clients {
		select {
		case <-c.Done():
			n++
		default:
		}
	}
	return n
}

// deliver emits one event to every client's user room through Redis and
// waits until each has received it.
func (h *heldClients) deliver(rs *redistest.Server, what string) {
	h.t.Helper()
	em := redisadapter.NewEmitter(rs.Client(h.t), "")
	h.deliverWith(what, func(i int) error {
		_, err := em.To("user:"+strconv.Itoa(i)).Emit(context.Background(), "nueva_tarea", map[string]any{"i": i})
		return err
	})
}

// deliverHTTP is deliver through the daemon's emit endpoint (POST /v1/emit).
func (h *heldClients) deliverHTTP(addr, key, what string) {
	h.t.Helper()
	h.deliverWith(what, func(i int) error {
		body := fmt.Sprintf(`{"target":"user","id":"%d","event":"nueva_tarea","data":{"i":%d}}`, i, i)
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/emit", strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("POST /v1/emit: %s: %s", resp.Status, b)
		}
		return nil
	})
}

// deliverWith sends each client one event with emitTo(i) and waits until
// every one has it.
func (h *heldClients) deliverWith(what string, emitTo func(i int) error) {
	h.t.Helper()
	want := make([]int64, len(h.clients))
	for i := range h.clients {
		want[i] = h.got[i].Load() + 1
		if err := emitTo(i); err != nil {
			h.t.Fatalf("%s: %v", what, err)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for i := range h.clients {
		for h.got[i].Load() < want[i] {
			if time.Now().After(deadline) {
				h.t.Fatalf("%s: client %d did not receive its event (dropped: %d)", what, i, h.dropped())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func waitDead(t *testing.T, pid int, within time.Duration, what string) {
	t.Helper()
	eventlog.WaitFor(t, within, fmt.Sprintf("%s (pid %d) to end", what, pid), func() bool { return !processAlive(pid) })
}

// Issue 16: `kill -9` of the daemon while clients are connected drops
// none of them: the workers keep serving (and delivering what Redis
// brings); the next daemon (here the `frutos start` an operator runs)
// adopts the same processes, routes new sessions to them, restarts one
// that dies afterwards, and stops them on kill.
func TestDaemonKilledWorkersAdoptedNoClientDropped(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	port := redistest.FreePort(t)
	c.ok("start", "--instances", "2", "--port", strconv.Itoa(port))
	st := c.waitStatus("2 online", 30*time.Second, online(2))
	before := map[int]int{}
	for _, w := range st.Workers {
		before[w.ID] = w.PID
	}
	clients := holdClients(t, port, 40)
	clients.deliver(rs, "before the kill")

	if err := syscall.Kill(st.Daemon.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, st.Daemon.PID, 10*time.Second, "the daemon after SIGKILL")
	clients.deliver(rs, "with no daemon")

	t0 := time.Now()
	out := c.ok("start", "--instances", "2", "--port", strconv.Itoa(port))
	t.Logf("start with orphans took %v:\n%s", time.Since(t0).Round(time.Millisecond), out)
	st = c.waitStatus("2 adopted and online", 30*time.Second, func(st control.Status) bool {
		if !online(2)(st) {
			return false
		}
		for _, w := range st.Workers {
			if !w.Ready {
				return false
			}
		}
		return true
	})
	for _, w := range st.Workers {
		if w.PID != before[w.ID] || !w.Adopted {
			t.Errorf("worker %d: pid %d adopted %v; want the same process %d, adopted", w.ID, w.PID, w.Adopted, before[w.ID])
		}
	}
	if n := clients.dropped(); n != 0 {
		t.Fatalf("%d of %d websocket clients dropped across the daemon's kill -9 and adoption", n, len(clients.clients))
	}
	clients.deliver(rs, "after the adoption")

	// new sessions reach the adopted workers, on both transports
	for _, tr := range []string{sioclient.Websocket, sioclient.Polling} {
		cl, err := clients.dial(tr, "new-"+tr, nil)
		if err != nil {
			t.Fatalf("a new %s client after the adoption: %v", tr, err)
		}
		cl.Close()
	}

	// an adopted worker that dies is restarted, as a child would be
	victim := st.Workers[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = c.waitStatus("worker 1 restarted", 30*time.Second, func(st control.Status) bool {
		w := st.Workers[1]
		return online(2)(st) && w.PID != victim.PID && w.PID != 0 && w.Ready
	})
	if w := st.Workers[1]; w.Adopted || w.Generation <= victim.Generation || w.Restarts != victim.Restarts+1 {
		t.Errorf("worker 1 after its restart: %+v (before: generation %d, restarts %d)", w, victim.Generation, victim.Restarts)
	}
	if st.Workers[0].PID != before[0] {
		t.Errorf("worker 0 changed: %d, was %d", st.Workers[0].PID, before[0])
	}

	// kill stops the adopted worker too
	c.ok("kill")
	waitDead(t, before[0], 30*time.Second, "the adopted worker after kill")
}

// A worker that no daemon adopts within restart.orphan_grace drains and
// exits: nothing is left orphaned forever. Until then it keeps its
// clients.
func TestOrphanNobodyAdoptsExitsAfterGrace(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	const grace = 3 * time.Second
	c.pre = []string{"--config", writeConfig(t, "restart:\n  orphan_grace: 3s\n")}
	port := redistest.FreePort(t)
	c.ok("start", "--instances", "1", "--port", strconv.Itoa(port))
	st := c.waitStatus("online", 30*time.Second, online(1))
	worker := st.Workers[0].PID
	clients := holdClients(t, port, 3)

	if err := syscall.Kill(st.Daemon.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDead(t, st.Daemon.PID, 10*time.Second, "the daemon after SIGKILL")
	orphaned := time.Now()
	clients.deliver(rs, "orphaned")
	waitDead(t, worker, grace+20*time.Second, "the orphan")
	if waited := time.Since(orphaned); waited < grace-500*time.Millisecond {
		t.Errorf("the orphan exited %v after its daemon, before its grace (%v)", waited, grace)
	}
	for i, cl := range clients.clients {
		select {
		case <-cl.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("client %d still connected to an exited worker", i)
		}
	}
}

// Issue 16: `frutos update` under load: the old daemon hands the public
// port's socket, the control socket and the workers to a new daemon of
// the binary found now: no connection attempt is refused, no client is
// dropped, the workers are the same processes; then `update --reload`
// moves them to the new binary.
func TestUpdateRefusesAndDropsNothing(t *testing.T) {
	rs := redistest.Start(t)
	c := newCLI(t, rs.URL())
	port := redistest.FreePort(t)
	// the HTTP emit endpoint's listener is handed over too
	emitAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redistest.FreePort(t)))
	const emitKey = "update-test-emit-key-0123456789"
	c.env = append(c.env, "FRUTOS_EMIT_KEY="+emitKey)
	if err := os.WriteFile(filepath.Join(filepath.Dir(c.home), "frutos.yaml"), []byte("emit:\n  listen: "+emitAddr+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.ok("start", "--instances", "2", "--port", strconv.Itoa(port))
	st := c.waitStatus("2 online", 30*time.Second, online(2))
	oldDaemon := st.Daemon.PID
	before := map[int]int{}
	for _, w := range st.Workers {
		before[w.ID] = w.PID
	}
	clients := holdClients(t, port, 40)
	clients.deliver(rs, "before the update")
	clients.deliverHTTP(emitAddr, emitKey, "through the emit endpoint before the update")

	// new connections all along the update, on both transports
	var attempts, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	stop := make(chan struct{})
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		tok, _ := jwtauth.Mint("lifecycle-secret", "probe", "student", time.Hour)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tr := sioclient.Websocket
			if i%2 == 1 {
				tr = sioclient.Polling
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cl, err := sioclient.Dial(ctx, sioclient.Options{URL: clients.url, Transport: tr, Auth: map[string]any{"token": tok}})
			cancel()
			attempts.Add(1)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, &err)
				continue
			}
			cl.Close()
		}
	}()
	waitAttempts := func(n int64) {
		eventlog.WaitFor(t, 20*time.Second, fmt.Sprintf("%d connection attempts", n), func() bool { return attempts.Load() >= n })
	}
	waitAttempts(10)
	t0 := time.Now()
	out := c.ok("update")
	took := time.Since(t0)
	during := attempts.Load()
	waitAttempts(during + 10)
	close(stop)
	<-probing
	t.Logf("update took %v; %d connection attempts, %d failed:\n%s", took.Round(time.Millisecond), attempts.Load(), failed.Load(), out)
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d connection attempts failed across the update; first: %v", n, attempts.Load(), *firstErr.Load())
	}
	if n := clients.dropped(); n != 0 {
		t.Errorf("%d of %d websocket clients dropped across the update", n, len(clients.clients))
	}
	st = c.status()
	if st.Daemon.PID == oldDaemon || st.Port != port {
		t.Errorf("after the update: daemon pid %d (was %d), port %d", st.Daemon.PID, oldDaemon, st.Port)
	}
	for _, w := range st.Workers {
		if w.PID != before[w.ID] || !w.Adopted || w.Status != control.StatusOnline {
			t.Errorf("worker %d after the update: %+v; want pid %d, adopted, online", w.ID, w, before[w.ID])
		}
	}
	waitDead(t, oldDaemon, 60*time.Second, "the old daemon")
	clients.deliver(rs, "after the update")
	clients.deliverHTTP(emitAddr, emitKey, "through the emit endpoint after the update")

	// the workers move to the new binary with a reload
	c.ok("update", "--reload")
	st = c.waitStatus("reloaded", 60*time.Second, online(2))
	for _, w := range st.Workers {
		if w.PID == before[w.ID] || w.Adopted {
			t.Errorf("worker %d after update --reload: %+v; want a new child", w.ID, w)
		}
	}
	if _, err := clients.dial(sioclient.Websocket, "after-reload", nil); err != nil {
		t.Errorf("a client after update --reload: %v", err)
	}
}
