package daemon_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/daemon"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// A daemon with a running app is in the fleet, with its workers; delete
// marks it stopped.
func TestDaemonJoinsTheFleet(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	td := startDaemon(t, nil)
	cfg := testConfig(t, td.home, srv.URL(), 2)
	cfg.Node.Name = "fleet-e2e"
	cfg.Node.Heartbeat = configs.Duration(200 * time.Millisecond)
	cfg.Node.TTL = configs.Duration(time.Second)
	td.start(t, cfg)

	fleet := func() []control.Host {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hosts, err := daemon.ReadFleet(ctx, c, cfg.Redis.Key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return hosts
	}
	var h control.Host
	waitFor(t, 30*time.Second, "the host up with 2 workers online", func() bool {
		hosts := fleet()
		if len(hosts) != 1 {
			return false
		}
		h = hosts[0]
		return h.State == control.HostUp && h.WorkersOnline == 2
	})
	st := td.status(t)
	if h.Name != "fleet-e2e" || h.PID != st.Daemon.PID || h.Version != "test" || h.App != cfg.App ||
		h.Address != fmt.Sprintf("127.0.0.1:%d", st.Port) || h.Memory == 0 {
		t.Errorf("record %+v for status %+v", h, st.Daemon)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := opErr(td.client.Delete(ctx)); err != nil {
		t.Fatal(err)
	}
	if hosts := fleet(); len(hosts) != 1 || hosts[0].State != control.HostStopped || hosts[0].ID != h.ID {
		t.Errorf("after delete: %+v", hosts)
	}
}
