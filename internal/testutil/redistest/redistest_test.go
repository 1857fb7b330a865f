package redistest

import (
	"context"
	"testing"
	"time"
)

func TestStartCluster(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Replicas: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(c.Nodes))
	}
	masters := map[string]bool{}
	for slot := 0; slot < 16384; slot += 100 {
		masters[c.MasterOf(ctx, slot).Addr()] = true
	}
	if len(masters) != 3 {
		t.Errorf("slots served by %d masters, want 3", len(masters))
	}
}

func TestStartSentinel(t *testing.T) {
	st := StartSentinel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got := st.MasterAddr(ctx); got != st.Master.Addr() {
		t.Errorf("sentinels name master %q, want %q", got, st.Master.Addr())
	}
}
