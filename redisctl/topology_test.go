package redisctl

import (
	"context"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Ping on a cluster URL lists the 3 masters with their slots and the 3
// replicas with their masters, each with a latency; a killed node shows
// as failed or unreachable while ping still succeeds.
func TestPingListsClusterNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
	res, err := pingT(t, openT(t, c.URL()), 10*time.Second)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	roles := map[string]int{}
	slots := int64(0)
	for _, n := range res.Nodes {
		roles[n.Role]++
		// A replica that has replicated nothing yet says "loading" (Redis 7.0).
		if (n.State != "ok" && !(n.Role == "replica" && n.State == "loading")) || n.Latency <= 0 {
			t.Errorf("node %+v: want state ok with a latency", n)
		}
		for _, r := range n.Slots {
			slots += r[1] - r[0] + 1
		}
		if n.Role == "replica" && n.Master == "" {
			t.Errorf("replica %s has no master", n.Addr)
		}
	}
	if roles["master"] != 3 || roles["replica"] != 3 || slots != 16384 {
		t.Errorf("roles %v, %d slots; want 3 masters, 3 replicas, 16384 slots: %+v", roles, slots, res.Nodes)
	}

	// A replica dies: ping still works and names it.
	var dead *redistest.Server
	for _, s := range c.Nodes {
		if r, _ := s.Query(context.Background(), "ROLE"); len(r.([]any)) > 0 && r.([]any)[0] == "slave" {
			dead = s
			break
		}
	}
	dead.Stop()
	res, err = pingT(t, openT(t, c.URL()), 10*time.Second)
	if err != nil {
		t.Fatalf("Ping with a replica down: %v", err)
	}
	for _, n := range res.Nodes {
		if n.Addr == dead.Addr() && (n.State == "ok" || n.Latency != 0) {
			t.Errorf("the dead replica is listed as %+v", n)
		}
	}
}

// Ping on a Sentinel URL lists the master the Sentinels name, its replica
// and the three Sentinels.
func TestPingListsSentinelNodes(t *testing.T) {
	st := redistest.StartSentinel(t)
	res, err := pingT(t, openT(t, st.URL()), 10*time.Second)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	want := map[string]string{st.Master.Addr(): "master", st.Replica.Addr(): "replica"}
	for _, s := range st.Sentinels {
		want[s.Addr()] = "sentinel"
	}
	if len(res.Nodes) != len(want) {
		t.Fatalf("nodes %+v, want %v", res.Nodes, want)
	}
	for _, n := range res.Nodes {
		if want[n.Addr] != n.Role || n.State != "ok" || n.Latency <= 0 {
			t.Errorf("node %+v: want role %q, state ok, a latency", n, want[n.Addr])
		}
	}
	// A URL naming one Sentinel still lists all three (the others are
	// found through it), without a latency for those it did not ping.
	res, err = pingT(t, openT(t, "redis+sentinel://"+st.Sentinels[0].Addr()+"?master_name="+redistest.SentinelMaster), 10*time.Second)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if len(res.Nodes) != len(want) {
		t.Errorf("one Sentinel in the URL: nodes %+v, want %d", res.Nodes, len(want))
	}
}
