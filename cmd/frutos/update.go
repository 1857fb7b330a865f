package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type updateOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Reload bool
	JSON   bool
}

func newCmdUpdate(f *Factory, runF func(*updateOptions) error) *cobra.Command {
	opts := &updateOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Replace the running daemon with the frutos binary found now, dropping no connection",
		Long: `Replace the running daemon with the frutos binary found now (install the
new one over the old path first), in place: the old daemon starts the new
one and hands it the public port's listening socket and the control
socket, so not even a new connection is refused; the new daemon adopts the
workers, which keep every connection; then the old daemon finishes the
requests it was proxying and exits. If the new daemon fails, the old one
carries on and update exits non-zero.

The workers still run the old binary: --reload then replaces them one at a
time with zero downtime, keeping the configuration the daemon runs (frutos
reload loads a new one).`,
		Example: "  frutos update\n  frutos update --reload",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runUpdate(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Reload, "reload", false, "then reload the workers onto the new binary (zero downtime)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}

func runUpdate(opts *updateOptions) error {
	client := opts.Daemon()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res, err := client.Update(ctx)
	if err != nil {
		return daemonError(err)
	}
	fmt.Fprintln(opts.IO.ErrOut, res.Message)
	// The socket is the new daemon's once the old one has exited: wait
	// until it is the one that answers.
	var st control.Status
	deadline := time.Now().Add(90 * time.Second) // the old one lets long polls finish
	for {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err = client.Status(sctx)
		scancel()
		if err == nil && st.Daemon.PID == res.NewPID {
			break
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("daemon pid %d still answers", st.Daemon.PID)
			}
			return withCode(exitDaemon, fmt.Errorf("the new daemon (pid %d) does not answer alone: %w", res.NewPID, err),
				"see the daemon's log (daemon.log in the state home)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if opts.Reload {
		// the configuration the daemon runs: only the binary changes
		return callDaemon(opts.IO, opts.JSON, func(ctx context.Context) (control.Result, error) {
			return client.Reload(ctx, control.ReloadRequest{})
		})
	}
	return printStatus(opts.IO, st, opts.JSON)
}
