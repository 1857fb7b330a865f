package redisctl

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

func TestPingHealthyServer(t *testing.T) {
	s := redistest.Start(t)
	tg := openT(t, s.URL()+"/2")
	res, err := pingT(t, tg, 5*time.Second)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if res.Pings != 3 || res.Min <= 0 || res.Min > res.Avg || res.Avg > res.Max || res.PubSub <= 0 {
		t.Errorf("latencies: %d pings min %v avg %v max %v pubsub %v", res.Pings, res.Min, res.Avg, res.Max, res.PubSub)
	}
	if res.Version == "" || res.ServerMode != "standalone" || res.Mode != Standalone || res.URL != s.URL()+"/2" {
		t.Errorf("got version %q server mode %q mode %q url %q", res.Version, res.ServerMode, res.Mode, res.URL)
	}
}

func TestPingUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	redistest.Start(t, "--unixsocket", sock, "--unixsocketperm", "700")
	res, err := pingT(t, openT(t, "unix://"+sock+"?db=1"), 5*time.Second)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if res.ServerMode != "standalone" {
		t.Errorf("server mode %q", res.ServerMode)
	}
}

func TestPingPassword(t *testing.T) {
	s := redistest.Start(t, "--requirepass", "right-pw")
	addr := s.Addr()

	t.Run("right", func(t *testing.T) {
		res, err := pingT(t, openT(t, "redis://:right-pw@"+addr), 5*time.Second)
		if err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if res.URL != "redis://:xxxxx@"+addr {
			t.Errorf("URL %q is not redacted", res.URL)
		}
	})
	t.Run("right with user default", func(t *testing.T) {
		if _, err := pingT(t, openT(t, "redis://default:right-pw@"+addr), 5*time.Second); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
	for name, u := range map[string]string{
		"wrong":   "redis://:wrong-pw@" + addr,
		"missing": "redis://" + addr,
		"user":    "redis://nobody:right-pw@" + addr,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := pingT(t, openT(t, u), 5*time.Second)
			if err == nil || err.Cause != CauseAuth {
				t.Fatalf("Ping = %v, want cause %q", err, CauseAuth)
			}
			if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "right-pw") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

func TestPingFailures(t *testing.T) {
	s := redistest.Start(t)
	tests := []struct {
		name    string
		url     string
		timeout time.Duration
		cause   Cause
		detail  string
	}{
		{"closed port", fmt.Sprintf("redis://127.0.0.1:%d", closedPort(t)), 5 * time.Second, CauseRefused, "nothing accepts connections at 127.0.0.1:"},
		{"silent port", "redis://" + silentServer(t), 300 * time.Millisecond, CauseTimeout, "no answer from 127.0.0.1:"},
		{"TLS to a plain port", "rediss://" + s.Addr(), time.Second, CauseTLS, "is a plain-text Redis port"},
		{"TLS to a silent port", "rediss://" + silentServer(t), 300 * time.Millisecond, CauseTimeout, "no answer from 127.0.0.1:"},
		{"TLS to a web server", "rediss://" + httpServer(t), 5 * time.Second, CauseTLS, "TLS with 127.0.0.1:"},
		{"not redis", "redis://" + httpServer(t), 5 * time.Second, CauseProtocol, ""},
		{"cluster URL on a standalone server", "redis+cluster://" + s.Addr(), 5 * time.Second, CauseWrongMode, "is not a cluster node"},
		{"sentinel URL on a plain server", "redis+sentinel://" + s.Addr() + "?master_name=mymaster", 5 * time.Second, CauseWrongMode, "is not a Sentinel"},
		{"unix socket missing", "unix://" + t.TempDir() + "/nope.sock", 5 * time.Second, CauseRefused, "no socket at"},
		{"DNS", "redis://frutos-no-such-host.invalid:6379", 5 * time.Second, CauseDNS, `cannot resolve host "frutos-no-such-host.invalid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := pingT(t, openT(t, tt.url), tt.timeout)
			if err == nil {
				t.Fatalf("Ping succeeded, want cause %q", tt.cause)
			}
			if err.Cause != tt.cause || !strings.Contains(err.Detail, tt.detail) {
				t.Errorf("Ping = %q (cause %q), want cause %q with %q", err, err.Cause, tt.cause, tt.detail)
			}
			if took := time.Since(start); took > tt.timeout+2*time.Second {
				t.Errorf("took %v with a %v timeout", took, tt.timeout)
			}
		})
	}
}

func TestPingCluster(t *testing.T) {
	node := startClusterNode(t)
	t.Run("cluster URL", func(t *testing.T) {
		res, err := pingT(t, openT(t, "redis+cluster://"+node.Addr()), 5*time.Second)
		if err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if res.Mode != Cluster || res.ServerMode != "cluster" {
			t.Errorf("mode %q server mode %q", res.Mode, res.ServerMode)
		}
	})
	t.Run("standalone URL on a cluster node", func(t *testing.T) {
		_, err := pingT(t, openT(t, node.URL()), 5*time.Second)
		if err == nil || err.Cause != CauseWrongMode || !strings.Contains(err.Hint, "redis+cluster://") {
			t.Fatalf("Ping = %v (hint %q), want %q with a redis+cluster:// hint", err, hint(err), CauseWrongMode)
		}
	})
}

func TestPingSentinel(t *testing.T) {
	master := redistest.Start(t)
	sentinel := startSentinel(t, master.Addr())
	t.Run("sentinel URL", func(t *testing.T) {
		res, err := pingT(t, openT(t, "redis+sentinel://"+sentinel+"?master_name=mymaster"), 5*time.Second)
		if err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if res.Mode != Sentinel || res.ServerMode != "standalone" {
			t.Errorf("mode %q server mode %q", res.Mode, res.ServerMode)
		}
	})
	t.Run("unknown master", func(t *testing.T) {
		_, err := pingT(t, openT(t, "redis+sentinel://"+sentinel+"?master_name=nope"), 5*time.Second)
		if err == nil || err.Cause != CauseWrongMode || !strings.Contains(err.Detail, `no master named "nope"`) {
			t.Fatalf("Ping = %v, want %q naming the master", err, CauseWrongMode)
		}
	})
	t.Run("standalone URL on a sentinel", func(t *testing.T) {
		_, err := pingT(t, openT(t, "redis://"+sentinel), 5*time.Second)
		if err == nil || err.Cause != CauseWrongMode || !strings.Contains(err.Hint, "redis+sentinel://") {
			t.Fatalf("Ping = %v (hint %q), want %q with a redis+sentinel:// hint", err, hint(err), CauseWrongMode)
		}
	})
}

func hint(e *Error) string {
	if e == nil {
		return ""
	}
	return e.Hint
}
