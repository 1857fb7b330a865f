package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/frutos/frutos/configs"
)

// Bug: `frutos status --env production --config /etc/frutos/frutos.yaml`
// in a shell without the production secret exported looked for the
// daemon in the default home (exit 5, "not running") while it ran in the
// file's home: a configuration that did not validate lost its home too.
func TestHomeOfAConfigurationThatDoesNotValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "frutos.yaml")
	if err := os.WriteFile(file, []byte("home: state\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFactory(&IOStreams{Out: io.Discard, ErrOut: io.Discard}, func(string) string { return "" })
	f.ConfigFile, f.Env = file, "production" // no secret, no Redis URL: Load refuses it
	if _, err := f.Config(configs.Flags{}); err == nil {
		t.Fatal("the production configuration validated; the test needs one that does not")
	}
	if got, want := f.Home(), filepath.Join(dir, "state"); got != want {
		t.Errorf("Home() = %q, want the file's %q", got, want)
	}
}
