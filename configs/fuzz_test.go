package configs

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzLoad feeds Load an arbitrary frutos.yaml and arbitrary values of the
// environment variables it reads. Properties: no panic; every error is a
// *Error that names its file (or variable or flag) or its field, and does
// not quote the JWT secret from the environment; a config that loads passes
// Validate, survives the hand-off to a worker (ChildEnv, FromChildEnv)
// unchanged, and its Redacted form holds neither the secret nor the Redis
// password.
//
//	go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 60s -parallel 1 ./configs/
func FuzzLoad(f *testing.F) {
	const envSecret = "s3cret-from-env"
	// The example file and the test file that sets every key, one top-level
	// key at a time: the fuzzer minimizes every new input it finds (for up
	// to a minute), so seeds are kept small.
	for _, y := range [][]byte{Example, []byte(full)} {
		for _, block := range topLevelBlocks(y) {
			f.Add(block, "", "", envSecret, "", false)
			f.Add(block, "redis://:pa55word@10.0.0.1:6379/0?password=other", "4000", envSecret, "https://a.example.com, http://localhost:5173", true)
		}
	}
	for _, y := range []string{
		"",
		"port: 4000\n",
		"limits:\n  ping_intervall: 25s\n",
		"limits:\n  ping_interval: 25\n",
		"instances: max\nport: \"3000\"\n",
		"port: 3.5\n",
		"recovery:\n  enabled: yes\n",
		"restart:\n  max_memory_restart: 300M\n",
		"cors:\n  origins: https://a.example.com\n",
		"a: &x 1\nlimits:\n  max_connections: *x\n",
		"cors:\n  origins: [a\n",
		"port: 1\nport: 2\n",
		"port: 1\n---\nport: 2\n",
		"env:\n  staging:\n    port: 1\n",
		"env:\n  production:\n    port: abc\n",
		"env:\n  development:\n    env: {}\n",
		"auth:\n  secret: inline-dev-secret\nenv:\n  production:\n    auth:\n      secret: x\n",
		"auth:\n  secret_env: \"not a name\"\n",
		"home: ~other/x\nlogs:\n  dir: relative/logs\n",
		"host: \"0.0.0.0:3000\"\nredis:\n  url: localhost:6379\n",
		"redis:\n  url: \"redis://u:pa/ss@host:6379\"\n",
		"logs:\n  date_format: \"\"\n",
		"restart:\n  backoff_initial: 20s\n",
		"? [a, b]\n: c\n",
		"!!binary aGVsbG8=\n",
		"limits: {max_payload: 1e400}\n",
	} {
		f.Add([]byte(y), "", "", "", "", false)
	}
	f.Add([]byte("port: 1\n"), "redis:/", "  80 ", envSecret, " , ,", true)
	f.Add([]byte(""), "", "99999999999999999999", "", "*", false)

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, yaml []byte, redisURL, port, secret, origins string, prod bool) {
		file := filepath.Join(dir, "frutos.yaml")
		if err := os.WriteFile(file, yaml, 0o600); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"REDIS_URL": redisURL, "PORT": port, "FRUTOS_CORS_ORIGINS": origins,
			DefaultSecretEnv: secret, "FRUTOS_HOME": "",
		}
		o := LoadOptions{File: file, Getenv: func(k string) string { return env[k] }}
		if prod {
			o.Env = Production
		}
		c, err := Load(o)
		if err != nil {
			checkLoadError(t, err, o, env, secret)
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config that Validate refuses: %v", err)
		}
		checkChildHandOff(t, c)
		checkRedacted(t, c)
	})
}

// topLevelBlocks splits a YAML file into its top-level keys, each with the
// lines indented under it, leaving out comments.
func topLevelBlocks(y []byte) [][]byte {
	var blocks [][]byte
	for line := range strings.Lines(string(y)) {
		t := strings.TrimSpace(line)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
		case line[0] != ' ' || len(blocks) == 0:
			blocks = append(blocks, []byte(line))
		default:
			blocks[len(blocks)-1] = append(blocks[len(blocks)-1], line...)
		}
	}
	return blocks
}

// checkLoadError: every leaf of err locates itself, and none quotes the
// secret (unless the same text appears without the secret set: a secret
// like "port" is in messages for other reasons).
func checkLoadError(t *testing.T, err error, o LoadOptions, env map[string]string, secret string) {
	t.Helper()
	for _, leaf := range leaves(err) {
		var ce *Error
		if !errors.As(leaf, &ce) {
			t.Fatalf("error %q (%T) is not a *configs.Error", leaf, leaf)
		}
		if ce.File == "" && ce.Field == "" {
			t.Fatalf("error %q names neither a file nor a field", ce)
		}
		if ce.Msg == "" {
			t.Fatalf("error %+v has no message", ce)
		}
	}
	if len(secret) < 4 || !strings.Contains(err.Error(), secret) {
		return
	}
	without := map[string]string{}
	for k, v := range env {
		without[k] = v
	}
	delete(without, DefaultSecretEnv)
	o.Getenv = func(k string) string { return without[k] }
	if _, err2 := Load(o); err2 == nil || !strings.Contains(err2.Error(), secret) {
		t.Fatalf("the error quotes the secret %q from the environment: %v", secret, err)
	}
}

func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

func checkChildHandOff(t *testing.T, c *Config) {
	t.Helper()
	kv, err := c.ChildEnv()
	if err != nil {
		t.Fatalf("ChildEnv: %v", err)
	}
	name, val, _ := strings.Cut(kv[0], "=")
	got, err := FromChildEnv(func(k string) string {
		if k == name {
			return val
		}
		return ""
	})
	if err != nil {
		t.Fatalf("the worker refuses its daemon's config: %v\n%s", err, val)
	}
	if !reflect.DeepEqual(got, c) {
		g, _ := json.Marshal(got)
		t.Fatalf("the worker's config differs from its daemon's\n got: %s\nwant: %s", g, val)
	}
}

// checkRedacted: the secret is replaced, and the Redis URL keeps no
// password, in its user info or its query.
func checkRedacted(t *testing.T, c *Config) {
	t.Helper()
	r := c.Redacted()
	if c.Auth.Secret != "" && r.Auth.Secret != "[redacted]" {
		t.Fatalf("Redacted kept the secret: %q", r.Auth.Secret)
	}
	if r.Redis.URL == "" {
		return
	}
	if leak := urlPassword(r.Redis.URL); leak != "" {
		t.Fatalf("redacted Redis URL %q still holds a password %q", r.Redis.URL, leak)
	}
	if pw := urlPassword(c.Redis.URL); len(pw) >= 4 {
		if n := strings.Count(c.Redis.URL, pw); n > 0 && strings.Count(r.Redis.URL, pw) >= n {
			t.Fatalf("redacted Redis URL %q shows the password %q", r.Redis.URL, pw)
		}
	}
}

// urlPassword is a password the URL still carries (other than the
// "xxxxx" of redaction), in its user info or in a password-like query
// parameter.
func urlPassword(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	if p.User != nil {
		if pw, ok := p.User.Password(); ok && pw != "xxxxx" {
			return pw
		}
	}
	for k, vs := range p.Query() {
		for _, v := range vs {
			if secretish(k) && v != "xxxxx" {
				return v
			}
		}
	}
	return ""
}

// Found by FuzzLoad: a secret (or any text setting) that is not UTF-8 was
// accepted, and the JSON hand-off gave the workers U+FFFD in its place, so
// they refused every token the daemon's secret signed. Now Load says so,
// without quoting the secret.
func TestNonUTF8SettingIsRefused(t *testing.T) {
	const bad = "s3cret-\xff\xfe"
	inDir(t, "")
	_, err := Load(LoadOptions{Getenv: envMap(DefaultSecretEnv, bad)})
	want := "env FRUTOS_AUTH_SECRET: auth.secret: holds bytes that are not UTF-8 text; write it in UTF-8"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	c := Default()
	c.Redis.URL = "redis://:p\xff@host:6379"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "redis.url: holds bytes that are not UTF-8") {
		t.Fatalf("Validate = %v, want the redis.url refused", err)
	}
}
