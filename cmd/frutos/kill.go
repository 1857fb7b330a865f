package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type killOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
}

func newCmdKill(f *Factory, runF func(*killOptions) error) *cobra.Command {
	opts := &killOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:     "kill",
		Short:   "Stop every worker gracefully, then the daemon",
		Example: "  frutos kill",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runKill(opts)
		},
	}
	return cmd
}

func runKill(opts *killOptions) error {
	client := opts.Daemon()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := client.Kill(ctx)
	if err != nil {
		if errors.Is(err, control.ErrNotRunning) {
			fmt.Fprintln(opts.IO.ErrOut, "the daemon is not running")
			return nil
		}
		return daemonError(err)
	}
	// wait until the daemon has let go of its socket
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(pctx)
		pcancel()
		if errors.Is(err, control.ErrNotRunning) {
			fmt.Fprintln(opts.IO.ErrOut, res.Message)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return withCode(exitDaemon, errors.New("the daemon stopped its workers but has not exited after 30s"), "")
}
