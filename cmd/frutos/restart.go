package main

import (
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type restartOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Target control.Target
	JSON   bool
}

func newCmdRestart(f *Factory, runF func(*restartOptions) error) *cobra.Command {
	opts := &restartOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:   "restart <id|all>",
		Short: "Stop then start workers (use reload for zero downtime)",
		Long: `Stop then start workers, as pm2 restart does: a worker's clients reconnect
to the others while it restarts. For zero downtime use frutos reload.`,
		Example: "  frutos restart 0\n  frutos restart all",
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
			return callDaemon(opts.IO, opts.Daemon(), "/v1/restart", opts.Target, opTimeout, opts.JSON)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}
