package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/redisctl"
)

// Sources are where Gather looks.
type Sources struct {
	Config    *configs.Config // nil when ConfigErr is set
	ConfigErr error
	// Redis is the Redis the cluster uses (resolved by the caller the way
	// ping does), or nil with RedisErr saying why there is none.
	Redis         *redisctl.Target
	RedisEmbedded bool
	RedisErr      error
	Daemon        *control.Client
	// UnitDirs are the systemd unit directories to look for frutos.service
	// in (UnitDirs(getenv) gives systemd's own).
	UnitDirs []string
}

// Gather reads the facts the checks need; ctx bounds what it asks Redis
// and the daemon. It changes nothing (no file, no key is written).
func Gather(ctx context.Context, s Sources) Facts {
	if s.ConfigErr != nil {
		return Facts{ConfigErr: s.ConfigErr}
	}
	cfg := s.Config
	f := Facts{Env: cfg.Env, Sharded: cfg.Redis.Sharded, SecretEnv: cfg.Auth.SecretEnv, SecretLen: len(cfg.Auth.Secret),
		SecretGenerated: cfg.Auth.Secret == "", CORS: cfg.CORS.Origins, MaxConnections: cfg.Limits.MaxConnections,
		Workers: cfg.Instances.Count(), PubSubHard: -1, Somaxconn: readInt("/proc/sys/net/core/somaxconn")}

	f.RedisErr, f.RedisEmbedded = s.RedisErr, s.RedisEmbedded
	if s.Redis != nil && f.RedisErr == nil {
		gatherRedis(ctx, s.Redis, &f)
	}

	f.DaemonErr = s.DaemonErr(ctx, &f)
	f.NoFile = openFilesLimit(f.Status.Daemon.PID)
	f.LogDir = cfg.LogsDir()
	f.LogDirFree, f.LogDirErr = writableFree(f.LogDir)
	f.UnitPath, f.UnitEnabled = findUnit(s.UnitDirs, "frutos.service")
	return f
}

// DaemonErr asks the daemon for its status into f.Status.
func (s Sources) DaemonErr(ctx context.Context, f *Facts) error {
	if s.Daemon == nil {
		return control.ErrNotRunning
	}
	st, err := s.Daemon.Status(ctx)
	if err == nil {
		f.Status = st
	}
	return err
}

func gatherRedis(ctx context.Context, t *redisctl.Target, f *Facts) {
	f.RedisURL = t.URL
	res, err := t.Ping(ctx, 1)
	if err != nil {
		f.RedisErr = err
		return
	}
	f.RedisVersion, f.RedisMode = res.Version, res.ServerMode
	c := t.Client
	if v, err := c.ConfigGet(ctx, "maxmemory-policy").Result(); err == nil {
		f.MaxmemPolicy = v["maxmemory-policy"]
	}
	if v, err := c.ConfigGet(ctx, "client-output-buffer-limit").Result(); err == nil {
		f.PubSubHard = pubsubHard(v["client-output-buffer-limit"])
	}
	before := time.Now()
	if tm, err := c.Time(ctx).Result(); err == nil {
		local := before.Add(time.Since(before) / 2)
		f.ClockSkew, f.ClockKnown = local.Sub(tm), true
	}
}

// pubsubHard reads the pubsub class's hard limit from a
// client-output-buffer-limit value ("normal 0 0 0 slave ... pubsub
// 33554432 8388608 60"); -1 when it is not there.
func pubsubHard(v string) int64 {
	fs := strings.Fields(v)
	for i := 0; i+1 < len(fs); i++ {
		if fs[i] == "pubsub" {
			n, err := strconv.ParseInt(fs[i+1], 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// openFilesLimit is the daemon's soft RLIMIT_NOFILE (its workers inherit
// it); this process's when pid is 0 or unreadable.
func openFilesLimit(pid int) uint64 {
	if pid > 0 {
		if p, err := process.NewProcess(int32(pid)); err == nil {
			if limits, err := p.Rlimit(); err == nil {
				for _, l := range limits {
					if l.Resource == process.RLIMIT_NOFILE {
						return l.Soft
					}
				}
			}
		}
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	return rl.Cur
}

// writableFree checks that dir (or, when it does not exist yet, the
// nearest folder above it, where start would create it) is writable, and
// the bytes free there.
func writableFree(dir string) (uint64, error) {
	d := dir
	for {
		if _, err := os.Stat(d); err == nil {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	if err := syscall.Access(d, 2 /* W_OK */); err != nil {
		return 0, &os.PathError{Op: "write", Path: d, Err: err}
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(d, &st); err != nil {
		return 0, &os.PathError{Op: "statfs", Path: d, Err: err}
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// UnitDirs are the directories systemd reads units from: SYSTEMD_UNIT_PATH
// (a trailing ":" adds the defaults, as systemd does), else the defaults.
func UnitDirs(getenv func(string) string, home string) []string {
	defaults := []string{"/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}
	if home != "" {
		defaults = append([]string{filepath.Join(home, ".config", "systemd", "user")}, defaults...)
	}
	p := getenv("SYSTEMD_UNIT_PATH")
	if p == "" {
		return defaults
	}
	var dirs []string
	for _, d := range strings.Split(p, ":") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if strings.HasSuffix(p, ":") {
		dirs = append(dirs, defaults...)
	}
	return dirs
}

// findUnit is the first dir holding name, and whether some *.wants folder
// of dirs links it (systemctl enable).
func findUnit(dirs []string, name string) (path string, enabled bool) {
	for _, d := range dirs {
		if path == "" {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				path = filepath.Join(d, name)
			}
		}
		if m, _ := filepath.Glob(filepath.Join(d, "*.wants", name)); len(m) > 0 {
			enabled = true
		}
	}
	return path, enabled
}

func readInt(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}
