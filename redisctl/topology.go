package redisctl

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Node is one server of a Redis Cluster or of a Sentinel setup, as `frutos
// ping` lists them.
type Node struct {
	Addr string `json:"addr"`
	// Role is master or replica (cluster, sentinel), or sentinel.
	Role string `json:"role"`
	// Master is a replica's master.
	Master string `json:"master,omitempty"`
	// Slots are a cluster master's slot ranges, [start, end] inclusive.
	Slots [][2]int64 `json:"slots,omitempty"`
	// State is "ok", or what is wrong: the cluster's health word (fail,
	// loading), a Sentinel's flags (s_down, o_down, disconnected), or
	// "unreachable" when this PING failed.
	State string `json:"state"`
	// Latency is one PING's round trip (0 when it failed).
	Latency time.Duration `json:"-"`
}

// nodes lists every node t's client can see: for a cluster each master
// and replica (CLUSTER SHARDS: its state is Redis's health word, and an
// idle new replica says "loading") with a PING to each; for Sentinel the
// master the Sentinels name, its replicas and the Sentinels. Standalone
// has none.
func (t *Target) nodes(ctx context.Context) ([]Node, error) {
	switch t.Mode {
	case Cluster:
		return t.clusterNodes(ctx)
	case Sentinel:
		return t.sentinelNodes(ctx)
	}
	return nil, nil
}

func (t *Target) clusterNodes(ctx context.Context) ([]Node, error) {
	cc, ok := t.Client.(*redis.ClusterClient)
	if !ok {
		return nil, nil
	}
	shards, err := cc.ClusterShards(ctx).Result()
	if err != nil {
		return nil, t.Classify(err)
	}
	var out []Node
	for _, sh := range shards {
		var slots [][2]int64
		for _, r := range sh.Slots {
			slots = append(slots, [2]int64{r.Start, r.End})
		}
		master := ""
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				master = nodeAddr(n)
			}
		}
		for _, n := range sh.Nodes {
			node := Node{Addr: nodeAddr(n), Role: n.Role, State: n.Health}
			if n.Role == "master" {
				node.Slots = slots
			} else {
				node.Master = master
			}
			if node.State == "online" {
				node.State = "ok"
			}
			out = append(out, t.pingNode(ctx, node, t.cluster.Username, t.cluster.Password))
		}
	}
	slices.SortFunc(out, func(a, b Node) int {
		if a.Role != b.Role {
			return strings.Compare(a.Role, b.Role) // masters first
		}
		return strings.Compare(a.Addr, b.Addr)
	})
	return out, nil
}

func nodeAddr(n redis.Node) string {
	host := n.Endpoint
	if host == "" || host == "?" {
		host = n.IP
	}
	return net.JoinHostPort(host, strconv.FormatInt(n.Port, 10))
}

func (t *Target) sentinelNodes(ctx context.Context) ([]Node, error) {
	o := t.failover
	var sentinels []Node
	var replicas []map[string]string
	var known []map[string]string // the Sentinels a Sentinel knows
	masterAddr := ""
	var firstErr error
	for _, addr := range o.SentinelAddrs {
		sc := redis.NewSentinelClient(t.nodeOptions(addr, o.SentinelUsername, o.SentinelPassword))
		start := time.Now()
		err := sc.Ping(ctx).Err()
		n := Node{Addr: addr, Role: "sentinel", State: "ok", Latency: time.Since(start)}
		if err == nil && masterAddr == "" {
			if hp, e := sc.GetMasterAddrByName(ctx, o.MasterName).Result(); e == nil && len(hp) == 2 {
				masterAddr = net.JoinHostPort(hp[0], hp[1])
				replicas, _ = sc.Replicas(ctx, o.MasterName).Result()
				known, _ = sc.Sentinels(ctx, o.MasterName).Result()
			}
		}
		sc.Close()
		if err != nil {
			n.State, n.Latency = "unreachable", 0
			if firstErr == nil {
				firstErr = err
			}
		}
		sentinels = append(sentinels, n)
	}
	if masterAddr == "" {
		if firstErr == nil {
			firstErr = fmt.Errorf("no Sentinel names a master %q", o.MasterName)
		}
		return nil, t.Classify(firstErr)
	}
	// Sentinels the URL does not name, found by the one that answered.
	for _, s := range known {
		addr := net.JoinHostPort(s["ip"], s["port"])
		if !slices.ContainsFunc(sentinels, func(n Node) bool { return n.Addr == addr }) {
			sentinels = append(sentinels, Node{Addr: addr, Role: "sentinel", State: sentinelState(s["flags"])})
		}
	}
	out := []Node{t.pingNode(ctx, Node{Addr: masterAddr, Role: "master", State: "ok"}, o.Username, o.Password)}
	for _, r := range replicas {
		n := Node{Addr: net.JoinHostPort(r["ip"], r["port"]), Role: "replica", Master: masterAddr, State: sentinelState(r["flags"])}
		if r["master-link-status"] != "" && r["master-link-status"] != "ok" && n.State == "ok" {
			n.State = "master link " + r["master-link-status"]
		}
		out = append(out, t.pingNode(ctx, n, o.Username, o.Password))
	}
	return append(out, sentinels...), nil
}

// sentinelState reads a Sentinel's flags for a server ("slave",
// "slave,s_down", "sentinel,disconnected"): "ok" or the trouble.
func sentinelState(flags string) string {
	var bad []string
	for f := range strings.SplitSeq(flags, ",") {
		switch f {
		case "s_down", "o_down", "disconnected", "failover_in_progress":
			bad = append(bad, f)
		}
	}
	if len(bad) == 0 {
		return "ok"
	}
	return strings.Join(bad, ",")
}

// pingNode times a PING to a data node, with the given credentials.
func (t *Target) pingNode(ctx context.Context, n Node, user, password string) Node {
	c := redis.NewClient(t.nodeOptions(n.Addr, user, password))
	defer c.Close()
	start := time.Now()
	if err := c.Ping(ctx).Err(); err != nil {
		n.State, n.Latency = "unreachable", 0
		return n
	}
	n.Latency = time.Since(start)
	return n
}

// nodeOptions are one-shot client options for one server of a cluster or
// Sentinel setup, with the URL's TLS settings and timeouts.
func (t *Target) nodeOptions(addr, user, password string) *redis.Options {
	opts := &redis.Options{Addr: addr, Username: user, Password: password,
		ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1, PoolSize: 1}
	if o := t.cluster; o != nil {
		opts.TLSConfig, opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = o.TLSConfig, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
	}
	if o := t.failover; o != nil {
		opts.TLSConfig, opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = o.TLSConfig, o.DialTimeout, o.ReadTimeout, o.WriteTimeout
	}
	if opts.TLSConfig != nil {
		opts.Dialer = tlsDialer(opts.TLSConfig, opts.DialTimeout)
	}
	return opts
}
