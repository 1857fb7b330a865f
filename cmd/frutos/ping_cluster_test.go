package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

// `frutos ping` on a cluster URL lists every master (with its slots) and
// replica (with its master); --json gives the same as a stable shape.
func TestPingListsClusterNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	c := redistest.StartCluster(t, redistest.ClusterOptions{Replicas: 1})
	env := map[string]string{"FRUTOS_HOME": t.TempDir()}
	code, stdout, stderr := runCLI(t, env, "", "ping", "--redis", c.URL())
	if code != 0 {
		t.Fatalf("frutos ping: exit %d: %s", code, stderr)
	}
	t.Logf("frutos ping on a 3-master cluster:\n%s", stdout)
	if n := len(regexp.MustCompile(`(?m)^  127\.0\.0\.1:\d+ +master +slots \d+-\d+ +ok +\d+\.\d{3}ms$`).FindAllString(stdout, -1)); n != 3 {
		t.Errorf("%d master lines, want 3:\n%s", n, stdout)
	}
	if n := len(regexp.MustCompile(`(?m)^  127\.0\.0\.1:\d+ +replica +of 127\.0\.0\.1:\d+ +(ok|loading) +\d+\.\d{3}ms$`).FindAllString(stdout, -1)); n != 3 {
		t.Errorf("%d replica lines, want 3:\n%s", n, stdout)
	}

	code, stdout, stderr = runCLI(t, env, "", "ping", "--redis", c.URL(), "--json")
	if code != 0 {
		t.Fatalf("frutos ping --json: exit %d: %s", code, stderr)
	}
	var got struct {
		OK    bool `json:"ok"`
		Nodes []struct {
			Addr      string     `json:"addr"`
			Role      string     `json:"role"`
			Master    string     `json:"master"`
			Slots     [][2]int64 `json:"slots"`
			State     string     `json:"state"`
			LatencyMS *float64   `json:"latency_ms"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	slots := int64(0)
	for _, n := range got.Nodes {
		for _, r := range n.Slots {
			slots += r[1] - r[0] + 1
		}
		if n.LatencyMS == nil || n.Addr == "" || (n.Role == "replica") == (n.Master == "") {
			t.Errorf("node %+v", n)
		}
	}
	if !got.OK || len(got.Nodes) != 6 || slots != 16384 {
		t.Errorf("--json: ok %v, %d nodes, %d slots; want 6 nodes and 16384 slots:\n%s", got.OK, len(got.Nodes), slots, stdout)
	}
}

// `frutos ping` on a Sentinel URL lists the master, its replica and the
// Sentinels; when the master name is unknown it exits 4.
func TestPingListsSentinelNodes(t *testing.T) {
	st := redistest.StartSentinel(t)
	env := map[string]string{"FRUTOS_HOME": t.TempDir()}
	code, stdout, stderr := runCLI(t, env, "", "ping", "--redis", st.URL())
	if code != 0 {
		t.Fatalf("frutos ping: exit %d: %s", code, stderr)
	}
	t.Logf("frutos ping through Sentinel:\n%s", stdout)
	for _, want := range []string{
		`(?m)^  ` + regexp.QuoteMeta(st.Master.Addr()) + ` +master +- +ok +\d+\.\d{3}ms$`,
		`(?m)^  ` + regexp.QuoteMeta(st.Replica.Addr()) + ` +replica +of ` + regexp.QuoteMeta(st.Master.Addr()) + ` +ok +\d+\.\d{3}ms$`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("no line matching %s in:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, " sentinel "); n != 3 {
		t.Errorf("%d sentinel lines, want 3:\n%s", n, stdout)
	}
	code, _, stderr = runCLI(t, env, "", "ping", "--redis", strings.Replace(st.URL(), "master_name="+redistest.SentinelMaster, "master_name=nope", 1))
	if code != 4 || !strings.Contains(stderr, `no master named "nope"`) {
		t.Errorf("unknown master: exit %d, stderr %q; want 4 naming the master", code, stderr)
	}
}
