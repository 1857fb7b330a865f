package configs

import (
	"errors"
	"strings"
	"testing"
)

func TestProductionRefusals(t *testing.T) {
	// without drops one variable from prodEnv.
	without := func(name string) []string {
		var out []string
		for i := 0; i < len(prodEnv); i += 2 {
			if prodEnv[i] != name {
				out = append(out, prodEnv[i], prodEnv[i+1])
			}
		}
		return out
	}
	tests := []struct {
		name string
		yaml string
		vars []string
		want string // "" = loads fine
	}{
		{name: "all set", vars: prodEnv},
		{name: "no secret", vars: without("FRUTOS_AUTH_SECRET"),
			want: "auth.secret_env: FRUTOS_AUTH_SECRET is not set; production needs a JWT secret"},
		{name: "short secret (Bug: production accepted a one-character secret)", vars: append(without("FRUTOS_AUTH_SECRET"), "FRUTOS_AUTH_SECRET", "k"),
			want: "auth.secret_env: FRUTOS_AUTH_SECRET holds 1 byte; production needs a secret of at least 32 bytes (an HS256 key as long as its hash): make one with `openssl rand -hex 32`"},
		{name: "31-byte secret", vars: append(without("FRUTOS_AUTH_SECRET"), "FRUTOS_AUTH_SECRET", strings.Repeat("k", 31)),
			want: "auth.secret_env: FRUTOS_AUTH_SECRET holds 31 bytes;"},
		{name: "32-byte secret", vars: append(without("FRUTOS_AUTH_SECRET"), "FRUTOS_AUTH_SECRET", strings.Repeat("k", 32))},
		{name: "no secret, variable named in the file", yaml: "auth:\n  secret_env: JWT_SECRET\n", vars: prodEnv,
			want: "frutos.yaml:2:3: auth.secret_env: JWT_SECRET is not set; production needs a JWT secret"},
		{name: "inline secret", yaml: "auth:\n  secret: hunter2\n", vars: prodEnv,
			want: "frutos.yaml:2:3: auth.secret: an inline secret is refused in production; export FRUTOS_AUTH_SECRET instead"},
		{name: "inline secret in the production section", yaml: "env:\n  production:\n    auth:\n      secret: hunter2\n", vars: without("FRUTOS_AUTH_SECRET"),
			want: "frutos.yaml:4:7: env.production.auth.secret: an inline secret is refused in production"},
		{name: "inline secret in the development section is fine", yaml: "env:\n  development:\n    auth:\n      secret: hunter2\n", vars: prodEnv},
		{name: "inline secret cleared by the production section", yaml: "auth:\n  secret: hunter2\nenv:\n  production:\n    auth:\n      secret: \"\"\n", vars: prodEnv},
		{name: "star origin by default", vars: without("FRUTOS_CORS_ORIGINS"),
			want: `cors.origins[0]: "*" lets any website connect; production needs exact origins like https://app.example.com`},
		{name: "star origin in the file", yaml: "cors:\n  origins:\n    - https://a.example.com\n    - \"*\"\n", vars: without("FRUTOS_CORS_ORIGINS"),
			want: `frutos.yaml:4:7: cors.origins[1]: "*" lets any website connect`},
		{name: "star origin from the environment", vars: append(without("FRUTOS_CORS_ORIGINS"), "FRUTOS_CORS_ORIGINS", "*"),
			want: `env FRUTOS_CORS_ORIGINS: cors.origins[0]: "*" lets any website connect`},
		{name: "no redis", vars: without("REDIS_URL"),
			want: "redis.url: empty; production needs a real Redis shared by every host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, tc.yaml)
			c, err := Load(LoadOptions{Env: Production, Getenv: envMap(tc.vars...)})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.Env != Production {
					t.Fatalf("env = %q", c.Env)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T is not a *configs.Error", err)
			}
		})
	}
}

// With nothing configured, production lists every refusal, one per line.
func TestProductionListsEveryRefusal(t *testing.T) {
	inDir(t, "")
	_, err := Load(LoadOptions{Env: Production, Getenv: envMap()})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	for i, prefix := range []string{"redis.url: ", "auth.secret_env: ", "cors.origins[0]: "} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], prefix) {
			t.Fatalf("line %d should start with %q:\n%s", i, prefix, err)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("want 3 messages, got:\n%s", err)
	}
}

// Development never invents a secret: the caller generates a per-home one.
func TestDevelopmentLeavesSecretEmpty(t *testing.T) {
	inDir(t, "")
	c, err := Load(LoadOptions{Getenv: envMap()})
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.Secret != "" {
		t.Fatalf("secret = %q, want empty", c.Auth.Secret)
	}
}
