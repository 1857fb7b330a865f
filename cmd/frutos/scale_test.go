package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/frutos/frutos/control"
)

// Bug: scale parses its arguments by hand (so that "-1" is a number) and
// took the root's --config and --env for arguments: `frutos --config
// f.yaml scale 2` failed with "scale takes one argument". Found by the
// chaos suite.
func TestScaleTakesTheRootFlags(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.WriteFile("f.yaml", []byte("port: 3000\n"), 0o600); err != nil { // --config is checked
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--config", "f.yaml", "--env", "production", "scale", "-1"},
		{"scale", "-1", "--config", "f.yaml", "--env=production"},
		{"scale", "--config=f.yaml", "-1", "--json", "--env", "production"},
	} {
		f := newFactory(&IOStreams{Out: io.Discard, ErrOut: io.Discard}, func(string) string { return "" })
		root := newRootCmd(f)
		old, _, err := root.Find([]string{"scale"})
		if err != nil {
			t.Fatal(err)
		}
		root.RemoveCommand(old)
		var got *scaleOptions
		root.AddCommand(newCmdScale(f, func(o *scaleOptions) error { got = o; return nil }))
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("frutos %s: %v", strings.Join(args, " "), err)
		}
		if got == nil || got.Request != (control.ScaleRequest{Mode: "sub", N: 1}) || f.ConfigFile != "f.yaml" || f.Env != "production" {
			t.Errorf("frutos %s: request %+v, config %q, env %q", strings.Join(args, " "), got, f.ConfigFile, f.Env)
		}
	}
}
