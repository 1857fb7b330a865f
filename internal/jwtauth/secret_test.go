package jwtauth

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
)

func TestResolveSecretConfigured(t *testing.T) {
	home := t.TempDir()
	for _, env := range []string{configs.Development, configs.Production} {
		cfg := &configs.Config{Env: env, Home: home, Auth: configs.Auth{SecretEnv: configs.DefaultSecretEnv, Secret: "configured"}}
		s, gen, err := ResolveSecret(cfg)
		if err != nil || s != "configured" || gen {
			t.Errorf("%s: ResolveSecret = %q, %v, %v; want the configured secret", env, s, gen, err)
		}
	}
	if _, err := os.Stat(filepath.Join(home, DevSecretFile)); !os.IsNotExist(err) {
		t.Errorf("a configured secret must not create %s (%v)", DevSecretFile, err)
	}
}

func TestResolveSecretProductionNeedsOne(t *testing.T) {
	cfg := &configs.Config{Env: configs.Production, Home: t.TempDir(), Auth: configs.Auth{SecretEnv: "MY_SECRET"}}
	_, _, err := ResolveSecret(cfg)
	if err == nil || !strings.Contains(err.Error(), "export MY_SECRET=") {
		t.Fatalf("ResolveSecret in production without a secret = %v, want an error naming MY_SECRET", err)
	}
}

func TestResolveSecretDevelopment(t *testing.T) {
	home := filepath.Join(t.TempDir(), "fresh-home")
	cfg := &configs.Config{Env: configs.Development, Home: home, Auth: configs.Auth{SecretEnv: configs.DefaultSecretEnv}}
	s1, gen, err := ResolveSecret(cfg)
	if err != nil || !gen || len(s1) < 32 {
		t.Fatalf("ResolveSecret = %q, %v, %v; want a generated secret", s1, gen, err)
	}
	fi, err := os.Stat(filepath.Join(home, DevSecretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev-secret: %v, mode %v; want 0600", err, fi.Mode())
	}
	s2, gen, err := ResolveSecret(cfg)
	if err != nil || !gen || s2 != s1 {
		t.Fatalf("second ResolveSecret = %q, %v; want the same secret reused", s2, err)
	}
	// What `frutos token` mints, a worker of the same home accepts.
	tok, err := Mint(s1, "42", RoleMentor, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(s2, tok); err != nil {
		t.Errorf("Verify with the reused secret: %v", err)
	}
	other, _, _ := ResolveSecret(&configs.Config{Env: configs.Development, Home: t.TempDir()})
	if other == s1 {
		t.Errorf("two homes got the same secret")
	}
}

// Processes started together (workers, a token command) must agree on one
// secret, whoever creates the file.
func TestResolveSecretConcurrentCreation(t *testing.T) {
	cfg := &configs.Config{Env: configs.Development, Home: t.TempDir()}
	const n = 16
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i], _, errs[i] = ResolveSecret(cfg) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %q, %v; caller 0: %q", i, got[i], errs[i], got[0])
		}
	}
	entries, _ := os.ReadDir(cfg.Home)
	if len(entries) != 1 {
		t.Errorf("home holds %d entries, want only %s", len(entries), DevSecretFile)
	}
}

func TestResolveSecretRefusesUnsafeFile(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, DevSecretFile)
	cfg := &configs.Config{Env: configs.Development, Home: home}

	if err := os.WriteFile(file, []byte(strings.Repeat("a", 64)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if _, _, err := ResolveSecret(cfg); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable dev-secret: %v, want a refusal with the fix", err)
	}
	if err := os.WriteFile(file, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ResolveSecret(cfg); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("short dev-secret: %v, want a refusal", err)
	}
}
