// Package frutosbin builds the frutos binary once per test process, for
// tests that run real worker and daemon processes.
package frutosbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
	out  []byte
)

// Path returns the path of a frutos binary built from this module's
// sources (built on first use, into a directory removed by Cleanup).
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, e := os.MkdirTemp("", "frutosbin")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "frutos")
		goTool, e := exec.LookPath("go")
		if e != nil {
			err = e
			return
		}
		cmd := exec.Command(goTool, "build", "-o", path, "github.com/frutos/frutos/cmd/frutos")
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("build frutos: %v\n%s", err, out)
	}
	return path
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if path != "" {
		_ = os.RemoveAll(filepath.Dir(path))
	}
}

// WithTags builds a frutos binary with build tags (a deliberately broken
// build, say) into the test's temporary directory.
func WithTags(t testing.TB, tags string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "frutos")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(goTool, "build", "-tags", tags, "-o", p, "github.com/frutos/frutos/cmd/frutos").CombinedOutput(); err != nil {
		t.Fatalf("build frutos -tags %s: %v\n%s", tags, err, out)
	}
	return p
}
