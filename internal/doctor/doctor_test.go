package doctor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/redisctl"
)

// healthy is a production deployment where every check is ok.
func healthy() Facts {
	return Facts{
		Env: "production", RedisURL: "redis://10.0.0.5:6379", RedisVersion: "7.2.4", RedisMode: "standalone",
		MaxmemPolicy: "noeviction", PubSubHard: 64 << 20, ClockKnown: true, ClockSkew: 30 * time.Millisecond,
		SecretLen: 64, SecretEnv: "FRUTOS_AUTH_SECRET", CORS: []string{"https://app.example.com"},
		NoFile: 65536, Somaxconn: 4096, MaxConnections: 10000, Workers: 4,
		LogDir: "/var/log/frutos", LogDirFree: 50 << 30,
		UnitPath: "/etc/systemd/system/frutos.service", UnitEnabled: true,
		Status: control.Status{Daemon: control.Daemon{PID: 10}, Workers: []control.Worker{
			{ID: 0, Status: control.StatusOnline, Redis: "connected"}, {ID: 1, Status: control.StatusOnline, Redis: "connected"}}},
	}
}

func TestHealthyDeploymentIsAllOK(t *testing.T) {
	for _, r := range Checks(healthy()) {
		if r.Status != OK || r.Fix != "" {
			t.Errorf("%s: %s %q fix %q", r.Check, r.Status, r.Detail, r.Fix)
		}
	}
	if Failed(Checks(healthy())) {
		t.Error("Failed on a healthy deployment")
	}
}

// Each check's failing (or warning) case, alone: the check names what is
// wrong and how to fix it, and no other check changes.
func TestEachCheckFails(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Facts)
		check  string
		status Status
		detail string
	}{
		{"redis unreachable", func(f *Facts) { f.RedisErr = errors.New("refused: nothing accepts connections") }, "redis", Fail, "refused"},
		{"embedded Redis in production", func(f *Facts) { f.RedisEmbedded = true }, "redis", Fail, "embedded"},
		{"sharded needs Redis 7", func(f *Facts) { f.Sharded, f.RedisVersion = true, "6.2.14" }, "redis", Fail, "redis.sharded needs Redis 7"},
		{"evicting policy", func(f *Facts) { f.MaxmemPolicy = "allkeys-lru" }, "redis memory", Warn, "allkeys-lru"},
		{"policy unreadable", func(f *Facts) { f.MaxmemPolicy = "" }, "redis memory", Warn, "cannot read"},
		{"small pubsub buffer", func(f *Facts) { f.PubSubHard = 1 << 20 }, "redis pubsub buffer", Fail, "hard limit 1 MiB"},
		{"clock skew", func(f *Facts) { f.ClockSkew = -7 * time.Second }, "clock", Fail, "-7s off"},
		{"no secret in production", func(f *Facts) { f.SecretGenerated, f.SecretLen = true, 0 }, "auth secret", Fail, "FRUTOS_AUTH_SECRET is not set"},
		{"short secret in production", func(f *Facts) { f.SecretLen = 8 }, "auth secret", Fail, "holds 8 bytes"},
		{"star CORS in production", func(f *Facts) { f.CORS = []string{"*"} }, "cors", Fail, `"*"`},
		{"no CORS origin", func(f *Facts) { f.CORS = nil }, "cors", Warn, "no origin allowed"},
		{"ulimit -n too low", func(f *Facts) { f.NoFile = 1024 }, "open files", Fail, "ulimit -n is 1024; a worker needs 10100"},
		{"somaxconn too low", func(f *Facts) { f.Somaxconn = 128 }, "somaxconn", Warn, "somaxconn is 128"},
		{"logs not writable", func(f *Facts) { f.LogDirErr = errors.New("permission denied") }, "logs", Fail, "not writable"},
		{"logs disk full", func(f *Facts) { f.LogDirFree = 10 << 20 }, "logs", Fail, "10 MiB free"},
		{"logs disk low", func(f *Facts) { f.LogDirFree = 500 << 20 }, "logs", Warn, "500 MiB free"},
		{"no startup unit in production", func(f *Facts) { f.UnitPath = "" }, "startup", Fail, "no frutos.service"},
		{"unit not enabled", func(f *Facts) { f.UnitEnabled = false }, "startup", Warn, "not enabled"},
		{"daemon not running", func(f *Facts) { f.DaemonErr = control.ErrNotRunning }, "daemon", Warn, "not running"},
		{"worker errored", func(f *Facts) {
			f.Status.Workers[1] = control.Worker{ID: 1, Status: control.StatusErrored, LastExit: "exit status 2"}
		}, "workers", Fail, "1/2 workers online; 1 errored (exit status 2)"},
		{"worker cut off from Redis", func(f *Facts) { f.Status.Workers[0].Redis = "reconnecting" }, "workers", Fail, "0 redis reconnecting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := healthy()
			tc.mutate(&f)
			var hit bool
			for _, r := range Checks(f) {
				if r.Check != tc.check {
					if r.Status != OK {
						t.Errorf("other check %s: %s %q", r.Check, r.Status, r.Detail)
					}
					continue
				}
				hit = true
				if r.Status != tc.status || !strings.Contains(r.Detail, tc.detail) || r.Fix == "" {
					t.Errorf("%s: %s %q (fix %q); want %s containing %q, with a fix", r.Check, r.Status, r.Detail, r.Fix, tc.status, tc.detail)
				}
			}
			if !hit {
				t.Errorf("no %s check", tc.check)
			}
			if got := Failed(Checks(f)); got != (tc.status == Fail) {
				t.Errorf("Failed = %v", got)
			}
		})
	}
}

func TestConfigErrorIsTheOnlyCheck(t *testing.T) {
	rs := Checks(Facts{ConfigErr: errors.New("frutos.yaml:3:1: port: bad")})
	if len(rs) != 1 || rs[0].Check != "config" || rs[0].Status != Fail || !Failed(rs) {
		t.Errorf("got %+v", rs)
	}
}

func TestDevelopmentWarnsWhereProductionFails(t *testing.T) {
	f := healthy()
	f.Env, f.CORS, f.SecretGenerated, f.SecretLen, f.UnitPath, f.RedisEmbedded, f.RedisURL = "development", []string{"*"}, true, 0, "", true, ""
	for _, r := range Checks(f) {
		if r.Status == Fail {
			t.Errorf("%s fails in development: %q", r.Check, r.Detail)
		}
	}
}

// Gather against a real redis-server configured badly: a 1 MiB pubsub
// buffer and an evicting policy.
func TestGatherReadsRedis(t *testing.T) {
	rs := redistest.Start(t, "--client-output-buffer-limit", "pubsub 1mb 1mb 60", "--maxmemory-policy", "allkeys-lru")
	target, err := redisctl.Open(rs.URL(), redisctl.FailFast())
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	f := healthy()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gatherRedis(ctx, target, &f)
	if f.RedisErr != nil || f.RedisVersion == "" || f.RedisMode != "standalone" {
		t.Fatalf("redis facts: err %v version %q mode %q", f.RedisErr, f.RedisVersion, f.RedisMode)
	}
	if f.PubSubHard != 1<<20 || f.MaxmemPolicy != "allkeys-lru" || !f.ClockKnown || f.ClockSkew.Abs() > time.Second {
		t.Errorf("pubsub hard %d, policy %q, skew %v (known %v)", f.PubSubHard, f.MaxmemPolicy, f.ClockSkew, f.ClockKnown)
	}
}

func TestPubsubHard(t *testing.T) {
	for v, want := range map[string]int64{
		"normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60": 33554432,
		"pubsub 0 0 0": 0, "normal 0 0 0": -1, "pubsub x 0 0": -1, "": -1,
	} {
		if got := pubsubHard(v); got != want {
			t.Errorf("pubsubHard(%q) = %d, want %d", v, got, want)
		}
	}
}

func TestFindUnitAndUnitDirs(t *testing.T) {
	dir := t.TempDir()
	if p, en := findUnit([]string{dir}, "frutos.service"); p != "" || en {
		t.Errorf("empty dir: %q %v", p, en)
	}
	unit := filepath.Join(dir, "frutos.service")
	if err := os.WriteFile(unit, []byte("[Unit]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p, en := findUnit([]string{dir}, "frutos.service"); p != unit || en {
		t.Errorf("installed: %q %v", p, en)
	}
	wants := filepath.Join(dir, "multi-user.target.wants")
	if err := os.Mkdir(wants, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(unit, filepath.Join(wants, "frutos.service")); err != nil {
		t.Fatal(err)
	}
	if p, en := findUnit([]string{dir}, "frutos.service"); p != unit || !en {
		t.Errorf("enabled: %q %v", p, en)
	}
	env := func(v string) func(string) string { return func(string) string { return v } }
	if d := UnitDirs(env("/a:/b"), "/h"); strings.Join(d, " ") != "/a /b" {
		t.Errorf("SYSTEMD_UNIT_PATH=/a:/b: %v", d)
	}
	if d := UnitDirs(env("/a:"), "/h"); d[0] != "/a" || d[1] != "/h/.config/systemd/user" || len(d) < 3 {
		t.Errorf("SYSTEMD_UNIT_PATH=/a: : %v", d)
	}
}

func TestWritableFree(t *testing.T) {
	free, err := writableFree(filepath.Join(t.TempDir(), "not", "yet", "logs"))
	if err != nil || free == 0 {
		t.Errorf("a folder start would create: free %d, err %v", free, err)
	}
}
