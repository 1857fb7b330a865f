package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// startFour runs a daemon with 4 workers on a Redis of the test.
func startFour(t *testing.T) (*redistest.Server, *testDaemon, *configs.Config) {
	t.Helper()
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), 4)
	td.start(t, cfg)
	td.waitStatus(t, 15*time.Second, "4 online", allOnline(4))
	return rs, td, cfg
}

// clientStats is clients.js's stats answer.
type clientStats struct {
	Clients       int            `json:"clients"`
	Connected     int            `json:"connected"`
	EverConnected int            `json:"everConnected"`
	ConnectErrors map[string]int `json:"connectErrors"`
	Disconnects   map[string]int `json:"disconnects"`
	Upgrades      int            `json:"upgrades"`
	Transports    map[string]int `json:"transports"`
	Events        map[string]int `json:"events"`
	Seq           struct {
		Received, Duplicates, OutOfOrder, MaxGap int
	} `json:"seq"`
	Recovered int `json:"recovered"`
}

func stats(t testing.TB, p *nodefix.Proc) clientStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := p.Do(ctx, map[string]any{"op": "stats"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	var s clientStats
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// connectAll opens one client per user (students, tokens minted here).
func connectAll(t testing.TB, p *nodefix.Proc, users []string) {
	t.Helper()
	tokens := make([]string, len(users))
	for i, u := range users {
		tokens[i] = token(t, u, "student")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := p.Do(ctx, map[string]any{"op": "connect", "tokens": tokens}); err != nil {
		t.Fatal(err)
	}
}

func users(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// With 4 workers on one port, the official client connects, upgrades and
// receives targeted events with default transports, polling only and
// websocket only: every request of every session reaches its worker.
func TestFrontDoorRoutesEverySession(t *testing.T) {
	nodefix.Require(t)
	rs, td, cfg := startFour(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", cfg.Port)
	em := redisadapter.NewEmitter(rs.Client(t), "")
	perMode, events := loadClients(40), 10

	for _, mode := range []struct {
		name       string
		transports []string
		want       string // transport every client ends on
	}{{"default", nil, "websocket"}, {"polling", []string{"polling"}, "polling"}, {"websocket", []string{"websocket"}, "websocket"}} {
		t.Run(mode.name, func(t *testing.T) {
			p := nodefix.StartClients(t, url, mode.transports)
			us := users(mode.name+"-", perMode)
			connectAll(t, p, us)
			var s clientStats
			waitFor(t, 20*time.Second, "all connected on "+mode.want, func() bool {
				s = stats(t, p)
				return s.Connected == perMode && s.Transports[mode.want] == perMode
			})
			for n := range events {
				for _, u := range us {
					if _, err := em.To(rooms.User(u)).Emit(context.Background(), "seq", map[string]any{"user": u, "n": n}); err != nil {
						t.Fatal(err)
					}
				}
			}
			waitFor(t, 20*time.Second, "every event delivered", func() bool {
				s = stats(t, p)
				return s.Seq.Received >= perMode*events
			})
			if len(s.ConnectErrors) != 0 || len(s.Disconnects) != 0 {
				t.Errorf("connect errors %v, disconnects %v (a request reached the wrong worker?)", s.ConnectErrors, s.Disconnects)
			}
			if s.Seq.Received != perMode*events || s.Seq.Duplicates != 0 || s.Seq.OutOfOrder != 0 {
				t.Errorf("delivery: %+v", s.Seq)
			}
			// new sessions were spread over the workers (least loaded first)
			st := td.waitStatus(t, 5*time.Second, "connections polled", func(st control.Status) bool {
				n := 0
				for _, w := range st.Workers {
					n += w.Connections
				}
				return n == perMode
			})
			for _, w := range st.Workers {
				if w.Connections < perMode/8 {
					t.Errorf("worker %d got %d of %d sessions: not balanced", w.ID, w.Connections, perMode)
				}
			}
		})
	}
	// the front door's own health endpoint
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ready_workers":4`) {
		t.Errorf("/healthz = %d %s", resp.StatusCode, body)
	}
	// a session id nobody owns is answered as Engine.IO would
	resp, err = http.Get(url + "/socket.io/?EIO=4&transport=polling&sid=w9g9.nobody")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Session ID unknown") {
		t.Errorf("unknown sid: %d %s", resp.StatusCode, body)
	}
}

// loadRun keeps clients connected and emits a numbered event to each of
// them every period while op runs, then reports what the clients saw.
func loadRun(t *testing.T, td *testDaemon, rs *redistest.Server, port, clients int, op func()) (clientStats, int) {
	t.Helper()
	return loadRunWith(t, redisadapter.NewEmitter(rs.Client(t), ""), port, clients, op)
}

// loadRunWith is loadRun with the emitter of the workers' protocol.
func loadRunWith(t *testing.T, em redisadapter.Emitter, port, clients int, op func()) (clientStats, int) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := nodefix.StartClients(t, url, nil)
	us := users("load-", clients)
	connectAll(t, p, us)
	waitFor(t, 30*time.Second, "all connected", func() bool { return stats(t, p).Connected == clients })

	var rounds atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// about 800 events per second in all, every client every round
		tick := time.NewTicker(max(50*time.Millisecond, time.Duration(clients)*1250*time.Microsecond))
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, u := range us {
				_, _ = em.To(rooms.User(u)).Emit(context.Background(), "seq", map[string]any{"user": u, "n": n})
			}
			rounds.Store(int64(n + 1))
		}
	}()
	// every client has received events (and so holds a recovery offset)
	// before the operation: a client that has received nothing yet cannot
	// be recovered by Socket.IO's protocol
	waitFor(t, 10*time.Second, "events flowing to every client", func() bool { return stats(t, p).Seq.Received >= 3*clients })
	op()
	waitFor(t, 60*time.Second, "every client connected again", func() bool { return stats(t, p).Connected == clients })
	time.Sleep(500 * time.Millisecond) // keep emitting to the reconnected clients for a moment (load shape, not sync)
	close(stop)
	wg.Wait()
	sent := int(rounds.Load()) * clients
	var s clientStats
	waitFor(t, 10*time.Second, "the last events in", func() bool {
		prev := s.Seq.Received
		s = stats(t, p)
		return s.Seq.Received == prev && prev > 0
	})
	return s, sent
}

// Reload of all workers under load: no connection attempt is refused, every
// client ends connected, and the events lost are counted.
func TestReloadUnderLoad(t *testing.T) {
	nodefix.Require(t)
	rs, td, cfg := startFour(t)
	before := td.status(t)

	clients := loadClients(40)
	s, sent := loadRun(t, td, rs, cfg.Port, clients, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := opErr(td.client.Reload(ctx, control.ReloadRequest{})); err != nil {
			t.Fatalf("reload: %v", err)
		}
	})
	after := td.status(t)
	for i, w := range after.Workers {
		if w.PID == before.Workers[i].PID || w.Status != control.StatusOnline {
			t.Errorf("worker %d not replaced: before %d after %+v", w.ID, before.Workers[i].PID, w)
		}
	}
	checkLoadRun(t, "reload of 4 workers", s, sent, clients)
}

// scale 4 -> 2 -> 4 under load: the removed workers drain, no attempt is
// refused, every client ends connected.
func TestScaleUnderLoad(t *testing.T) {
	nodefix.Require(t)
	rs, td, cfg := startFour(t)
	clients := loadClients(40)
	s, sent := loadRun(t, td, rs, cfg.Port, clients, func() {
		for _, n := range []int{2, 4} {
			if err := opErr(td.client.Scale(context.Background(), control.ScaleRequest{Mode: "set", N: n})); err != nil {
				t.Fatalf("scale %d: %v", n, err)
			}
		}
	})
	checkLoadRun(t, "scale 4->2->4", s, sent, clients)
	td.waitStatus(t, 10*time.Second, "4 online", allOnline(4))
}

// checkLoadRun reports what the clients of a loadRun saw and checks that no
// connection attempt was refused, every client ended connected, and every
// reconnection recovered its session with next to no event lost (the goal
// is 0; without session handover about 3% were lost).
func checkLoadRun(t *testing.T, what string, s clientStats, sent, clients int) {
	t.Helper()
	lost, reconnects := sent-s.Seq.Received+s.Seq.Duplicates, sum(s.Disconnects)
	t.Logf("%s, %d clients: sent %d, received %d, lost %d, duplicates %d, reconnections %v, recovered %d",
		what, clients, sent, s.Seq.Received, lost, s.Seq.Duplicates, s.Disconnects, s.Recovered)
	if len(s.ConnectErrors) != 0 {
		t.Errorf("%s: refused connection attempts: %v", what, s.ConnectErrors)
	}
	if lost*200 > sent || s.Recovered != reconnects {
		t.Errorf("%s: lost %d of %d events; %d of %d reconnections recovered their session", what, lost, sent, s.Recovered, reconnects)
	}
	if s.Connected != clients {
		t.Errorf("%s: %d of %d clients connected at the end", what, s.Connected, clients)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// loadClients is how many clients the front door tests run: a small
// number in the suite, more for a measurement run
// (FRUTOS_LOAD_CLIENTS=2000 go test -run 'Reload|Scale|FrontDoor' ./daemon/).
func loadClients(def int) int {
	if n, err := strconv.Atoi(os.Getenv("FRUTOS_LOAD_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return def
}
