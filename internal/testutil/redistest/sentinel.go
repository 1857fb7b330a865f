package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the master name the Sentinels of StartSentinel monitor.
const SentinelMaster = "mymaster"

// Sentinels is a Sentinel-managed Redis owned by a test: a master, one
// replica and three Sentinels (quorum 2, down after one second), all real
// processes on loopback ports.
type Sentinels struct {
	t         testing.TB
	Master    *Server // the master at start (a failover promotes the replica)
	Replica   *Server
	Sentinels []*Server
}

// StartSentinel starts the master, its replica and the Sentinels and waits
// until every Sentinel knows the replica and the other Sentinels (so that
// a failover can be agreed on). Everything stops when the test ends.
func StartSentinel(t testing.TB) *Sentinels {
	t.Helper()
	master := Start(t)
	replica := Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))
	st := &Sentinels{t: t, Master: master, Replica: replica}
	for range 3 {
		st.Sentinels = append(st.Sentinels, startSentinel(t, master.Port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range st.Sentinels {
		for {
			replicas, err1 := s.Query(ctx, "SENTINEL", "REPLICAS", SentinelMaster)
			others, err2 := s.Query(ctx, "SENTINEL", "SENTINELS", SentinelMaster)
			if err1 == nil && err2 == nil && len(asSlice(replicas)) == 1 && len(asSlice(others)) == 2 &&
				strings.Contains(fmt.Sprint(replicas), "master-link-status:ok") {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("sentinel %s never saw the replica and the other sentinels: %v %v / %v %v", s.Addr(), replicas, err1, others, err2)
			case <-time.After(50 * time.Millisecond): // polling a condition with a deadline
			}
		}
	}
	return st
}

// URL is a redis+sentinel:// URL naming every Sentinel.
func (st *Sentinels) URL() string {
	u := "redis+sentinel://" + st.Sentinels[0].Addr() + "?master_name=" + SentinelMaster
	for _, s := range st.Sentinels[1:] {
		u += "&addr=" + s.Addr()
	}
	return u
}

// MasterAddr is the master address the Sentinels agree on ("" while they
// do not).
func (st *Sentinels) MasterAddr(ctx context.Context) string {
	addr := ""
	for _, s := range st.Sentinels {
		r, err := s.Query(ctx, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
		hp := asSlice(r)
		if err != nil || len(hp) != 2 {
			return ""
		}
		a := fmt.Sprintf("%v:%v", hp[0], hp[1])
		if addr != "" && a != addr {
			return ""
		}
		addr = a
	}
	return addr
}

// startSentinel runs one Sentinel monitoring the master on masterPort.
func startSentinel(t testing.TB, masterPort int) *Server {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
		"sentinel down-after-milliseconds %[1]s 1000\n"+
		"sentinel failover-timeout %[1]s 10000\n"+
		"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, masterPort)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startWith(t, []string{conf, "--sentinel"}, nil)
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}
