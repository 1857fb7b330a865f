package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

// targetOp is a control operation on some workers: (*control.Client).Stop
// or (*control.Client).Restart.
type targetOp func(*control.Client, context.Context, control.Target) (control.Result, error)

// targetOptions are those of the commands that act on "<id|all>" (stop,
// restart): one control operation on the chosen workers.
type targetOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Op     targetOp
	Target control.Target
	JSON   bool
}

// newTargetCmd completes cmd (use, help, examples) into a command that
// runs the control operation op on the workers named by its argument.
func newTargetCmd(f *Factory, cmd *cobra.Command, op targetOp, runF func(*targetOptions) error) *cobra.Command {
	opts := &targetOptions{IO: f.IO, Daemon: f.Daemon, Op: op}
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) != 1 {
			return flagError{
				err:  fmt.Errorf("%s takes one argument, the workers to %s: a worker id or all (got %d arguments)", c.Name(), c.Name(), len(args)),
				hint: fmt.Sprintf("for example `frutos %s 2` or `frutos %s all`; the ids are in `frutos status`", c.Name(), c.Name()),
			}
		}
		return nil
	}
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		t, err := parseTarget(args)
		if err != nil {
			return err
		}
		opts.Target = t
		if runF != nil {
			return runF(opts)
		}
		return callDaemon(opts.IO, opts.JSON, func(ctx context.Context) (control.Result, error) {
			return opts.Op(opts.Daemon(), ctx, opts.Target)
		})
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

// callDaemon runs one operation (bounded by opTimeout) and prints its
// message and the status after it.
func callDaemon(io *IOStreams, asJSON bool, op func(context.Context) (control.Result, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := op(ctx)
	if err != nil {
		return daemonError(err)
	}
	fmt.Fprintln(io.ErrOut, res.Message)
	return printStatus(io, res.Status, asJSON)
}

// opTimeout bounds operations that stop and start workers.
const opTimeout = 10 * time.Minute
