package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command says which arguments it takes, so that a wrong one is a
// usage error, typed (no command below the root falls back to cobra's
// accept-anything default).
func TestEveryCommandValidatesItsArguments(t *testing.T) {
	root := newRootCmd(newFactory(&IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, func(string) string { return "" }))
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c != root && c.Args == nil {
			t.Errorf("%s has no argument validator", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Argument errors: exit 2, cobra's message, the hint to the command list
// (at the root) or to the command's --help; a command that explains its
// arguments keeps its own hint.
func TestArgumentErrorsAreUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		msg, hint string
	}{
		{[]string{"nonsense"}, `unknown command "nonsense" for "frutos"`, "run 'frutos --help' for the list of commands"},
		{[]string{"stat"}, "Did you mean this?", "run 'frutos --help' for the list of commands"},
		{[]string{"status", "extra"}, `unknown command "extra" for "frutos status"`, "run 'frutos status --help' for usage"},
		{[]string{"stop"}, "stop takes one argument, the workers to stop: a worker id or all (got 0 arguments)", "for example `frutos stop 2` or `frutos stop all`"},
		{[]string{"restart", "1", "2"}, "restart takes one argument, the workers to restart: a worker id or all (got 2 arguments)", "for example `frutos restart 2`"},
		{[]string{"logs", "1", "2"}, "accepts at most 1 arg(s), received 2", "run 'frutos logs --help' for usage"},
		{[]string{"completion", "bash", "extra"}, `unknown command "extra" for "frutos completion bash"`, "run 'frutos completion bash --help' for usage"},
		{[]string{"token"}, "token takes one argument, the user id (got 0)", "usage: frutos token <user-id>"},
		{[]string{"emit", "bogus"}, `unknown emit target "bogus"`, "usage: frutos emit"},
		{[]string{"stop", "abc"}, `"abc" is not a worker id`, "run 'frutos stop --help' for usage"},
	} {
		code, _, stderr := runCLI(t, map[string]string{"FRUTOS_HOME": t.TempDir()}, "", tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.msg) || !strings.Contains(stderr, "hint: "+tc.hint) {
			t.Errorf("frutos %s: exit %d\n%s", strings.Join(tc.args, " "), code, stderr)
		}
	}
}
