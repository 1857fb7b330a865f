package configs

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// testPasswordHash is a bcrypt hash of password at the cheapest cost.
func testPasswordHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestChildEnvRoundTrip(t *testing.T) {
	prod := fullConfig()
	prod.Env = Production
	prod.Auth.Secret = "s3cret-0123456789abcdef0123456789abcdef"
	prod.AdminUI.PasswordHash = testPasswordHash(t, "admin-pass")
	noOrigins := Default()
	noOrigins.CORS.Origins = nil
	emptyOrigins := Default()
	emptyOrigins.CORS.Origins = []string{}
	odd := Default()
	odd.Restart.BackoffInitial = Duration(1500)       // 1.5µs
	odd.Limits.MaxPayload = 1234567                   // no unit divides it
	odd.Logs.DateFormat = "2006-01-02 15:04:05 \"x\"" // quoting
	odd.Instances = 1

	tests := map[string]*Config{
		"default":       Default(),
		"everything":    fullConfig(),
		"production":    prod,
		"nil origins":   noOrigins,
		"empty origins": emptyOrigins,
		"odd values":    odd,
	}
	for name, c := range tests {
		t.Run(name, func(t *testing.T) {
			env, err := c.ChildEnv()
			if err != nil {
				t.Fatal(err)
			}
			vars := map[string]string{}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("bad entry %q", kv)
				}
				vars[k] = v
			}
			if _, ok := vars[ChildConfigEnv]; !ok {
				t.Fatalf("no %s in %q", ChildConfigEnv, env)
			}
			got, err := FromChildEnv(func(k string) string { return vars[k] })
			if err != nil {
				t.Fatal(err)
			}
			sameConfig(t, got, c)
		})
	}
}

func TestChildEnvFromLoad(t *testing.T) {
	inDir(t, full)
	c, err := Load(LoadOptions{Getenv: envMap("JWT_SECRET", "from-env", "PORT", "4444", "EMIT_KEY", fullEmitKey)})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := c.ChildEnv()
	got, err := FromChildEnv(envMap(strings.SplitN(env[0], "=", 2)...))
	if err != nil {
		t.Fatal(err)
	}
	sameConfig(t, got, c)
	if got.Auth.Secret != "from-env" || got.Port != 4444 {
		t.Fatalf("child lost the resolved values: %+v", got)
	}
}

func TestFromChildEnvErrors(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"missing", "", "env FRUTOS_CONFIG: not set; workers are started by the frutos daemon"},
		{"not json", "{", "env FRUTOS_CONFIG: cannot decode"},
		{"bad duration", `{"limits":{"ping_interval":"25"}}`, `env FRUTOS_CONFIG: cannot decode: "25" has no unit`},
		{"invalid", `{"port":70000}`, "env FRUTOS_CONFIG: port: 70000 is not a TCP port"},
		{"instances zero", `{"instances":0}`, "env FRUTOS_CONFIG: cannot decode: 0 instances cannot serve anything"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromChildEnv(envMap(ChildConfigEnv, tc.value))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// Keys a newer or older daemon did not send keep their defaults.
func TestFromChildEnvToleratesVersionSkew(t *testing.T) {
	got, err := FromChildEnv(envMap(ChildConfigEnv, `{"port":4000,"from_the_future":true}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Port = 4000
	sameConfig(t, got, want)
}
