package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/control"
)

// threeHosts is a fleet with one host of each state.
func threeHosts() control.Fleet {
	return control.Fleet{Redis: "redis://:xxxxx@10.0.0.5:6379/0", Key: "socket.io-frutos:hosts", Hosts: []control.Host{
		{ID: "web-1-4100-a1b2c3d4", Name: "web-1", State: control.HostUp, Address: "10.0.0.11:3000", PID: 4100, Version: "1.0.0",
			LastSeenSec: 1.2, TTLSec: 15, WorkersOnline: 4, Workers: 4, Connections: 5312, CPU: 14.2, Memory: 260 << 20, RedisLatencyMs: 0.42},
		{ID: "web-2-3900-e5f6a7b8", Name: "web-2", State: control.HostGone, Address: "10.0.0.12:3000", PID: 3900, Version: "1.0.0",
			LastSeenSec: 125, TTLSec: 15, WorkersOnline: 2, Workers: 4, Connections: 2710, CPU: 9.1, Memory: 190 << 20, RedisLatencyMs: 0.51},
		{ID: "web-3-3000-c9d0e1f2", Name: "web-3", State: control.HostStopped, Address: "10.0.0.13:3000", PID: 3000, Version: "0.9.4",
			LastSeenSec: 7300, TTLSec: 15, WorkersOnline: 0, Workers: 0, Memory: 22 << 20},
	}}
}

// fleetSource answers the hosts view with a fixed fleet, counting reads.
type fleetSource struct {
	fleet control.Fleet
	err   error
	reads int
}

func (f *fleetSource) read(context.Context) (control.Fleet, error) {
	f.reads++
	return f.fleet, f.err
}

// withHosts is a screen of four workers with the hosts view on and the
// fleet read once.
func withHosts(t *testing.T, w, h int, msgs ...FleetMsg) Model {
	t.Helper()
	src := &fleetSource{fleet: threeHosts()}
	m := samples(screen(t, w, h, Options{Fleet: src.read}), 3, rising(fourWorkers()))
	m = keys(m, "h")
	for _, msg := range msgs {
		msg.gen = m.hosts.gen
		m = send(m, msg)
	}
	return m
}

func TestTUIHostsGolden(t *testing.T) {
	read := FleetMsg{Fleet: threeHosts(), At: t0}
	tests := []struct {
		name string
		w, h int
		make func(*testing.T) Model
	}{
		{"three_hosts_80x24", 80, 24, func(t *testing.T) Model { return withHosts(t, 80, 24, read) }},
		{"three_hosts_120x30", 120, 30, func(t *testing.T) Model { return withHosts(t, 120, 30, read) }},
		{"three_hosts_60x20", 60, 20, func(t *testing.T) Model { return withHosts(t, 60, 20, read) }},
		{"reading", 80, 24, func(t *testing.T) Model { return withHosts(t, 80, 24) }},
		{"no_host", 80, 24, func(t *testing.T) Model {
			return withHosts(t, 80, 24, FleetMsg{Fleet: control.Fleet{Redis: "redis://10.0.0.5:6379", Key: "socket.io-frutos:hosts"}, At: t0})
		}},
		{"redis_down_after_a_read", 80, 24, func(t *testing.T) Model {
			return withHosts(t, 80, 24, read, FleetMsg{Err: errors.New("dial tcp 10.0.0.5:6379: connect: connection refused"), At: t0})
		}},
		{"many_hosts", 80, 16, func(t *testing.T) Model {
			f := threeHosts()
			for i := 4; i <= 30; i++ {
				h := f.Hosts[0]
				h.Name, h.ID = fmt.Sprintf("web-%d", i), fmt.Sprintf("web-%d-1-00", i)
				f.Hosts = append(f.Hosts, h)
			}
			return withHosts(t, 80, 16, FleetMsg{Fleet: f, At: t0})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { view(t, tt.make(t)) })
	}
}

// Friction (issue 17): the fleet's title said "1 hosts".
func TestHostsViewSaysOneHost(t *testing.T) {
	f := threeHosts()
	f.Hosts = f.Hosts[:1]
	m := withHosts(t, 80, 24, FleetMsg{Fleet: f, At: t0})
	if v := m.View(); !strings.Contains(v, "fleet · 1 host, ") || strings.Contains(v, "1 hosts") {
		t.Errorf("the title of one host:\n%s", v)
	}
}

func TestHostsViewTogglesAndPolls(t *testing.T) {
	src := &fleetSource{fleet: threeHosts()}
	m := samples(screen(t, 80, 24, Options{Fleet: src.read, Interval: time.Second}), 3, rising(fourWorkers()))

	next, cmd := m.Update(keyMsg("h"))
	m = next.(Model)
	if cmd == nil {
		t.Fatal("h: no read of the fleet")
	}
	msg, ok := cmd().(FleetMsg)
	if !ok || src.reads != 1 || len(msg.Fleet.Hosts) != 3 {
		t.Fatalf("h: %T %+v after %d reads", msg, msg, src.reads)
	}
	next, cmd = m.Update(msg)
	m = next.(Model)
	if cmd == nil || !strings.Contains(m.View(), "web-2") {
		t.Fatalf("the fleet is not shown, or the next read is not armed:\n%s", m.View())
	}

	// Worker actions are off while the workers are not on screen.
	fd := &fakeDaemon{}
	m.opts.Daemon = fd
	m = keys(m, "r", "R", "-", "+")
	if m.confirm != nil || m.running != "" || len(fd.sent()) != 0 {
		t.Errorf("a worker action from the hosts view: confirm %v, running %q, sent %v", m.confirm, m.running, fd.sent())
	}

	// h again: the workers are back, and the reads of the old view stop.
	stale := m.hosts.gen
	m = keys(m, "h")
	if strings.Contains(m.View(), "web-2") || !strings.Contains(m.View(), "4/4 up") {
		t.Fatalf("h did not bring the workers back:\n%s", m.View())
	}
	if _, cmd := m.Update(fleetPollMsg{gen: stale}); cmd != nil {
		t.Error("a hidden view is still polled")
	}
	next, _ = m.Update(FleetMsg{Fleet: control.Fleet{}, At: t0, gen: stale})
	if next.(Model).hosts.fleet.Key != threeHosts().Key {
		t.Error("a stale read replaced the fleet")
	}
}

func TestHostsViewNeedsAFleetSource(t *testing.T) {
	m := keys(samples(screen(t, 80, 24, Options{}), 1, rising(fourWorkers())), "h")
	if m.hosts.shown || !strings.Contains(m.View(), "no fleet view here") {
		t.Fatalf("h without a fleet source:\n%s", m.View())
	}
}
