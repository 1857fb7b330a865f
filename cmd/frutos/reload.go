package main

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
)

type reloadOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	Getenv func(string) string
	File   func() string
	Env    func() string
	JSON   bool
}

func newCmdReload(f *Factory, runF func(*reloadOptions) error) *cobra.Command {
	opts := &reloadOptions{IO: f.IO, Daemon: f.Daemon, Getenv: f.Getenv,
		File: func() string { return f.ConfigFile }, Env: func() string { return f.Env }}
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Replace every worker, one at a time, with zero downtime",
		Long: `Replace every worker, one at a time, with zero downtime: a new worker is
started and must be ready (within listen_timeout) before the old one stops
taking new sessions and drains its clients to the live workers. A new
worker that never gets ready stops the reload and the old one keeps serving.

Reload runs the frutos binary found now (upgrade it in place, then reload)
and the configuration loaded now: limits, CORS, auth secret, recovery, logs
and restart settings change at reload. The port, the host, the state home
and the Redis URL and channel settings need delete then start.

Reload loads the configuration as start did: start's --config, --env,
--instances and --port stay, unless --config or --env is given here.`,
		Example: "  frutos reload\n  frutos reload --env production --config /etc/frutos/frutos.yaml",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runReload(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}

func runReload(opts *reloadOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), control.DefaultTimeout)
	st, err := opts.Daemon().Status(ctx)
	cancel()
	if err != nil {
		return daemonError(err)
	}
	file, env, flags := reloadLoad(opts.File(), opts.Env(), st.Load)
	cfg, err := configs.Load(configs.LoadOptions{File: file, Env: env, Getenv: opts.Getenv, Flags: flags})
	if err != nil {
		return err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	load := loadOptions(file, env, flags)
	req := control.ReloadRequest{Config: raw, Load: &load}
	return callDaemon(opts.IO, opts.JSON, func(ctx context.Context) (control.Result, error) {
		return opts.Daemon().Reload(ctx, req)
	})
}

// reloadLoad is how reload loads the configuration: as start did (its
// --config, --env, --instances and --port, which the daemon reports),
// except for the global flags given to reload itself. A cluster started
// with --port 4152 could not be reloaded: reload read PORT or 3000, a
// "changed" listen address. The --redis URL is not reused (the status
// has it redacted): the daemon keeps the Redis it has.
func reloadLoad(file, env string, start control.LoadOptions) (string, string, configs.Flags) {
	if file == "" {
		file = start.File
	}
	if env == "" {
		env = start.Env
	}
	return file, env, configs.Flags{Instances: start.Instances, Port: start.Port}
}
