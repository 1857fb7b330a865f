package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

// targetOptions are those of the commands that act on "<id|all>" (stop,
// restart): one control operation on the chosen workers.
type targetOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Path   string // the control operation, e.g. /v1/stop
	Target control.Target
	JSON   bool
}

// newTargetCmd completes cmd (use, help, examples) into a command that
// runs the control operation at path on the workers named by its argument.
func newTargetCmd(f *Factory, cmd *cobra.Command, path string, runF func(*targetOptions) error) *cobra.Command {
	opts := &targetOptions{IO: f.IO, Daemon: f.Daemon, Path: path}
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		t, err := parseTarget(args)
		if err != nil {
			return err
		}
		opts.Target = t
		if runF != nil {
			return runF(opts)
		}
		return callDaemon(opts.IO, opts.Daemon(), opts.Path, opts.Target, opTimeout, opts.JSON)
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}

// parseTarget reads the "id|all" argument of stop, restart and flush.
func parseTarget(args []string) (control.Target, error) {
	if len(args) == 0 || args[0] == "all" {
		return control.Target{All: true}, nil
	}
	id, err := strconv.Atoi(args[0])
	if err != nil || id < 0 {
		return control.Target{}, usageErrorf("%q is not a worker id; give a number from `frutos status`, or all", args[0])
	}
	return control.Target{ID: id}, nil
}

// callDaemon runs one operation and prints its message and the status
// after it.
func callDaemon(io *IOStreams, client *control.Client, path string, body any, timeout time.Duration, asJSON bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res control.Result
	if err := client.Do(ctx, "POST", path, body, &res); err != nil {
		return daemonError(err)
	}
	fmt.Fprintln(io.ErrOut, res.Message)
	return printStatus(io, res.Status, asJSON)
}

// opTimeout bounds operations that stop and start workers.
const opTimeout = 10 * time.Minute
