package configs

import (
	"strings"
	"testing"
	"time"
)

// Validate on hand-built configs: each mutation of Default() must fail with
// the given message (no file position: these values came from no file).
func TestValidateFields(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" = valid
	}{
		{"ipv6 host", func(c *Config) { c.Host = "::" }, ""},
		{"host name", func(c *Config) { c.Host = "localhost" }, ""},
		{"empty host", func(c *Config) { c.Host = "" }, "host: empty; write 0.0.0.0"},
		{"bracketed ipv6", func(c *Config) { c.Host = "[::1]" }, `host: "[::1]": write IPv6 addresses without brackets, like ::1`},
		{"host as url", func(c *Config) { c.Host = "http://x" }, `host: "http://x" is a URL`},
		{"host with spaces", func(c *Config) { c.Host = "my host" }, `host: "my host" is not an IP address or host name`},
		{"empty env", func(c *Config) { c.Env = "" }, `env: "" is not an env`},
		{"instances zero", func(c *Config) { c.Instances = 0 }, "instances: 0 instances cannot serve anything"},
		{"empty home", func(c *Config) { c.Home = "" }, "home: empty"},
		{"relative home", func(c *Config) { c.Home = "state" }, `home: "state" is not an absolute path`},
		{"relative logs dir", func(c *Config) { c.Logs.Dir = "logs" }, `logs.dir: "logs" is not an absolute path`},
		{"empty redis key", func(c *Config) { c.Redis.Key = "" }, "redis.key: empty"},
		{"redis url with odd scheme", func(c *Config) { c.Redis.URL = "redis+sentinel://s:26379/mymaster" }, ""},
		{"unix socket", func(c *Config) { c.Redis.URL = "unix:///run/redis.sock" }, ""},
		{"redis url without host", func(c *Config) { c.Redis.URL = "redis://" }, `redis.url: "redis://" has no host`},
		{"zero request timeout", func(c *Config) { c.Redis.RequestTimeout = 0 }, "redis.request_timeout: must be longer than 0"},
		{"empty origin list", func(c *Config) { c.CORS.Origins = nil }, ""},
		{"origin with port", func(c *Config) { c.CORS.Origins = []string{"http://localhost:5173"} }, ""},
		{"origin with bad port", func(c *Config) { c.CORS.Origins = []string{"http://localhost:99999"} }, `cors.origins[0]: "http://localhost:99999" is not an origin`},
		{"origin with empty port", func(c *Config) { c.CORS.Origins = []string{"http://localhost:"} }, `cors.origins[0]: "http://localhost:" is not an origin`},
		{"origin with user", func(c *Config) { c.CORS.Origins = []string{"https://u@a.example.com"} }, `cors.origins[0]: "https://u@a.example.com" is not an origin`},
		{"origin null", func(c *Config) { c.CORS.Origins = []string{"null"} }, `cors.origins[0]: "null" is not an origin`},
		{"empty date format", func(c *Config) { c.Logs.DateFormat = "" }, "logs.date_format: empty; write a Go layout"},
		{"date format without fields", func(c *Config) { c.Logs.DateFormat = "[ts]" }, `logs.date_format: "[ts]" has no date or time in it`},
		{"zero log size", func(c *Config) { c.Logs.MaxSize = 0 }, "logs.max_size: must be more than 0 (got 0)"},
		{"zero max restarts", func(c *Config) { c.Restart.MaxRestarts = 0 }, "restart.max_restarts: 0; allow at least 1"},
		{"negative memory ceiling", func(c *Config) { c.Restart.MaxMemoryRestart = -1 }, "restart.max_memory_restart: -1 is negative"},
		{"negative orphan grace", func(c *Config) { c.Restart.OrphanGrace = Duration(-1e9) }, "restart.orphan_grace: -1s is negative"},
		{"zero kill timeout", func(c *Config) { c.Restart.KillTimeout = 0 }, "restart.kill_timeout: must be longer than 0"},
		{"production, all set", func(c *Config) {
			c.Env, c.Auth.Secret, c.Redis.URL, c.CORS.Origins = Production, strings.Repeat("s", 32), "redis://r:6379", []string{"https://a.example.com"}
		}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
			}
		})
	}
}

// A list item that is not text is reported at the item.
func TestListItemErrors(t *testing.T) {
	inDir(t, "cors:\n  origins:\n    - https://a.example.com\n    - [x]\n    - true\n")
	_, err := Load(LoadOptions{Getenv: envMap()})
	want := "frutos.yaml:4:7: cors.origins[1]: expected text, got a list\n" +
		"frutos.yaml:5:7: cors.origins[2]: true is a boolean; put it in quotes if you mean the text"
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestAuthLeewayBounds(t *testing.T) {
	for _, tc := range []struct {
		leeway time.Duration
		ok     bool
	}{{0, true}, {5 * time.Second, true}, {5 * time.Minute, true}, {-time.Second, false}, {time.Hour, false}} {
		c := Default()
		c.Auth.Leeway = Duration(tc.leeway)
		err := c.Validate()
		if tc.ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "auth.leeway: must be between 0s and 5m")) {
			t.Errorf("leeway %s: %v", tc.leeway, err)
		}
	}
}
