package main

import (
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type deleteOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	JSON   bool
}

func newCmdDelete(f *Factory, runF func(*deleteOptions) error) *cobra.Command {
	opts := &deleteOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:     "delete",
		Aliases: []string{"del"},
		Short:   "Stop every worker and remove them from the list (the daemon stays)",
		Example: "  frutos delete",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return callDaemon(opts.IO, opts.JSON, opts.Daemon().Delete)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}
