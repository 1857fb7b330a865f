package daemon

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// fleetConfig is a configuration with a fast heartbeat, for host name.
func fleetConfig(name string) *configs.Config {
	cfg := configs.Default()
	cfg.Redis.Key = "fleettest"
	cfg.Node.Name = name
	cfg.Node.Heartbeat = configs.Duration(100 * time.Millisecond)
	cfg.Node.TTL = configs.Duration(time.Second)
	cfg.Node.Retention = configs.Duration(time.Hour)
	return cfg
}

func twoWorkers() control.Status {
	return control.Status{
		Daemon: control.Daemon{CPU: 1, Memory: 10 << 20},
		Redis:  control.Redis{Up: true, LatencyMs: 0.25},
		Workers: []control.Worker{
			{ID: 0, Status: control.StatusOnline, Connections: 7, CPU: 2, Memory: 40 << 20},
			{ID: 1, Status: control.StatusLaunching, Connections: 0, CPU: 0.5, Memory: 20 << 20},
		},
	}
}

// logCounter counts the daemon's log records by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[r.Message]++
	return nil
}
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCounter) WithGroup(string) slog.Handler      { return l }
func (l *logCounter) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs[msg]
}

func readFleet(t *testing.T, c redis.UniversalClient, prefix string) []control.Host {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hosts, err := ReadFleet(ctx, c, prefix, time.Now())
	if err != nil {
		t.Fatalf("ReadFleet: %v", err)
	}
	return hosts
}

// waitHost waits until the fleet lists name in state.
func waitHost(t *testing.T, c redis.UniversalClient, prefix, name, state string) control.Host {
	t.Helper()
	var got control.Host
	eventlog.WaitFor(t, 10*time.Second, name+" "+state, func() bool {
		for _, h := range readFleet(t, c, prefix) {
			if h.Name == name && h.State == state {
				got = h
				return true
			}
		}
		return false
	})
	return got
}

func TestRegistryPublishesThenSaysGoodbye(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	cfg := fleetConfig("host-a")
	cfg.Redis.URL = "redis://:hunter2@" + srv.Addr()
	cfg.Auth.Secret = "jwt-secret-never-published"
	r := startRegistry(c, srv.Addr(), cfg, 3000, "1.2.3", twoWorkers, slog.New(slog.DiscardHandler))
	t.Cleanup(r.stop)

	h := waitHost(t, c, cfg.Redis.Key, "host-a", control.HostUp)
	if h.Address != "127.0.0.1:3000" || h.Version != "1.2.3" || h.WorkersOnline != 1 || h.Workers != 2 ||
		h.Connections != 7 || h.CPU != 3.5 || h.Memory != 70<<20 || h.RedisLatencyMs != 0.25 || h.TTLSec != 1 ||
		h.StartedAt.IsZero() || h.LastSeen.IsZero() || !strings.HasPrefix(h.ID, "host-a-") {
		t.Errorf("record: %+v", h)
	}
	raw, err := c.HGet(context.Background(), HostsKey("fleettest"), h.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "jwt-secret-never-published"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the record holds a secret: %s", raw)
		}
	}

	r.stop()
	st := waitHost(t, c, cfg.Redis.Key, "host-a", control.HostStopped)
	if st.ID != h.ID {
		t.Errorf("stopped record %s, want %s", st.ID, h.ID)
	}
	if n, _ := c.Exists(context.Background(), aliveKey("fleettest", h.ID)).Result(); n != 0 {
		t.Errorf("the alive key outlived a clean stop")
	}
}

// A host that stops heartbeating without a goodbye (kill -9, a cut
// cable) is still listed, as gone, once its TTL has passed.
func TestRegistryHostGoneAfterTTL(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	a := startRegistry(c, srv.Addr(), fleetConfig("host-a"), 3000, "1", twoWorkers, slog.New(slog.DiscardHandler))
	t.Cleanup(a.stop)
	b := startRegistry(c, srv.Addr(), fleetConfig("host-b"), 3000, "1", twoWorkers, slog.New(slog.DiscardHandler))
	waitHost(t, c, "fleettest", "host-b", control.HostUp)

	b.cancel() // dies: no goodbye
	<-b.done
	gone := waitHost(t, c, "fleettest", "host-b", control.HostGone)
	if gone.LastSeenSec < 1 || gone.Workers != 2 {
		t.Errorf("gone record: %+v", gone)
	}
	hosts := readFleet(t, c, "fleettest")
	if len(hosts) != 2 || hosts[0].Name != "host-a" || hosts[0].State != control.HostUp {
		t.Errorf("fleet: %+v", hosts)
	}

	// host-b comes back as a new daemon run: the fleet shows it once, up.
	b2 := startRegistry(c, srv.Addr(), fleetConfig("host-b"), 3000, "2", twoWorkers, slog.New(slog.DiscardHandler))
	t.Cleanup(b2.stop)
	eventlog.WaitFor(t, 10*time.Second, "host-b back, once", func() bool {
		hosts := readFleet(t, c, "fleettest")
		return len(hosts) == 2 && hosts[1].Name == "host-b" && hosts[1].State == control.HostUp && hosts[1].Version == "2"
	})
}

// Redis going away costs a log line, not a line per heartbeat, and the
// heartbeat resumes when Redis is back.
func TestRegistrySurvivesRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	logs := &logCounter{msgs: map[string]int{}}
	r := startRegistry(c, srv.Addr(), fleetConfig("host-a"), 3000, "1", twoWorkers, slog.New(logs))
	t.Cleanup(r.stop)
	first := waitHost(t, c, "fleettest", "host-a", control.HostUp)

	srv.Stop()
	eventlog.WaitFor(t, 10*time.Second, "a failed heartbeat logged", func() bool {
		return logs.count("fleet heartbeat failed; retrying") > 0
	})
	eventlog.WaitFor(t, 10*time.Second, "five failed heartbeats", func() bool { return r.failing.Load() >= 5 })
	if n := logs.count("fleet heartbeat failed; retrying"); n != 1 {
		t.Errorf("%d warnings during one short outage, want 1", n)
	}

	srv.Restart()
	eventlog.WaitFor(t, 10*time.Second, "heartbeat back", func() bool {
		return logs.count("fleet heartbeat back") == 1
	})
	h := waitHost(t, c, "fleettest", "host-a", control.HostUp)
	if !h.LastSeen.After(first.LastSeen) {
		t.Errorf("last seen %s did not move past %s", h.LastSeen, first.LastSeen)
	}
}

func TestRegistryPrunesPastRetention(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	ctx := context.Background()
	old, _ := json.Marshal(control.Host{ID: "old-1", Name: "old", State: control.HostUp, LastSeen: time.Now().Add(-2 * time.Hour)})
	recent, _ := json.Marshal(control.Host{ID: "recent-1", Name: "recent", State: control.HostUp, LastSeen: time.Now().Add(-time.Minute)})
	if err := c.HSet(ctx, HostsKey("fleettest"), "old-1", old, "recent-1", recent, "junk", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	r := startRegistry(c, srv.Addr(), fleetConfig("host-a"), 3000, "1", twoWorkers, slog.New(slog.DiscardHandler))
	t.Cleanup(r.stop)
	eventlog.WaitFor(t, 10*time.Second, "old records pruned", func() bool {
		ids, _ := c.HKeys(ctx, HostsKey("fleettest")).Result()
		return len(ids) == 2 && !strings.Contains(strings.Join(ids, " "), "old-1") && !strings.Contains(strings.Join(ids, " "), "junk")
	})
	hosts := readFleet(t, c, "fleettest")
	if len(hosts) != 2 || hosts[1].Name != "recent" || hosts[1].State != control.HostGone {
		t.Errorf("fleet: %+v", hosts)
	}
	if ttl, _ := c.TTL(ctx, HostsKey("fleettest")).Result(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("the hash expires in %s, want within the retention (1h)", ttl)
	}
}

func TestLatestPerName(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 11, 27, 10, min, 0, 0, time.UTC) }
	hosts := []control.Host{
		{ID: "b-2", Name: "b", State: control.HostGone, LastSeen: at(5)},
		{ID: "b-1", Name: "b", State: control.HostStopped, LastSeen: at(1)},
		{ID: "a-1", Name: "a", State: control.HostGone, LastSeen: at(9)},
		{ID: "a-2", Name: "a", State: control.HostUp, LastSeen: at(2)},
		{ID: "c-1", Name: "c", State: control.HostUp, LastSeen: at(3)}, // two live daemons share a name:
		{ID: "c-2", Name: "c", State: control.HostUp, LastSeen: at(3)}, // both are shown
	}
	var got []string
	for _, h := range latestPerName(hosts) {
		got = append(got, h.ID)
	}
	if want := "a-2 b-2 c-1 c-2"; strings.Join(got, " ") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestAdvertisedAddress(t *testing.T) {
	tests := []struct {
		name, address, host, redisAddr, want string
	}{
		{"node.address wins", "lb-target.internal:80", "0.0.0.0", "127.0.0.1:6379", "lb-target.internal:80"},
		{"a specific listen address", "", "127.0.0.2", "127.0.0.1:6379", "127.0.0.2:3000"},
		{"the address towards Redis", "", "0.0.0.0", "127.0.0.1:6379", "127.0.0.1:3000"},
		{"IPv6 towards Redis", "", "::", "[::1]:6379", "[::1]:3000"},
		{"no route: the name", "", "0.0.0.0", "", "host-a:3000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fleetConfig("host-a")
			cfg.Node.Address, cfg.Host = tt.address, tt.host
			if got := advertisedAddress(cfg, tt.redisAddr, 3000); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
