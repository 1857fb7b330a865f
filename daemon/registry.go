package daemon

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
)

// The fleet registry: every daemon with a running app keeps a record of
// itself in one Redis hash shared by all hosts, and a separate "alive" key
// that expires after node.ttl. A host is up while its alive key exists and
// gone once it has expired; deciding it with a Redis TTL, not by comparing
// clocks, keeps hosts with skewed clocks from looking gone (or up). The
// record stays after the alive key expires, so a host that vanished is
// listed as gone, until node.retention has passed since it was last seen;
// then any daemon's heartbeat prunes it. A daemon that stops cleanly (kill,
// delete, a signal) marks its record stopped and deletes its alive key.
//
// Keys, under the adapter's prefix (redis.key, default "socket.io"):
//
//	<key>-frutos:hosts           hash: host id -> control.Host as JSON
//	<key>-frutos:alive:<host id> string with a TTL of node.ttl

// HostsKey is the hash holding every host's record.
func HostsKey(prefix string) string { return prefix + "-frutos:hosts" }

func aliveKey(prefix, id string) string { return prefix + "-frutos:alive:" + id }

// pruneEvery is how many heartbeats go between two prunes of the records
// older than node.retention.
const pruneEvery = 12

// registry publishes this daemon's heartbeat until stop.
type registry struct {
	client    redis.UniversalClient
	prefix    string
	every     time.Duration
	ttl       time.Duration
	retention time.Duration
	self      control.Host // the fields that do not change
	snapshot  func() control.Status
	log       *slog.Logger
	failing   atomic.Int64 // heartbeats failed in a row

	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// startRegistry starts heartbeating for the app of cfg, whose public port
// is port. snapshot gives the current process table.
func startRegistry(client redis.UniversalClient, redisAddr string, cfg *configs.Config, port int, version string,
	snapshot func() control.Status, log *slog.Logger) *registry {
	name := nodeName(cfg)
	self := control.Host{
		ID: name + "-" + strconv.Itoa(os.Getpid()) + "-" + randomHex(4), Name: name,
		Address: advertisedAddress(cfg, redisAddr, port), PID: os.Getpid(), Version: version,
		App: cfg.App, Env: cfg.Env, StartedAt: time.Now().UTC().Truncate(time.Millisecond),
		TTLSec: cfg.Node.TTL.Duration().Seconds(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &registry{client: client, prefix: cfg.Redis.Key, every: cfg.Node.Heartbeat.Duration(),
		ttl: cfg.Node.TTL.Duration(), retention: cfg.Node.Retention.Duration(), self: self,
		snapshot: snapshot, log: log.With("component", "registry", "host", self.ID),
		cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r
}

// stop ends the heartbeat and marks the record stopped, so the fleet view
// says the host left on purpose. It must not be called with Daemon.mu held:
// a heartbeat in flight reads the status.
func (r *registry) stop() {
	r.once.Do(func() {
		r.cancel()
		<-r.done
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rec := r.self
		rec.State, rec.LastSeen = control.HostStopped, time.Now().UTC()
		b, _ := json.Marshal(rec)
		pipe := r.client.Pipeline()
		pipe.HSet(ctx, HostsKey(r.prefix), rec.ID, b)
		pipe.Del(ctx, aliveKey(r.prefix, rec.ID))
		if _, err := pipe.Exec(ctx); err != nil {
			r.log.Warn("could not mark this host stopped in the fleet registry; it will show gone after its TTL", "err", err)
		}
	})
}

// run beats at once, then every interval. Redis being down costs a log
// line now and then, never the daemon: the next beat simply tries again.
func (r *registry) run(ctx context.Context) {
	defer close(r.done)
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	var lastLog time.Time
	for n := 0; ; n++ {
		err := r.beat(ctx, n%pruneEvery == 0)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failing := r.failing.Add(1)
			if failing == 1 || time.Since(lastLog) >= time.Minute {
				r.log.Warn("fleet heartbeat failed; retrying", "err", err, "failures", failing)
				lastLog = time.Now()
			}
		case r.failing.Load() > 0:
			r.log.Info("fleet heartbeat back", "after_failures", r.failing.Swap(0))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// beat writes the record and refreshes the alive key (and the hash's own
// expiry, so a fleet that is all gone leaves nothing behind).
func (r *registry) beat(ctx context.Context, prune bool) error {
	ctx, cancel := context.WithTimeout(ctx, max(r.every, time.Second))
	defer cancel()
	rec := hostRecord(r.self, r.snapshot(), time.Now().UTC())
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	key := HostsKey(r.prefix)
	pipe := r.client.Pipeline()
	pipe.HSet(ctx, key, rec.ID, b)
	pipe.Set(ctx, aliveKey(r.prefix, rec.ID), rec.LastSeen.Format(time.RFC3339Nano), r.ttl)
	pipe.Expire(ctx, key, r.retention)
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	if prune {
		return r.prune(ctx, rec.LastSeen)
	}
	return nil
}

// prune forgets the records last seen more than node.retention ago.
func (r *registry) prune(ctx context.Context, now time.Time) error {
	key := HostsKey(r.prefix)
	all, err := r.client.HGetAll(ctx, key).Result()
	if err != nil {
		return err
	}
	var old []string
	for id, raw := range all {
		var h control.Host
		if json.Unmarshal([]byte(raw), &h) != nil || now.Sub(h.LastSeen) > r.retention {
			old = append(old, id)
		}
	}
	if len(old) == 0 {
		return nil
	}
	return r.client.HDel(ctx, key, old...).Err()
}

// hostRecord is self with the figures of st, as of now.
func hostRecord(self control.Host, st control.Status, now time.Time) control.Host {
	h := self
	h.State, h.LastSeen = control.HostUp, now
	h.Workers = len(st.Workers)
	h.CPU, h.Memory = st.Daemon.CPU, st.Daemon.Memory
	for _, w := range st.Workers {
		if w.Status == control.StatusOnline {
			h.WorkersOnline++
		}
		h.Connections += w.Connections
		h.CPU += w.CPU
		h.Memory += w.Memory
	}
	if st.Redis.Up {
		h.RedisLatencyMs = st.Redis.LatencyMs
	}
	return h
}

// ReadFleet reads every host registered under the key prefix and decides
// its state: stopped if it said so, up while its alive key lives, gone
// after. A host that restarted has a new record; for each name, the older
// records that are not up are left out once a newer one exists, so the
// list shows hosts, not daemon runs. Hosts are sorted by name.
func ReadFleet(ctx context.Context, client redis.UniversalClient, prefix string, now time.Time) ([]control.Host, error) {
	all, err := client.HGetAll(ctx, HostsKey(prefix)).Result()
	if err != nil {
		return nil, fmt.Errorf("read the fleet registry %s: %w", HostsKey(prefix), err)
	}
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	pipe := client.Pipeline()
	alive := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		alive[i] = pipe.Exists(ctx, aliveKey(prefix, id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read the fleet registry's heartbeats: %w", err)
		}
	}
	hosts := make([]control.Host, 0, len(ids))
	for i, id := range ids {
		var h control.Host
		if err := json.Unmarshal([]byte(all[id]), &h); err != nil {
			continue // unreadable: skipped here; the heartbeats prune it
		}
		h.ID = id
		switch {
		case h.State == control.HostStopped:
		case alive[i].Val() > 0:
			h.State = control.HostUp
		default:
			h.State = control.HostGone
		}
		h.LastSeenSec = max(0, now.Sub(h.LastSeen).Seconds())
		hosts = append(hosts, h)
	}
	return latestPerName(hosts), nil
}

// latestPerName keeps, for each name, the records that are up, or else
// only the one seen last.
func latestPerName(hosts []control.Host) []control.Host {
	byName := map[string][]control.Host{}
	for _, h := range hosts {
		byName[h.Name] = append(byName[h.Name], h)
	}
	out := hosts[:0:0]
	for _, same := range byName {
		up := slices.DeleteFunc(slices.Clone(same), func(h control.Host) bool { return h.State != control.HostUp })
		if len(up) > 0 {
			out = append(out, up...)
			continue
		}
		out = append(out, slices.MaxFunc(same, func(a, b control.Host) int { return a.LastSeen.Compare(b.LastSeen) }))
	}
	slices.SortFunc(out, func(a, b control.Host) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// nodeName is node.name, else the machine's host name.
func nodeName(cfg *configs.Config) string {
	if cfg.Node.Name != "" {
		return cfg.Node.Name
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// advertisedAddress is node.address; else the listen address when it is
// a specific one; else the local address this host uses towards Redis
// (found by routing a UDP socket, which sends nothing), with the public
// port; else the host name.
func advertisedAddress(cfg *configs.Config, redisAddr string, port int) string {
	if cfg.Node.Address != "" {
		return cfg.Node.Address
	}
	p := strconv.Itoa(port)
	if ip := net.ParseIP(cfg.Host); ip != nil && !ip.IsUnspecified() {
		return net.JoinHostPort(cfg.Host, p)
	}
	if redisAddr != "" {
		if c, err := net.Dial("udp", redisAddr); err == nil {
			defer c.Close()
			if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
				return net.JoinHostPort(a.IP.String(), p)
			}
		}
	}
	return net.JoinHostPort(nodeName(cfg), p)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
