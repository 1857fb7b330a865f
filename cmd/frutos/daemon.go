package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/daemon"
	"github.com/frutos/frutos/redisctl"
)

type daemonOptions struct {
	IO        *IOStreams
	Home      func() string
	Getenv    func(string) string
	Resurrect bool
}

func newCmdDaemon(f *Factory, runF func(*daemonOptions) error) *cobra.Command {
	opts := &daemonOptions{IO: f.IO, Home: f.Home, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the supervisor daemon in the foreground (for systemd and containers)",
		Long: `Run the supervisor daemon in the foreground.

frutos start runs it in the background for you. Run it yourself under
systemd (see frutos startup) or as a container's main process; SIGTERM
stops the workers gracefully, then the daemon. With --resurrect it starts
the process list saved by frutos save.`,
		Example: "  frutos daemon\n  frutos daemon --resurrect",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runDaemon(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Resurrect, "resurrect", false, "start the process list saved with frutos save")
	return cmd
}

func runDaemon(opts *daemonOptions) error {
	home := opts.Home()
	log := slog.New(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	redisctl.QuietLibraryLogs(log)
	d, err := daemon.New(daemon.Options{
		Home:    home,
		Version: buildInfo().Version,
		Logger:  log,
	})
	if err != nil {
		return withCode(exitDaemon, err, "stop it with `frutos kill`, or use another FRUTOS_HOME")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if opts.Resurrect {
		if err := resurrectInto(ctx, d, home, opts.Getenv); err != nil {
			log.Error("resurrect failed; the daemon keeps running with no workers", "err", err)
		}
	}
	return d.Run(ctx)
}

// resurrectInto starts, inside this daemon, the process list saved in home.
func resurrectInto(ctx context.Context, d *daemon.Daemon, home string, getenv func(string) string) error {
	dump, err := daemon.ReadDump(home)
	if err != nil {
		return err
	}
	cfg, err := configs.Load(configs.LoadOptions{File: dump.Load.File, Env: dump.Load.Env, Getenv: getenv,
		Flags: configs.Flags{Instances: fmt.Sprint(dump.Instances), Port: dump.Load.Port, RedisURL: dump.Load.RedisURL}})
	if err != nil {
		return err
	}
	return d.StartApp(ctx, cfg, dump.Load)
}
