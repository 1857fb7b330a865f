package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of real redis-server processes on loopback
// ports, owned by a test: Masters masters sharing the 16384 slots, each
// with Replicas replicas, a node timeout of one second (so that a killed
// master is replaced within a few seconds).
type Cluster struct {
	t     testing.TB
	Nodes []*Server // masters first, as created
}

// ClusterOptions sizes a cluster.
type ClusterOptions struct {
	Masters  int // default 3 (the minimum redis-cli accepts)
	Replicas int // replicas per master
}

// StartCluster starts the nodes, joins them with `redis-cli --cluster
// create` and waits until every node reports cluster_state:ok and knows
// every other node. Everything stops when the test ends.
func StartCluster(t testing.TB, o ClusterOptions) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not installed (apt-get install -y redis-tools)")
	}
	if o.Masters < 3 {
		o.Masters = 3
	}
	c := &Cluster{t: t}
	n := o.Masters * (1 + o.Replicas)
	addrs := make([]string, n)
	for i := range n {
		// The cluster bus gets a port of its own: port+10000 may be taken
		// or beyond 65535.
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000", "--cluster-port", fmt.Sprint(FreePort(t)),
			"--cluster-allow-pubsubshard-when-down", "yes",
			// A replica may take over however long it was cut off, and
			// syncs at once instead of waiting 5 s for more replicas.
			"--cluster-replica-validity-factor", "0", "--repl-diskless-sync-delay", "0")
		c.Nodes = append(c.Nodes, s)
		addrs[i] = s.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", fmt.Sprint(o.Replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.WaitHealthy(ctx, n)
	return c
}

// URL is a redis+cluster:// URL naming every node as a seed.
func (c *Cluster) URL() string {
	u := "redis+cluster://" + c.Nodes[0].Addr()
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + s.Addr()
	}
	return u
}

// WaitHealthy waits until every running node says cluster_state:ok and
// knows want nodes, every replica is in sync with its master, and every
// slot is served by a running master.
func (c *Cluster) WaitHealthy(ctx context.Context, want int) {
	c.t.Helper()
	var last string
	for {
		if last = c.unhealthy(ctx, want); last == "" {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("redis cluster not healthy: %s", last)
		case <-time.After(50 * time.Millisecond): // polling a condition with a deadline
		}
	}
}

// unhealthy says what is not yet right, or "".
func (c *Cluster) unhealthy(ctx context.Context, want int) string {
	for _, s := range c.running() {
		info, err := s.Query(ctx, "CLUSTER", "INFO")
		if err != nil {
			return fmt.Sprintf("%s: %v", s.Addr(), err)
		}
		text := fmt.Sprint(info)
		if !strings.Contains(text, "cluster_state:ok") || !strings.Contains(text, fmt.Sprintf("cluster_known_nodes:%d", want)) ||
			!strings.Contains(text, "cluster_slots_ok:16384") {
			return fmt.Sprintf("%s: %s", s.Addr(), strings.Join(strings.Fields(text)[:6], " "))
		}
		repl, err := s.Query(ctx, "INFO", "replication")
		if text := fmt.Sprint(repl); err != nil || strings.Contains(text, "role:slave") && !strings.Contains(text, "master_link_status:up") {
			return fmt.Sprintf("%s: replica not in sync (%v)", s.Addr(), err)
		}
	}
	for slot := 0; slot < 16384; slot += 1000 {
		if m := c.MasterOf(ctx, slot); m == nil {
			return fmt.Sprintf("slot %d has no running master", slot)
		}
	}
	return ""
}

// running lists the nodes whose process runs.
func (c *Cluster) running() []*Server {
	var out []*Server
	for _, s := range c.Nodes {
		if s.Running() {
			out = append(out, s)
		}
	}
	return out
}

// MasterOf is the running node that every running node's CLUSTER SLOTS
// names as the master of slot (nil while they disagree or it is down).
func (c *Cluster) MasterOf(ctx context.Context, slot int) *Server {
	var owner string
	for _, s := range c.running() {
		cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		ranges, err := cl.ClusterSlots(ctx).Result()
		cl.Close()
		if err != nil {
			return nil
		}
		addr := ""
		for _, r := range ranges {
			if slot >= r.Start && slot <= r.End && len(r.Nodes) > 0 {
				addr = r.Nodes[0].Addr
			}
		}
		if addr == "" || (owner != "" && addr != owner) {
			return nil
		}
		owner = addr
	}
	for _, s := range c.running() {
		if s.Addr() == owner {
			return s
		}
	}
	return nil
}

// Slot is the cluster slot of a key or channel (CLUSTER KEYSLOT).
func (c *Cluster) Slot(ctx context.Context, key string) int {
	c.t.Helper()
	for _, s := range c.running() {
		n, err := s.Client(c.t).ClusterKeySlot(ctx, key).Result()
		if err == nil {
			return int(n)
		}
	}
	c.t.Fatalf("CLUSTER KEYSLOT %q: no node answers", key)
	return 0
}

// Query sends one command on a fresh connection and returns its reply.
func (s *Server) Query(ctx context.Context, args ...any) (any, error) {
	cl := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer cl.Close()
	return cl.Do(ctx, args...).Result()
}

// Running reports whether the server's process runs (not stopped).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc != nil
}

// MoveSlot moves an empty slot to master to the way redis-cli --cluster
// reshard does (IMPORTING, MIGRATING, then SETSLOT NODE everywhere), and
// waits until every node agrees. Subscribers of the slot's shard channels
// on the old owner get an unsolicited sunsubscribe.
func (c *Cluster) MoveSlot(ctx context.Context, slot int, to *Server) {
	c.t.Helper()
	from := c.MasterOf(ctx, slot)
	if from == nil || from == to {
		c.t.Fatalf("move slot %d to %s: its owner is %v", slot, to.Addr(), from)
	}
	id := func(s *Server) string {
		r, err := s.Query(ctx, "CLUSTER", "MYID")
		if err != nil {
			c.t.Fatalf("CLUSTER MYID on %s: %v", s.Addr(), err)
		}
		return fmt.Sprint(r)
	}
	fromID, toID := id(from), id(to)
	do := func(s *Server, args ...any) {
		if _, err := s.Query(ctx, args...); err != nil {
			c.t.Fatalf("%v on %s: %v", args, s.Addr(), err)
		}
	}
	do(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID)
	do(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID)
	if n, err := from.Query(ctx, "CLUSTER", "COUNTKEYSINSLOT", slot); err != nil || fmt.Sprint(n) != "0" {
		c.t.Fatalf("slot %d holds %v keys (%v): only empty slots are moved", slot, n, err)
	}
	do(to, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	do(from, "CLUSTER", "SETSLOT", slot, "NODE", toID)
	for _, s := range c.running() {
		if s != from && s != to {
			_, _ = s.Query(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID) // replicas refuse; they learn by gossip
		}
	}
	for c.MasterOf(ctx, slot) != to {
		select {
		case <-ctx.Done():
			c.t.Fatalf("slot %d: the nodes never agreed it moved to %s", slot, to.Addr())
		case <-time.After(50 * time.Millisecond): // polling a condition with a deadline
		}
	}
}
