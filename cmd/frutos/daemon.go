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
	"github.com/frutos/frutos/logs"
	"github.com/frutos/frutos/redisctl"
)

type daemonOptions struct {
	IO        *IOStreams
	Home      func() string
	Getenv    func(string) string
	Config    func(configs.Flags) (*configs.Config, error)
	File, Env func() string
	Resurrect bool
	Start     bool
	Takeover  bool // run by frutos update: take over from the daemon that started this one
	Flags     configs.Flags
}

func newCmdDaemon(f *Factory, runF func(*daemonOptions) error) *cobra.Command {
	opts := &daemonOptions{IO: f.IO, Home: f.Home, Getenv: f.Getenv, Config: f.Config,
		File: func() string { return f.ConfigFile }, Env: func() string { return f.Env }}
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the supervisor daemon in the foreground (for systemd and containers)",
		Long: `Run the supervisor daemon in the foreground.

frutos start runs it in the background for you. Run it yourself under
systemd (see frutos startup) or as a container's main process; SIGTERM
stops the workers gracefully, then the daemon. With --resurrect it starts
the process list saved by frutos save; with --start it starts the app from
the configuration, as frutos start would, and exits non-zero if it cannot
(a container's main process: the orchestrator restarts it).`,
		Example: "  frutos daemon\n  frutos daemon --resurrect\n  frutos daemon --start --env production --instances max",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkPortFlag(c, opts.Flags.Port); err != nil {
				return err
			}
			if opts.Start && opts.Resurrect {
				return usageErrorf("--start and --resurrect exclude each other")
			}
			if opts.Takeover && (opts.Start || opts.Resurrect) {
				return usageErrorf("--takeover excludes --start and --resurrect")
			}
			if runF != nil {
				return runF(opts)
			}
			return runDaemon(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Resurrect, "resurrect", false, "start the process list saved with frutos save")
	fl.BoolVar(&opts.Start, "start", false, "start the app from the configuration (containers)")
	fl.StringVarP(&opts.Flags.Instances, "instances", "i", "", `with --start: number of workers, or "max"`)
	fl.IntVarP(&opts.Flags.Port, "port", "p", 0, "with --start: public port")
	expectPort(fl, "port")
	fl.StringVar(&opts.Flags.RedisURL, "redis", "", "with --start: Redis URL")
	fl.BoolVar(&opts.Takeover, "takeover", false, "take over from the daemon that runs this one (frutos update does)")
	_ = fl.MarkHidden("takeover")
	return cmd
}

func runDaemon(opts *daemonOptions) error {
	var cfg *configs.Config
	if opts.Start { // a bad configuration fails before anything runs
		var err error
		if cfg, err = opts.Config(opts.Flags); err != nil {
			return err
		}
	}
	home := opts.Home()
	log := slog.New(logs.UniqueKeys(slog.NewTextHandler(opts.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo})))
	redisctl.QuietLibraryLogs(log)
	dopts := daemon.Options{
		Home:    home,
		Version: buildInfo().Version,
		Logger:  log,
	}
	if opts.Takeover {
		d, err := daemon.Takeover(dopts)
		if err != nil {
			return withCode(exitDaemon, err, "")
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := d.Run(ctx); err != nil {
			return withCode(exitDaemon, err, "the old daemon carries on")
		}
		return nil
	}
	d, err := daemon.New(dopts)
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
	if opts.Start {
		if err := d.StartApp(ctx, cfg, loadOptions(opts.File(), opts.Env(), opts.Flags)); err != nil {
			return withCode(exitFailure, fmt.Errorf("start the app: %w", err), "") // the home's lock goes with the process
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
