package configs

import (
	"errors"
	"strings"
	"testing"
)

// Each case loads a file (as ./frutos.yaml) plus environment and flags, and
// expects a message with the file:line:col, the field, and the reason.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   string // --env
		vars  []string
		flags Flags
		file  string // --config
		want  string // the whole message of the first error, or its beginning
	}{
		// Wrong names and types, caught while decoding the file.
		{name: "unknown field", yaml: "limits:\n  ping_intervall: 25s\n",
			want: "frutos.yaml:2:3: limits.ping_intervall: unknown field; did you mean ping_interval?"},
		{name: "unknown top-level field", yaml: "prot: 80\n",
			want: "frutos.yaml:1:1: prot: unknown field; did you mean port?"},
		{name: "unknown field far from any", yaml: "redis:\n  hostname: x\n",
			want: "frutos.yaml:2:3: redis.hostname: unknown field; known fields here: url, key, sharded, request_timeout, adapter, streams"},
		{name: "duration without unit", yaml: "limits:\n  ping_interval: 25\n",
			want: `frutos.yaml:2:3: limits.ping_interval: "25" has no unit; write a duration like 25s`},
		{name: "quoted duration without unit", yaml: "limits:\n  ping_interval: \"25\"\n",
			want: `frutos.yaml:2:3: limits.ping_interval: "25" has no unit; write a duration like 25s`},
		{name: "not a duration", yaml: "restart:\n  min_uptime: soon\n",
			want: `frutos.yaml:2:3: restart.min_uptime: "soon" is not a duration`},
		{name: "port is text", yaml: "port: \"abc\"\n",
			want: `frutos.yaml:1:1: port: "abc" is not a whole number`},
		{name: "port is quoted number", yaml: "port: \"3000\"\n",
			want: `frutos.yaml:1:1: port: "3000" is quoted text; write the number without quotes`},
		{name: "port is a fraction", yaml: "app: x\nport: 3.5\n",
			want: `frutos.yaml:2:1: port: 3.5 is not a whole number`},
		{name: "port is empty", yaml: "port:\n",
			want: `frutos.yaml:1:1: port: has no value`},
		{name: "bool is yes", yaml: "recovery:\n  enabled: yes\n",
			want: `frutos.yaml:2:3: recovery.enabled: "yes" is not true or false`},
		{name: "size is words", yaml: "limits:\n  max_payload: lots\n",
			want: `frutos.yaml:2:3: limits.max_payload: "lots" is not a size`},
		{name: "size unit is ambiguous", yaml: "restart:\n  max_memory_restart: 300M\n",
			want: `frutos.yaml:2:3: restart.max_memory_restart: "300M" is ambiguous; write 300MB (powers of 1000) or 300MiB (powers of 1024)`},
		{name: "instances is words", yaml: "instances: lots\n",
			want: `frutos.yaml:1:1: instances: "lots" is not a number of instances; write a whole number like 4, or max`},
		{name: "instances zero", yaml: "instances: 0\n",
			want: `frutos.yaml:1:1: instances: 0 instances cannot serve anything`},
		{name: "section is a value", yaml: "limits: 5\n",
			want: `frutos.yaml:1:1: limits: expected keys here, indented on the lines below (like max_payload: ...), got 5`},
		{name: "list is a value", yaml: "cors:\n  origins: https://a.example.com\n",
			want: `frutos.yaml:2:3: cors.origins: "https://a.example.com" is not a list`},
		{name: "boolean as text", yaml: "app: true\n",
			want: `frutos.yaml:1:1: app: true is a boolean; put it in quotes if you mean the text`},
		{name: "alias", yaml: "port: &p 3000\nlimits:\n  max_connections: *p\n",
			want: `frutos.yaml:3:3: limits.max_connections: aliases (*name) are not supported`},
		{name: "syntax error", yaml: "port: [1\n",
			want: `frutos.yaml:1:7: invalid YAML: sequence end token ']' not found`},
		{name: "duplicate key", yaml: "port: 1\nport: 2\n",
			want: `frutos.yaml:2:1: invalid YAML: mapping key "port" already defined at [1:1]`},
		{name: "top level is a list", yaml: "- port: 1\n",
			want: `frutos.yaml:1:1: expected keys here`},
		{name: "two documents", yaml: "port: 1\n---\nport: 2\n",
			want: `frutos.yaml:2:1: a second YAML document; a frutos config is one document (remove the ---)`},

		// env sections.
		{name: "unknown env name", yaml: "env:\n  staging:\n    port: 1\n",
			want: `frutos.yaml:2:3: env.staging: unknown env "staging"; the envs are development and production`},
		{name: "mistake in the other env's section", yaml: "env:\n  production:\n    port: abc\n",
			want: `frutos.yaml:3:5: env.production.port: "abc" is not a whole number`},
		{name: "env inside env", yaml: "env:\n  development:\n    env: {}\n",
			want: `frutos.yaml:3:5: env.development.env: env sections cannot contain env`},
		{name: "env is a value", yaml: "env: production\n",
			want: `frutos.yaml:1:1: env: env holds per-env sections`},

		// Impossible values, caught by validation, still located in the file.
		{name: "port out of range", yaml: "app: x\nport: 70000\n",
			want: `frutos.yaml:2:1: port: 70000 is not a TCP port; use 1-65535`},
		{name: "port out of range in env section", yaml: "env:\n  development:\n    port: 70000\n",
			want: `frutos.yaml:3:5: env.development.port: 70000 is not a TCP port; use 1-65535`},
		{name: "max_payload zero", yaml: "limits:\n  max_payload: 0\n",
			want: `frutos.yaml:2:3: limits.max_payload: must be more than 0 (got 0)`},
		{name: "ping_timeout zero", yaml: "limits:\n  ping_timeout: 0s\n",
			want: `frutos.yaml:2:3: limits.ping_timeout: must be longer than 0 (got 0s)`},
		{name: "ping_timeout negative", yaml: "limits:\n  ping_timeout: -1s\n",
			want: `frutos.yaml:2:3: limits.ping_timeout: must be longer than 0 (got -1s)`},
		{name: "negative max_connections", yaml: "limits:\n  max_connections: -1\n",
			want: `frutos.yaml:2:3: limits.max_connections: -1 is negative; write 0 for unlimited`},
		{name: "origin without scheme", yaml: "cors:\n  origins:\n    - https://ok.example.com\n    - app.example.com\n",
			want: `frutos.yaml:4:7: cors.origins[1]: "app.example.com" is not an origin; write scheme://host[:port] like https://app.example.com, or *`},
		{name: "origin with trailing slash", yaml: "cors:\n  origins: [\"https://app.example.com/\"]\n",
			want: `frutos.yaml:2:13: cors.origins[0]: "https://app.example.com/" ends with /; browsers send origins without it: write "https://app.example.com"`},
		{name: "origin with a path", yaml: "cors:\n  origins: [https://app.example.com/app]\n",
			want: `frutos.yaml:2:13: cors.origins[0]: "https://app.example.com/app" has a path`},
		{name: "origin wildcard subdomain", yaml: "cors:\n  origins: [\"https://*.example.com\"]\n",
			want: `frutos.yaml:2:13: cors.origins[0]: "https://*.example.com": wildcard origins are not supported`},
		{name: "origin in capitals", yaml: "cors:\n  origins: [https://App.example.com]\n",
			want: `frutos.yaml:2:13: cors.origins[0]: "https://App.example.com" has capitals`},
		{name: "backoff_initial above backoff_max", yaml: "restart:\n  backoff_initial: 20s\n  backoff_max: 15s\n",
			want: `frutos.yaml:2:3: restart.backoff_initial: backoff_initial (20s) is more than backoff_max (15s); the delay starts at backoff_initial and doubles up to backoff_max`},
		{name: "backoff_initial above default backoff_max", yaml: "restart:\n  backoff_initial: 1m\n",
			want: `frutos.yaml:2:3: restart.backoff_initial: backoff_initial (1m0s) is more than backoff_max (15s)`},
		{name: "backoff_max below default backoff_initial", yaml: "restart:\n  backoff_max: 50ms\n",
			want: `frutos.yaml:2:3: restart.backoff_max: backoff_initial (100ms) is more than backoff_max (50ms)`},
		{name: "host with port", yaml: "host: 0.0.0.0:3000\n",
			want: `frutos.yaml:1:1: host: "0.0.0.0:3000" includes a port; put the port in port:`},
		{name: "redis url without scheme", yaml: "redis:\n  url: localhost:6379\n",
			want: `frutos.yaml:2:3: redis.url: "localhost:6379" is not a Redis URL`},
		{name: "secret_env is a secret", yaml: "auth:\n  secret_env: hunter2!\n",
			want: `frutos.yaml:2:3: auth.secret_env: "hunter2!" is not an environment variable name`},
		{name: "strftime date format", yaml: "logs:\n  date_format: \"%Y-%m-%d\"\n",
			want: `frutos.yaml:2:3: logs.date_format: "%Y-%m-%d" looks like strftime`},
		{name: "app with a slash", yaml: "app: ../x\n",
			want: `frutos.yaml:1:1: app: "../x" is not a usable name`},
		{name: "max_files zero", yaml: "logs:\n  max_files: 0\n",
			want: `frutos.yaml:2:3: logs.max_files: 0; keep at least 1 rotated file`},
		{name: "home is ~user", yaml: "home: ~bob/x\n",
			want: `frutos.yaml:1:1: home: cannot expand "~bob/x": only ~/ (your own home) is supported`},
		{name: "node ttl below two heartbeats", yaml: "node:\n  heartbeat: 5s\n  ttl: 8s\n",
			want: `frutos.yaml:3:3: node.ttl: 8s is less than twice node.heartbeat (5s); one late heartbeat would show the host gone`},
		{name: "node retention below ttl", yaml: "node:\n  retention: 10s\n",
			want: `frutos.yaml:2:3: node.retention: 10s is less than node.ttl (15s); a gone host would vanish before it is shown gone`},
		{name: "node heartbeat zero", yaml: "node:\n  heartbeat: 0s\n",
			want: `frutos.yaml:2:3: node.heartbeat: must be longer than 0 (got 0s)`},
		{name: "node address without port", yaml: "node:\n  address: 10.0.0.7\n",
			want: `frutos.yaml:2:3: node.address: "10.0.0.7" is not host:port`},
		{name: "unknown adapter", yaml: "redis:\n  adapter: kafka\n",
			want: `frutos.yaml:2:3: redis.adapter: "kafka" is not an adapter; use pubsub (the default`},
		{name: "streams count zero", yaml: "redis:\n  adapter: streams\n  streams:\n    count: 0\n",
			want: `frutos.yaml:4:5: redis.streams.count: 0; write a number of streams from 1 to 1024`},
		{name: "streams max_len too short", yaml: "redis:\n  adapter: streams\n  streams:\n    max_len: 10\n",
			want: `frutos.yaml:4:5: redis.streams.max_len: 10 is too short a stream to recover anything; write at least 100`},
		{name: "streams empty session prefix", yaml: "redis:\n  adapter: streams\n  streams:\n    session_prefix: \"\"\n",
			want: `frutos.yaml:4:5: redis.streams.session_prefix: empty`},
		{name: "emit endpoint without a key", yaml: "emit:\n  listen: 127.0.0.1:3001\n",
			want: `frutos.yaml:2:3: emit.listen: FRUTOS_EMIT_KEY is not set; the emit endpoint (emit.listen) never runs without a key`},
		{name: "emit key too short", yaml: "emit:\n  listen: 127.0.0.1:3001\n  key_env: K\n", vars: []string{"K", "short"},
			want: `frutos.yaml:3:3: emit.key_env: the key in K has 5 characters; use a random key of 16 or more`},
		{name: "emit listen without port", yaml: "emit:\n  listen: localhost\n",
			want: `frutos.yaml:2:3: emit.listen: "localhost" is not host:port`},
		{name: "emit key inline", yaml: "emit:\n  key: abc\n",
			want: `frutos.yaml:2:3: emit.key: unknown field`},

		// Environment variables and flags.
		{name: "FRUTOS_NODE_NAME with a space", vars: []string{"FRUTOS_NODE_NAME", "host a"},
			want: `env FRUTOS_NODE_NAME: node.name: "host a" is not a usable name`},
		{name: "FRUTOS_REDIS_ADAPTER unknown", vars: []string{"FRUTOS_REDIS_ADAPTER", "stream"},
			want: `env FRUTOS_REDIS_ADAPTER: redis.adapter: "stream" is not an adapter`},
		{name: "PORT not a number", vars: []string{"PORT", "abc"},
			want: `env PORT: port: "abc" is not a port number; write one like 3000`},
		{name: "PORT out of range", vars: []string{"PORT", "70000"},
			want: `env PORT: port: 70000 is not a TCP port; use 1-65535`},
		{name: "REDIS_URL without scheme", vars: []string{"REDIS_URL", "localhost:6379"},
			want: `env REDIS_URL: redis.url: "localhost:6379" is not a Redis URL`},
		{name: "FRUTOS_CORS_ORIGINS bad item", vars: []string{"FRUTOS_CORS_ORIGINS", "https://a.example.com,b.example.com"},
			want: `env FRUTOS_CORS_ORIGINS: cors.origins[1]: "b.example.com" is not an origin`},
		{name: "--port out of range", flags: Flags{Port: 70000},
			want: `flag --port: port: 70000 is not a TCP port; use 1-65535`},
		{name: "--instances words", flags: Flags{Instances: "lots"},
			want: `flag --instances: instances: "lots" is not a number of instances`},
		{name: "--instances zero", flags: Flags{Instances: "0"},
			want: `flag --instances: instances: 0 instances cannot serve anything`},
		{name: "--env unknown", env: "staging",
			want: `flag --env: env: "staging" is not an env; use development or production`},
		{name: "--config missing", file: "missing.yaml",
			want: `flag --config: missing.yaml: no such file; give the path of a frutos.yaml`},
		{name: "env var overrides a bad file value: no error", yaml: "port: 70000\n", vars: []string{"PORT", "80"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, tc.yaml)
			_, err := Load(LoadOptions{File: tc.file, Env: tc.env, Getenv: envMap(tc.vars...), Flags: tc.flags})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not a *configs.Error: %v", err, err)
			}
			first := strings.SplitN(err.Error(), "\n", 2)[0]
			if !strings.HasPrefix(first, tc.want) {
				t.Fatalf("error:\n got %s\nwant %s", err, tc.want)
			}
			if ce.Error() != first {
				t.Fatalf("errors.As found %q, the first message is %q", ce, first)
			}
		})
	}
}

// All mistakes in a file are reported at once, each message standing alone.
func TestLoadReportsEveryFileMistake(t *testing.T) {
	inDir(t, "prot: 80\nlimits:\n  ping_interval: 25\n  max_payload: lots\n")
	_, err := Load(LoadOptions{Getenv: envMap()})
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`frutos.yaml:1:1: prot: unknown field; did you mean port?`,
		`frutos.yaml:3:3: limits.ping_interval: "25" has no unit; write a duration like 25s`,
		`frutos.yaml:4:3: limits.max_payload: "lots" is not a size; write one like 1MB, 512KiB or 1000000 (bytes)`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestValidateWithoutPositions(t *testing.T) {
	c := Default()
	c.Port = 0
	c.Limits.PingTimeout = 0
	err := c.Validate()
	want := "port: 0 is not a TCP port; use 1-65535\nlimits.ping_timeout: must be longer than 0 (got 0s)"
	if err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %q", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "frutos.yaml", Line: 12, Column: 3, Field: "limits.ping_interval", Msg: "m"}, "frutos.yaml:12:3: limits.ping_interval: m"},
		{Error{File: "frutos.yaml", Line: 12, Field: "f", Msg: "m"}, "frutos.yaml:12: f: m"},
		{Error{File: "env PORT", Field: "port", Msg: "m"}, "env PORT: port: m"},
		{Error{Field: "port", Msg: "m"}, "port: m"},
		{Error{File: "x.yaml", Msg: "m"}, "x.yaml: m"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%+v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}
