package configs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	const secret, password, emitKey = "jwt-s3cret-value", "redis-pa55word", "emit-k3y-value-long"
	tests := []struct {
		url     string
		wantURL string
	}{
		{"redis://default:" + password + "@redis.internal:6379/0", "redis://default:xxxxx@redis.internal:6379/0"},
		{"rediss://:" + password + "@redis.internal:6380", "rediss://:xxxxx@redis.internal:6380"},
		{"redis://redis.internal:6379", "redis://redis.internal:6379"},
		{"redis://user@redis.internal:6379", "redis://user@redis.internal:6379"},
		{"redis://redis.internal:6379?password=" + password + "&db=1", "redis://redis.internal:6379?db=1&password=xxxxx"},
		{"unix:///run/redis.sock?password=" + password, "unix:///run/redis.sock?password=xxxxx"},
		{"redis://u:" + password + "@a:6379,b:6379", "redis://u:xxxxx@a:6379,b:6379"},
		// Not parsable by net/url: the user-info part is hidden wholesale.
		{"redis://u:" + password + "@a b:6379/0", "redis://xxxxx@a b:6379/0"},
		{"redis://u:" + password + "@[bad", "redis://xxxxx@[bad"},
		{"redis://u:p@ss" + password + "@host:6379", "redis://u:xxxxx@host:6379"},
		{"redis://u:12/" + password + "@host:6379", "redis://xxxxx@host:6379"},
		{"redis://u:pa/" + password + "@host:6379", "redis://xxxxx@host:6379"},
		{"redis://u:pa#" + password + "@host:6379", "redis://xxxxx@host:6379"},
		{"redis://u:12#" + password + "@host:6379", "redis://xxxxx@host:6379"},
		{"redis://u:pa?" + password + "@host:6379", "redis://xxxxx@host:6379"},
		{"redis://[bad?password=" + password, "redis://[bad?xxxxx"},
		{"u:" + password + "@host:6379", "xxxxx@host:6379"},
		{"redis:" + password + "@host", "xxxxx@host"},
		{"", ""},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			c := Default()
			c.Auth.Secret = secret
			c.Emit.Key = emitKey
			c.Redis.URL = tc.url
			r := c.Redacted()
			if r.Redis.URL != tc.wantURL {
				t.Errorf("redis url = %q, want %q", r.Redis.URL, tc.wantURL)
			}
			if r.Auth.Secret != "[redacted]" {
				t.Errorf("secret = %q", r.Auth.Secret)
			}
			js, _ := json.Marshal(r)
			for _, out := range []string{string(js), fmt.Sprintf("%+v", r), fmt.Sprintf("%v", &r)} {
				if strings.Contains(out, secret) || strings.Contains(out, password) || strings.Contains(out, emitKey) {
					t.Errorf("redacted output leaks: %s", out)
				}
			}
			if c.Auth.Secret != secret || c.Redis.URL != tc.url {
				t.Error("Redacted changed the original")
			}
		})
	}
}

func TestRedactedKeepsEmptySecretEmpty(t *testing.T) {
	c := Default()
	if r := c.Redacted(); r.Auth.Secret != "" {
		t.Fatalf("secret = %q, want empty (nothing to hide)", r.Auth.Secret)
	}
}

func TestRedactedCopiesOrigins(t *testing.T) {
	c := Default()
	r := c.Redacted()
	r.CORS.Origins[0] = "changed"
	if c.CORS.Origins[0] != "*" {
		t.Fatal("Redacted shares the origins slice with the original")
	}
}

// A bad Redis URL must not leak its password through the error message.
func TestRedisURLErrorsAreRedacted(t *testing.T) {
	const password = "redis-pa55word"
	inDir(t, "")
	_, err := Load(LoadOptions{Getenv: envMap("REDIS_URL", "http://u:"+password+"@host:6379")})
	if err == nil {
		t.Fatal("no error for an http:// Redis URL")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error leaks the password: %v", err)
	}
}
