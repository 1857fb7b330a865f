package jwtauth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/frutos/frutos/configs"
)

// DevSecretFile is the file in the state home holding the development
// secret.
const DevSecretFile = "dev-secret"

// devSecretBytes is the development secret's entropy (hex-encoded on disk).
const devSecretBytes = 32

// ResolveSecret returns the JWT secret for cfg: the configured one
// (cfg.Auth.Secret, already resolved by configs.Load from the variable named
// by auth.secret_env or the development file), else in development a random
// secret kept in <home>/dev-secret (mode 0600, created once and reused, so
// tokens from `frutos token` are accepted by the workers of the same home);
// production without a secret is an error. generated reports that the
// secret is that development one.
func ResolveSecret(cfg *configs.Config) (secret string, generated bool, err error) {
	if cfg.Auth.Secret != "" {
		return cfg.Auth.Secret, false, nil
	}
	if cfg.Env == configs.Production {
		return "", false, fmt.Errorf("production needs a JWT secret: export %s=<the secret your backend signs tokens with>",
			cfg.Auth.SecretEnv)
	}
	if cfg.Home == "" {
		return "", false, errors.New("no state home to keep a development secret in")
	}
	s, err := devSecret(filepath.Join(cfg.Home, DevSecretFile))
	if err != nil {
		return "", false, err
	}
	return s, true, nil
}

// devSecret reads the secret in file, creating it first when it does not
// exist. Creation is atomic (write a temporary file, then link it into
// place, which fails if another process won the race), so concurrent
// callers end up with the same secret.
func devSecret(file string) (string, error) {
	if s, err := readDevSecret(file); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("create the state home for the development secret: %w", err)
	}
	var b [devSecretBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a development secret: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+DevSecretFile+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write the development secret: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.WriteString(hex.EncodeToString(b[:]) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, 0o600)
	}
	if werr != nil {
		return "", fmt.Errorf("write the development secret: %w", werr)
	}
	if err := os.Link(tmp, file); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("write the development secret %s: %w", file, err)
	}
	return readDevSecret(file)
}

func readDevSecret(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the development secret %s is readable by others (mode %#o); run: chmod 600 %s",
			file, fi.Mode().Perm(), file)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the development secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) < 32 {
		return "", fmt.Errorf("the development secret %s is too short or empty; delete it and a new one is made", file)
	}
	return s, nil
}
