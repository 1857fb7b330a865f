// Package controltest serves a fake daemon's control socket, for tests of
// the control client and of the commands that use it.
package controltest

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/frutos/frutos/control"
)

// Serve answers on the control socket of a new state home with h, until
// the test ends, and returns the home.
func Serve(t testing.TB, h http.Handler) (home string) {
	t.Helper()
	home, err := os.MkdirTemp("", "fc") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	ln, err := net.Listen("unix", filepath.Join(home, control.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return home
}
