package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/daemon"
	"github.com/frutos/frutos/internal/plural"
)

type resurrectOptions struct {
	IO     *IOStreams
	Home   func() string
	Getenv func(string) string
	JSON   bool
}

func newCmdResurrect(f *Factory, runF func(*resurrectOptions) error) *cobra.Command {
	opts := &resurrectOptions{IO: f.IO, Home: f.Home, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:     "resurrect",
		Short:   "Start the process list saved with frutos save",
		Example: "  frutos resurrect",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runResurrect(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status as JSON")
	return cmd
}

func runResurrect(opts *resurrectOptions) error {
	home := opts.Home()
	dump, err := daemon.ReadDump(home)
	if err != nil {
		return withCode(exitFailure, err, "")
	}
	fl := configs.Flags{Instances: fmt.Sprint(dump.Instances), Port: dump.Load.Port, RedisURL: dump.Load.RedisURL, Home: home}
	cfg, err := configs.Load(configs.LoadOptions{File: dump.Load.File, Env: dump.Load.Env, Getenv: opts.Getenv, Flags: fl})
	if err != nil {
		return err
	}
	intro := fmt.Sprintf("resurrecting %s of %s saved %s", plural.Count(dump.Instances, "worker", "workers"), dump.App, dump.SavedAt.Format("2006-01-02 15:04:05 MST"))
	return startApp(opts.IO, cfg, dump.Load, os.Executable, opts.JSON, intro)
}
