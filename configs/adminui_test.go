package configs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestAdminUISettings(t *testing.T) {
	hash := testPasswordHash(t, "s3cret-admin-pass")
	tests := []struct {
		name string
		env  string // "" or Production
		yaml string
		vars []string
		want string // error prefix; "" = loads fine
		ok   func(AdminUI) bool
	}{
		{name: "off by default", ok: func(a AdminUI) bool { return !a.Enabled && a.Username == "admin" && !a.ReadOnly }},
		{name: "on from the file", yaml: "admin_ui:\n  enabled: true\n  username: ops\n  read_only: true\n",
			ok: func(a AdminUI) bool { return a.Enabled && a.Username == "ops" && a.ReadOnly && a.PasswordHash == "" }},
		{name: "on from the environment", vars: []string{AdminUIEnv, "1", AdminUIPasswordHashEnv, hash},
			ok: func(a AdminUI) bool { return a.Enabled && a.PasswordHash == hash }},
		{name: "off from the environment", yaml: "admin_ui:\n  enabled: true\n", vars: []string{AdminUIEnv, "false"},
			ok: func(a AdminUI) bool { return !a.Enabled }},
		{name: "not a switch", vars: []string{AdminUIEnv, "yes please"},
			want: `env FRUTOS_ADMIN_UI: admin_ui.enabled: "yes please" is not on or off; write 1 (on) or 0 (off)`},
		{name: "the hash is never read from the file", yaml: "admin_ui:\n  password_hash: " + hash + "\n",
			want: "frutos.yaml:2:3: admin_ui.password_hash: unknown field"},
		{name: "not a bcrypt hash", vars: []string{AdminUIEnv, "1", AdminUIPasswordHashEnv, "plain-password"},
			want: "env FRUTOS_ADMIN_UI_PASSWORD_HASH: admin_ui.password_hash: FRUTOS_ADMIN_UI_PASSWORD_HASH does not hold a bcrypt hash"},
		{name: "no username", yaml: "admin_ui:\n  enabled: true\n  username: \"\"\n",
			want: "frutos.yaml:3:3: admin_ui.username: empty or not UTF-8"},
		{name: "development runs it without a login", vars: []string{AdminUIEnv, "1"},
			ok: func(a AdminUI) bool { return a.Enabled && a.PasswordHash == "" }},
		{name: "production refuses it without a login", env: Production, vars: append([]string{AdminUIEnv, "1"}, prodEnv...),
			want: "env FRUTOS_ADMIN_UI: admin_ui.enabled: the Admin UI has no password in production"},
		{name: "production with a login", env: Production, vars: append([]string{AdminUIEnv, "1", AdminUIPasswordHashEnv, hash}, prodEnv...),
			ok: func(a AdminUI) bool { return a.Enabled && a.PasswordHash == hash }},
		{name: "production, off, no login", env: Production, vars: prodEnv, ok: func(a AdminUI) bool { return !a.Enabled }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inDir(t, tc.yaml)
			c, err := Load(LoadOptions{Env: tc.env, Getenv: envMap(tc.vars...)})
			if tc.want != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
					t.Fatalf("error:\n got %v\nwant %s", err, tc.want)
				}
				if strings.Contains(err.Error(), hash) {
					t.Fatalf("the error shows the hash: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.ok(c.AdminUI) {
				t.Fatalf("admin_ui = %+v", c.AdminUI)
			}
		})
	}
}

// The hash reaches the workers (FRUTOS_CONFIG) but never what is shown.
func TestAdminUIHashIsRedacted(t *testing.T) {
	hash := testPasswordHash(t, "s3cret-admin-pass")
	c := Default()
	c.AdminUI.Enabled, c.AdminUI.PasswordHash = true, hash
	r := c.Redacted()
	js, _ := json.Marshal(r)
	for _, out := range []string{string(js), fmt.Sprintf("%+v", r)} {
		if strings.Contains(out, hash) {
			t.Errorf("redacted output shows the hash: %s", out)
		}
	}
	if r.AdminUI.PasswordHash != "[redacted]" || c.AdminUI.PasswordHash != hash {
		t.Errorf("redacted %q, original %q", r.AdminUI.PasswordHash, c.AdminUI.PasswordHash)
	}
	env, err := c.ChildEnv()
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromChildEnv(envMap(strings.SplitN(env[0], "=", 2)...))
	if err != nil {
		t.Fatal(err)
	}
	if got.AdminUI != c.AdminUI {
		t.Errorf("the worker got %+v", got.AdminUI)
	}
}
