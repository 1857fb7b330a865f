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
