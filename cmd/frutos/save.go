package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type saveOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
}

func newCmdSave(f *Factory, runF func(*saveOptions) error) *cobra.Command {
	opts := &saveOptions{IO: f.IO, Daemon: f.Daemon}
	return &cobra.Command{
		Use:   "save",
		Short: "Save the process list to dump.json, for resurrect and startup",
		Long: `Save how the app was started (configuration file, env, flags) and how many
workers run to $FRUTOS_HOME/dump.json. Secrets are not saved: resurrect
reads them from the environment again.`,
		Example: "  frutos save",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := opts.Daemon().Save(ctx)
			if err != nil {
				return daemonError(err)
			}
			fmt.Fprintln(opts.IO.Out, res.Message)
			return nil
		},
	}
}
