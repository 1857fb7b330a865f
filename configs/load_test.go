package configs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	home, _ := os.UserHomeDir()
	checks := []struct {
		name      string
		got, want any
	}{
		{"app", c.App, "frutos"},
		{"env", c.Env, Development},
		{"instances", c.Instances, InstancesMax},
		{"host", c.Host, "0.0.0.0"},
		{"port", c.Port, 3000},
		{"home", c.Home, filepath.Join(home, ".frutos")},
		{"redis.url", c.Redis.URL, ""},
		{"redis.key", c.Redis.Key, "socket.io"},
		{"redis.sharded", c.Redis.Sharded, false},
		{"redis.request_timeout", c.Redis.RequestTimeout.Duration(), 5 * time.Second},
		{"auth.secret_env", c.Auth.SecretEnv, "FRUTOS_AUTH_SECRET"},
		{"auth.secret", c.Auth.Secret, ""},
		{"cors.credentials", c.CORS.Credentials, true},
		{"limits.max_payload", c.Limits.MaxPayload, ByteSize(1_000_000)},
		{"limits.ping_interval", c.Limits.PingInterval.Duration(), 25 * time.Second},
		{"limits.ping_timeout", c.Limits.PingTimeout.Duration(), 20 * time.Second},
		{"limits.connect_timeout", c.Limits.ConnectTimeout.Duration(), 45 * time.Second},
		{"limits.max_connections", c.Limits.MaxConnections, 10000},
		{"recovery.enabled", c.Recovery.Enabled, true},
		{"recovery.max_disconnection", c.Recovery.MaxDisconnection.Duration(), 2 * time.Minute},
		{"logs.dir", c.Logs.Dir, ""},
		{"logs dir resolved", c.LogsDir(), filepath.Join(home, ".frutos", "logs")},
		{"logs.max_size", c.Logs.MaxSize, ByteSize(10_000_000)},
		{"logs.max_files", c.Logs.MaxFiles, 5},
		{"logs.timestamps", c.Logs.Timestamps, false},
		{"logs.date_format", c.Logs.DateFormat, "2006-01-02T15:04:05.000Z07:00"},
		{"restart.max_restarts", c.Restart.MaxRestarts, 10},
		{"restart.min_uptime", c.Restart.MinUptime.Duration(), 10 * time.Second},
		{"restart.backoff_initial", c.Restart.BackoffInitial.Duration(), 100 * time.Millisecond},
		{"restart.backoff_max", c.Restart.BackoffMax.Duration(), 15 * time.Second},
		{"restart.kill_timeout", c.Restart.KillTimeout.Duration(), 10 * time.Second},
		{"restart.listen_timeout", c.Restart.ListenTimeout.Duration(), 10 * time.Second},
		{"restart.max_memory_restart", c.Restart.MaxMemoryRestart, ByteSize(0)},
		{"restart.orphan_grace", c.Restart.OrphanGrace.Duration(), time.Minute},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if len(c.CORS.Origins) != 1 || c.CORS.Origins[0] != "*" {
		t.Errorf("cors.origins = %q, want [*]", c.CORS.Origins)
	}
}

func TestLoadWithoutFileGivesDefaults(t *testing.T) {
	inDir(t, "")
	got, err := Load(LoadOptions{Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	sameConfig(t, got, Default())
}

func TestLoadFindsFrutosYAMLInWorkingDir(t *testing.T) {
	inDir(t, "port: 4000\n")
	got, err := Load(LoadOptions{Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if got.Port != 4000 {
		t.Fatalf("port = %d, want 4000 from ./frutos.yaml", got.Port)
	}
}

func TestExampleFileIsTheDefaults(t *testing.T) {
	onDisk, err := os.ReadFile("frutos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, Example) {
		t.Fatal("configs.Example differs from configs/frutos.yaml")
	}
	got, err := Load(LoadOptions{File: "frutos.yaml", Getenv: envMap()})
	if err != nil {
		t.Fatalf("load the example: %v", err)
	}
	sameConfig(t, got, Default())
}

func TestExampleFileInProduction(t *testing.T) {
	got, err := Load(LoadOptions{File: "frutos.yaml", Env: Production,
		Getenv: envMap("FRUTOS_AUTH_SECRET", "s3cret-from-env-0123456789abcdef0123")})
	if err != nil {
		t.Fatalf("load the example for production: %v", err)
	}
	want := Default()
	want.Env = Production
	want.Redis.URL = "redis://redis.internal:6379"
	want.Auth.Secret = "s3cret-from-env-0123456789abcdef0123"
	want.CORS.Origins = []string{"https://app.example.com"}
	sameConfig(t, got, want)
}

// full sets every key to something other than its default.
const full = `app: plataforma-frutos
instances: 4
host: 127.0.0.1
port: 8080
home: /srv/frutos
redis:
  url: redis://:pw@redis:6379/2
  key: sio
  sharded: true
  request_timeout: 2s
  adapter: streams
  streams:
    name: frutos-bus
    count: 2
    max_len: 50000
    session_prefix: "frutos:session:"
auth:
  secret_env: JWT_SECRET
  secret: inline-dev-secret
cors:
  origins: [https://a.example.com, "http://localhost:5173"]
  credentials: false
limits:
  max_payload: 512KiB
  ping_interval: 10s
  ping_timeout: 5s
  connect_timeout: 1m
  max_connections: 0
  max_buffered: 256KiB
recovery:
  enabled: false
  max_disconnection: 30s
logs:
  dir: /var/log/frutos
  max_size: 1e6
  max_files: 2
  timestamps: true
  date_format: "2006-01-02 15:04:05"
restart:
  max_restarts: 3
  min_uptime: 5s
  backoff_initial: 1s
  backoff_max: 1m
  kill_timeout: 30s
  listen_timeout: 20s
  max_memory_restart: 300MiB
  orphan_grace: 30s
node:
  name: host-a
  address: 10.0.0.7:8080
  heartbeat: 2s
  ttl: 6s
  retention: 1h
emit:
  listen: 127.0.0.1:3001
  key_env: EMIT_KEY
admin_ui:
  enabled: true
  username: ops
  read_only: true
`

// fullEmitKey is the emit key of fullConfig, from the environment.
const fullEmitKey = "0123456789abcdef-emit"

func fullConfig() *Config {
	return &Config{
		App: "plataforma-frutos", Env: Development, Instances: 4, Host: "127.0.0.1", Port: 8080, Home: "/srv/frutos",
		Redis: Redis{URL: "redis://:pw@redis:6379/2", Key: "sio", Sharded: true, RequestTimeout: Duration(2 * time.Second),
			Adapter: AdapterStreams, Streams: Streams{Name: "frutos-bus", Count: 2, MaxLen: 50_000, SessionPrefix: "frutos:session:"}},
		Auth:     Auth{SecretEnv: "JWT_SECRET", Secret: "inline-dev-secret"},
		CORS:     CORS{Origins: []string{"https://a.example.com", "http://localhost:5173"}, Credentials: false},
		Limits:   Limits{MaxPayload: 512 << 10, PingInterval: Duration(10 * time.Second), PingTimeout: Duration(5 * time.Second), ConnectTimeout: Duration(time.Minute), MaxConnections: 0, MaxBuffered: 256 << 10},
		Recovery: Recovery{Enabled: false, MaxDisconnection: Duration(30 * time.Second)},
		Logs:     Logs{Dir: "/var/log/frutos", MaxSize: 1_000_000, MaxFiles: 2, Timestamps: true, DateFormat: "2006-01-02 15:04:05"},
		Restart: Restart{MaxRestarts: 3, MinUptime: Duration(5 * time.Second), BackoffInitial: Duration(time.Second), BackoffMax: Duration(time.Minute),
			KillTimeout: Duration(30 * time.Second), ListenTimeout: Duration(20 * time.Second), MaxMemoryRestart: 300 << 20,
			OrphanGrace: Duration(30 * time.Second)},
		Node:    Node{Name: "host-a", Address: "10.0.0.7:8080", Heartbeat: Duration(2 * time.Second), TTL: Duration(6 * time.Second), Retention: Duration(time.Hour)},
		Emit:    Emit{Listen: "127.0.0.1:3001", KeyEnv: "EMIT_KEY", Key: fullEmitKey},
		AdminUI: AdminUI{Enabled: true, Username: "ops", ReadOnly: true},
	}
}

func TestFileSetsEveryKey(t *testing.T) {
	inDir(t, full)
	got, err := Load(LoadOptions{Getenv: envMap("EMIT_KEY", fullEmitKey)})
	if err != nil {
		t.Fatal(err)
	}
	sameConfig(t, got, fullConfig())
}

func TestFileOverrides(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(*Config) bool
	}{
		{"empty file", "", func(c *Config) bool { return c.Port == 3000 }},
		{"only comments", "# nothing\n", func(c *Config) bool { return c.Port == 3000 }},
		{"one key leaves its siblings", "limits:\n  ping_interval: 1s\n",
			func(c *Config) bool {
				return c.Limits.PingInterval == Duration(time.Second) && c.Limits.PingTimeout == Duration(20*time.Second)
			}},
		{"empty section changes nothing", "limits:\n", func(c *Config) bool { return c.Limits == Default().Limits }},
		{"flow mapping", "limits: {max_connections: 5, max_payload: 2MB}\n",
			func(c *Config) bool { return c.Limits.MaxConnections == 5 && c.Limits.MaxPayload == 2_000_000 }},
		{"instances max", "instances: max\n", func(c *Config) bool { return c.Instances == InstancesMax }},
		{"instances quoted number", "instances: \"2\"\n", func(c *Config) bool { return c.Instances == 2 }},
		{"empty origin list", "cors:\n  origins: []\n",
			func(c *Config) bool { return c.CORS.Origins != nil && len(c.CORS.Origins) == 0 }},
		{"block list", "cors:\n  origins:\n    - https://a.example.com\n    - https://b.example.com:8443\n",
			func(c *Config) bool {
				return len(c.CORS.Origins) == 2 && c.CORS.Origins[1] == "https://b.example.com:8443"
			}},
		{"number as text", "app: 2024\n", func(c *Config) bool { return c.App == "2024" }},
		{"anchor", "restart:\n  kill_timeout: &t 20s\n  listen_timeout: 20s\n",
			func(c *Config) bool { return c.Restart.KillTimeout == Duration(20*time.Second) }},
		{"unlimited connections", "limits:\n  max_connections: 0\n", func(c *Config) bool { return c.Limits.MaxConnections == 0 }},
		{"explicit key", "? port\n: 4000\n", func(c *Config) bool { return c.Port == 4000 }},
		{"quoted key", "'port': 4000\n", func(c *Config) bool { return c.Port == 4000 }},
		{"dev inline secret", "auth:\n  secret: dev-only\n", func(c *Config) bool { return c.Auth.Secret == "dev-only" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, tc.yaml+"\n")
			c, err := Load(LoadOptions{Getenv: envMap()})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
		})
	}
}

func TestEnvSection(t *testing.T) {
	const file = `port: 4000
limits:
  ping_interval: 10s
  ping_timeout: 8s
cors:
  origins: ["*", "https://dev.example.com"]
env:
  development:
    port: 4001
    auth:
      secret: dev-inline
  production:
    port: 4002
    limits:
      ping_interval: 30s
    redis:
      url: redis://redis.internal:6379
    cors:
      origins: [https://app.example.com]
`
	inDir(t, file)

	dev, err := Load(LoadOptions{Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if dev.Port != 4001 || dev.Auth.Secret != "dev-inline" || dev.Limits.PingInterval != Duration(10*time.Second) ||
		dev.Redis.URL != "" || len(dev.CORS.Origins) != 2 {
		t.Errorf("development = %+v", dev)
	}

	prod, err := Load(LoadOptions{Env: Production, Getenv: envMap("FRUTOS_AUTH_SECRET", strings.Repeat("x", 32))})
	if err != nil {
		t.Fatal(err)
	}
	if prod.Port != 4002 || prod.Auth.Secret != strings.Repeat("x", 32) || prod.Redis.URL != "redis://redis.internal:6379" {
		t.Errorf("production = %+v", prod)
	}
	// Only the keys present in the section override: ping_timeout stays 8s.
	if prod.Limits.PingInterval != Duration(30*time.Second) || prod.Limits.PingTimeout != Duration(8*time.Second) {
		t.Errorf("production limits = %+v", prod.Limits)
	}
	// A list in the section replaces the base list.
	if len(prod.CORS.Origins) != 1 || prod.CORS.Origins[0] != "https://app.example.com" {
		t.Errorf("production origins = %q", prod.CORS.Origins)
	}
	if prod.Env != Production {
		t.Errorf("env = %q", prod.Env)
	}
}

func TestEnvVars(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		check func(*Config) bool
	}{
		{"REDIS_URL", []string{"REDIS_URL", "redis://r:6379"}, func(c *Config) bool { return c.Redis.URL == "redis://r:6379" }},
		{"PORT", []string{"PORT", "8081"}, func(c *Config) bool { return c.Port == 8081 }},
		{"PORT with spaces", []string{"PORT", " 8082 "}, func(c *Config) bool { return c.Port == 8082 }},
		{"empty PORT is unset", []string{"PORT", ""}, func(c *Config) bool { return c.Port == 3000 }},
		{"FRUTOS_HOME", []string{"FRUTOS_HOME", "/tmp/fh"}, func(c *Config) bool { return c.Home == "/tmp/fh" && c.LogsDir() == "/tmp/fh/logs" }},
		{"FRUTOS_NODE_NAME", []string{"FRUTOS_NODE_NAME", " host-b "}, func(c *Config) bool { return c.Node.Name == "host-b" }},
		{"FRUTOS_AUTH_SECRET", []string{"FRUTOS_AUTH_SECRET", "abc"}, func(c *Config) bool { return c.Auth.Secret == "abc" }},
		{"FRUTOS_CORS_ORIGINS", []string{"FRUTOS_CORS_ORIGINS", " https://a.example.com, ,https://b.example.com "},
			func(c *Config) bool {
				return len(c.CORS.Origins) == 2 && c.CORS.Origins[0] == "https://a.example.com" && c.CORS.Origins[1] == "https://b.example.com"
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, "")
			c, err := Load(LoadOptions{Getenv: envMap(tc.env...)})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
		})
	}
}

func TestSecretEnvNamesTheVariable(t *testing.T) {
	inDir(t, "auth:\n  secret_env: JWT_SECRET\n  secret: inline\n")
	c, err := Load(LoadOptions{Getenv: envMap("JWT_SECRET", "from-jwt", "FRUTOS_AUTH_SECRET", "ignored")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Secret != "from-jwt" {
		t.Fatalf("secret = %q, want the value of JWT_SECRET over the inline one", c.Auth.Secret)
	}
	c, err = Load(LoadOptions{Getenv: envMap("FRUTOS_AUTH_SECRET", "ignored")})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Secret != "inline" {
		t.Fatalf("secret = %q, want the inline one (JWT_SECRET is not set)", c.Auth.Secret)
	}
}

func TestFlags(t *testing.T) {
	inDir(t, "")
	c, err := Load(LoadOptions{Getenv: envMap(), Flags: Flags{Instances: "3", Port: 9000, RedisURL: "redis://f:6379", Home: "/tmp/flaghome"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Instances != 3 || c.Port != 9000 || c.Redis.URL != "redis://f:6379" || c.Home != "/tmp/flaghome" {
		t.Fatalf("unexpected config: %+v", c)
	}
	c, err = Load(LoadOptions{Getenv: envMap(), Flags: Flags{Instances: "max"}})
	if err != nil || c.Instances != InstancesMax {
		t.Fatalf("--instances max: %v, %v", c, err)
	}
}

// TestPrecedence sets the port at every level and peels them off one by one.
func TestPrecedence(t *testing.T) {
	inDir(t, "port: 4000\nenv:\n  development:\n    port: 5000\n")
	tests := []struct {
		name string
		opts LoadOptions
		want int
	}{
		{"flag beats env var", LoadOptions{Getenv: envMap("PORT", "6000"), Flags: Flags{Port: 7000}}, 7000},
		{"env var beats env section", LoadOptions{Getenv: envMap("PORT", "6000")}, 6000},
		{"env section beats file", LoadOptions{Getenv: envMap()}, 5000},
		{"file beats default", LoadOptions{Getenv: envMap(), Env: Production}, 4000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Env == Production {
				tc.opts.Getenv = envMap(prodEnv...)
			}
			c, err := Load(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if c.Port != tc.want {
				t.Fatalf("port = %d, want %d", c.Port, tc.want)
			}
		})
	}
	inDir(t, "")
	c, err := Load(LoadOptions{Getenv: envMap()})
	if err != nil || c.Port != 3000 {
		t.Fatalf("default: port = %v, %v", c.Port, err)
	}
}

func TestPathsAreAbsolute(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "etc", "frutos.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("home: state\nlogs:\n  dir: ~/frutos-logs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)

	c, err := Load(LoadOptions{File: cfg, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "etc", "state"); c.Home != want {
		t.Errorf("home = %q, want %q (relative to the file)", c.Home, want)
	}
	if want := filepath.Join(home, "frutos-logs"); c.LogsDir() != want {
		t.Errorf("logs dir = %q, want %q", c.LogsDir(), want)
	}

	c, err = Load(LoadOptions{File: cfg, Getenv: envMap("FRUTOS_HOME", "rel")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(elsewhere, "rel"); c.Home != want {
		t.Errorf("home = %q, want %q (relative to the working dir)", c.Home, want)
	}
}

// CheckSources checks --env, --config and the file's decoding, and not what
// only a running app needs: production without a secret passes.
func TestCheckSources(t *testing.T) {
	tests := []struct {
		name, yaml, file, env string
		want                  string // "" for no error
		fromFlag              bool
	}{
		{name: "nothing given"},
		{name: "production without a secret", yaml: "port: 3000\n", env: Production},
		{name: "unknown env", env: "staging", fromFlag: true,
			want: `flag --env: env: "staging" is not an env; use development or production`},
		{name: "missing file", file: "missing.yaml", fromFlag: true,
			want: `flag --config: missing.yaml: no such file`},
		{name: "file does not decode", yaml: "pory: 3000\n",
			want: `frutos.yaml:1:1: pory: unknown field; did you mean port?`},
		{name: "production section does not decode", yaml: "env:\n  production:\n    port: x\n",
			want: `frutos.yaml:3:5: env.production.port: "x" is not a whole number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, tc.yaml)
			err := CheckSources(LoadOptions{File: tc.file, Env: tc.env, Getenv: envMap()})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *Error starting %q", err, tc.want)
			}
			if ce.FromFlag() != tc.fromFlag {
				t.Fatalf("FromFlag() = %v, want %v", ce.FromFlag(), tc.fromFlag)
			}
		})
	}
}

// Resolve merges without validating: production without a secret gives
// its settings; a source that cannot be read is still an error.
func TestResolve(t *testing.T) {
	dir := inDir(t, "home: state\nenv:\n  production:\n    port: 8080\n")
	if _, err := Load(LoadOptions{Env: Production, Getenv: envMap()}); err == nil {
		t.Fatal("Load accepted production without a secret")
	}
	c, err := Resolve(LoadOptions{Env: Production, Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Home != filepath.Join(dir, "state") || c.Port != 8080 {
		t.Errorf("home %q, port %d; want %q, 8080", c.Home, c.Port, filepath.Join(dir, "state"))
	}
	if _, err := Resolve(LoadOptions{Getenv: envMap("PORT", "abc")}); err == nil {
		t.Error("Resolve accepted PORT=abc")
	}
}
