package main

import (
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type stopOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Target control.Target
	JSON   bool
}

func newCmdStop(f *Factory, runF func(*stopOptions) error) *cobra.Command {
	opts := &stopOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:   "stop <id|all>",
		Short: "Stop workers gracefully (they stay in the list, stopped)",
		Long: `Stop workers gracefully: each drains (its clients are asked to reconnect
to the other workers), then exits; after kill_timeout it is killed. Stopped
workers stay in the list until restart, reload or delete.`,
		Example: "  frutos stop all\n  frutos stop 2",
		Args:    cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			t, err := parseTarget(args)
			if err != nil {
				return err
			}
			opts.Target = t
			if runF != nil {
				return runF(opts)
			}
			return callDaemon(opts.IO, opts.Daemon(), "/v1/stop", opts.Target, opTimeout, opts.JSON)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}
