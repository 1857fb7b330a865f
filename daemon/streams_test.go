package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/redisctl"
)

// startStreams runs a daemon with n workers on the streams adapter.
func startStreams(t *testing.T, n int, tune func(*configs.Config)) (*redistest.Server, *testDaemon, *configs.Config) {
	t.Helper()
	rs := redistest.Start(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, rs.URL(), n)
	cfg.Redis.Adapter = configs.AdapterStreams
	if tune != nil {
		tune(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	td.start(t, cfg)
	td.waitStatus(t, 20*time.Second, fmt.Sprintf("%d online", n), allOnline(n))
	return rs, td, cfg
}

// killBusiest sends SIGKILL to the k workers with the most connections
// and waits until the supervisor has restarted them.
func killBusiest(t *testing.T, td *testDaemon, k int) {
	t.Helper()
	st := td.status(t)
	ws := append([]control.Worker(nil), st.Workers...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Connections > ws[j].Connections })
	killed := map[int]int{}
	for _, w := range ws[:k] {
		if err := syscall.Kill(w.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed[w.ID] = w.PID
		t.Logf("killed worker %d (pid %d, %d connections)", w.ID, w.PID, w.Connections)
	}
	td.waitStatus(t, 30*time.Second, "the killed workers restarted", func(st control.Status) bool {
		for _, w := range st.Workers {
			if pid, ok := killed[w.ID]; ok && (w.PID == pid || w.Status != control.StatusOnline || !w.Ready) {
				return false
			}
		}
		return true
	})
}

// checkNothingLost is checkLoadRun's strict form: every event once, in
// order, every reconnection recovered.
func checkNothingLost(t *testing.T, what string, s clientStats, sent, clients int) {
	t.Helper()
	lost, reconnects := sent-s.Seq.Received+s.Seq.Duplicates, sum(s.Disconnects)
	t.Logf("%s, %d clients: sent %d, received %d, lost %d, duplicates %d, out of order %d, reconnections %v, recovered %d",
		what, clients, sent, s.Seq.Received, lost, s.Seq.Duplicates, s.Seq.OutOfOrder, s.Disconnects, s.Recovered)
	if lost != 0 || s.Seq.Duplicates != 0 || s.Seq.OutOfOrder != 0 {
		t.Errorf("%s: %d lost, %d twice, %d out of order of %d events", what, lost, s.Seq.Duplicates, s.Seq.OutOfOrder, sent)
	}
	if reconnects == 0 || s.Recovered != reconnects {
		t.Errorf("%s: %d of %d reconnections recovered their session", what, s.Recovered, reconnects)
	}
	if len(s.ConnectErrors) != 0 || s.Connected != clients {
		t.Errorf("%s: connect errors %v, %d of %d connected at the end", what, s.ConnectErrors, s.Connected, clients)
	}
}

// With the streams adapter, a worker killed with kill -9 loses no session:
// its clients (the official socket.io-client, reconnecting by itself)
// come back through the front door to other workers with the same socket
// ids, and get every event emitted meanwhile, in order, once; so do those
// of two workers killed at once, and those of a reload.
func TestStreamsKilledWorkersLoseNothing(t *testing.T) {
	nodefix.Require(t)
	for _, c := range []struct {
		name string
		op   func(t *testing.T, td *testDaemon)
	}{
		{"kill-one", func(t *testing.T, td *testDaemon) { killBusiest(t, td, 1) }},
		{"kill-two", func(t *testing.T, td *testDaemon) { killBusiest(t, td, 2) }},
		{"reload", func(t *testing.T, td *testDaemon) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := opErr(td.client.Reload(ctx, control.ReloadRequest{})); err != nil {
				t.Fatalf("reload: %v", err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, td, cfg := startStreams(t, 4, nil)
			em := redisctl.NewEmitter(rs.Client(t), cfg.Redis)
			clients := loadClients(40)
			s, sent := loadRunWith(t, em, cfg.Port, clients, func() { c.op(t, td) })
			checkNothingLost(t, c.name, s, sent, clients)
		})
	}
}

// The HTTP emit endpoint, in both modes: it refuses what it must with a
// JSON error, and what it accepts reaches clients through the front door,
// for every target of `frutos emit`.
func TestEmitEndpoint(t *testing.T) {
	const key = "a-test-emit-key-of-some-length"
	for _, adapter := range []string{configs.AdapterPubSub, configs.AdapterStreams} {
		t.Run(adapter, func(t *testing.T) {
			rs := redistest.Start(t)
			td := startDaemon(t, nil)
			cfg := testConfig(t, td.home, rs.URL(), 2)
			cfg.Redis.Adapter = adapter
			cfg.Emit.Listen = fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
			cfg.Emit.Key = key
			td.start(t, cfg)
			td.waitStatus(t, 20*time.Second, "2 online", allOnline(2))
			url := "http://" + cfg.Emit.Listen + redisctl.EmitPath

			post := func(auth, ctype, body string) (int, map[string]any) {
				t.Helper()
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				var out map[string]any
				if err := json.Unmarshal(b, &out); err != nil {
					t.Fatalf("answer %d is not JSON: %q", resp.StatusCode, b)
				}
				return resp.StatusCode, out
			}
			errCode := func(out map[string]any) string {
				e, _ := out["error"].(map[string]any)
				c, _ := e["code"].(string)
				return c
			}
			good := `{"target": "user", "id": "42", "event": "evidencia_aprobada", "data": {"evidenciaId": 7}}`
			for _, r := range []struct {
				name, auth, ctype, body string
				status                  int
				code                    string
			}{
				{"no key", "", "application/json", good, 401, "unauthorized"},
				{"wrong key", "Bearer nope-" + key, "application/json", good, 401, "unauthorized"},
				{"basic auth", "Basic " + key, "application/json", good, 401, "unauthorized"},
				{"not JSON", "Bearer " + key, "text/plain", good, 415, "unsupported_media_type"},
				{"bad JSON", "Bearer " + key, "application/json", `{"target": "user"`, 400, "bad_request"},
				{"unknown field", "Bearer " + key, "application/json", `{"target": "all", "event": "x", "room": "y"}`, 400, "bad_request"},
				{"unknown target", "Bearer " + key, "application/json", `{"target": "group", "id": "1", "event": "x"}`, 400, "bad_request"},
				{"user without id", "Bearer " + key, "application/json", `{"target": "user", "event": "x"}`, 400, "bad_request"},
				{"reserved event", "Bearer " + key, "application/json", `{"target": "all", "event": "disconnect"}`, 400, "bad_request"},
				{"huge number", "Bearer " + key, "application/json", `{"target": "all", "event": "x", "data": 1e999}`, 400, "bad_request"},
				{"too large", "Bearer " + key, "application/json", `{"target": "all", "event": "x", "data": "` + strings.Repeat("a", 1_100_000) + `"}`, 413, "payload_too_large"},
			} {
				status, out := post(r.auth, r.ctype, r.body)
				if status != r.status || errCode(out) != r.code {
					t.Errorf("%s: %d %v, want %d %s", r.name, status, out, r.status, r.code)
				}
			}
			if resp, err := http.Get(url); err != nil || resp.StatusCode != 405 {
				t.Errorf("GET: %v %v", resp, err)
			}

			got := make(chan sioclient.Event, 8)
			mentor := connectAs(t, cfg.Port, "7", "mentor", func(e sioclient.Event) { got <- e })
			connectAs(t, cfg.Port, "42", "student", func(e sioclient.Event) { got <- e })
			_ = mentor
			for _, body := range []string{
				good,
				`{"target": "mentor", "id": "7", "event": "nueva_evidencia", "data": {"estudiante": "42"}}`,
				`{"target": "room", "id": "user:7", "event": "to-room"}`,
				`{"target": "all", "event": "sistema_mantenimiento", "data": "a las 22:00"}`,
			} {
				var status int
				var out map[string]any
				waitFor(t, 10*time.Second, "the emit accepted and delivered", func() bool {
					status, out = post("Bearer "+key, "application/json; charset=utf-8", body)
					return status == 200 && out["receivers"] == 2.0
				})
				if out["adapter"] != adapter || (adapter == configs.AdapterStreams) != (out["entry"] != nil) {
					t.Errorf("answer %v", out)
				}
			}
			want := map[string]int{"evidencia_aprobada": 1, "nueva_evidencia": 1, "to-room": 1, "sistema_mantenimiento": 2}
			seen := map[string]int{}
			for range 5 {
				select {
				case e := <-got:
					seen[e.Name]++
				case <-time.After(10 * time.Second):
					t.Fatalf("events through the endpoint: got %v, want %v", seen, want)
				}
			}
			if fmt.Sprint(seen) != fmt.Sprint(want) {
				t.Errorf("events through the endpoint: got %v, want %v", seen, want)
			}
			// the key is never in the daemon's or the workers' logs
			for _, f := range logFiles(t, td.home) {
				if bytes.Contains(f, []byte(key)) {
					t.Errorf("the emit key appears in a log")
				}
			}
		})
	}
}

// connectAs opens a websocket client through the public port.
func connectAs(t testing.TB, port int, sub, role string, onEvent func(sioclient.Event)) *sioclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{
		URL: fmt.Sprintf("http://127.0.0.1:%d", port), Auth: map[string]any{"token": token(t, sub, role)}, OnEvent: onEvent,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// logFiles are the contents of every log file of a home.
func logFiles(t testing.TB, home string) [][]byte {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(home, "logs", "*"))
	var out [][]byte
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			out = append(out, b)
		}
	}
	return out
}
