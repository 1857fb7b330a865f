package configs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// inDir writes frutos.yaml (when content is not "") into a fresh directory and
// makes it the working directory, so messages read "frutos.yaml:L:C: ...".
func inDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if content != "" {
		if err := os.WriteFile(filepath.Join(dir, "frutos.yaml"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

// envMap returns a Getenv over key/value pairs; nothing else is set.
func envMap(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func sameConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("config differs\n got: %s\nwant: %s", g, w)
	}
}

// prodEnv is an environment under which the defaults pass the production checks.
var prodEnv = []string{
	"FRUTOS_AUTH_SECRET", "prod-secret-0123456789abcdef-0123456789",
	"REDIS_URL", "redis://redis.internal:6379",
	"FRUTOS_CORS_ORIGINS", "https://app.example.com",
}
