package main

import (
	"context"
	"errors"
	"io"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/cluster"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/workerproto"
)

type workerOptions struct {
	IO     *IOStreams
	Ctx    context.Context // ends on SIGTERM or SIGINT: the worker drains
	Config func(configs.Flags) (*configs.Config, error)
	Getenv func(string) string
	Spec   workerproto.Spec
}

func newCmdWorker(f *Factory, runF func(*workerOptions) error) *cobra.Command {
	opts := &workerOptions{IO: f.IO, Config: f.Config, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   workerproto.Command,
		Short: "Run one Socket.IO worker in the foreground (the daemon starts these)",
		Long: `Run one Socket.IO worker in the foreground.

The daemon starts N of these. Run one yourself under systemd or Kubernetes:
it serves Socket.IO on --listen (default host:port from the configuration)
and, with --admin, /health, /stats and /metrics on a private address.
SIGTERM drains it: new sessions are refused and connected clients are
asked to reconnect elsewhere (their transport is closed), then it exits 0.`,
		Example: `  frutos worker --listen 127.0.0.1:3001 --admin 127.0.0.1:9101
  REDIS_URL=redis://redis:6379 FRUTOS_AUTH_SECRET=s3cret frutos worker --env production`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			opts.Ctx = c.Context()
			if runF != nil {
				return runF(opts)
			}
			return runWorker(opts)
		},
	}
	opts.Spec.Bind(cmd.Flags())
	return cmd
}

// runWorker loads the configuration (from the daemon, or as any command
// does) and runs the worker until it is told to stop.
func runWorker(opts *workerOptions) error {
	// A daemon hands its workers the resolved configuration (and holds
	// their stdin: the liveness pipe).
	supervised := opts.Getenv(configs.ChildConfigEnv) != ""
	var cfg *configs.Config
	var err error
	if supervised {
		cfg, err = configs.FromChildEnv(opts.Getenv)
	} else {
		cfg, err = opts.Config(configs.Flags{RedisURL: opts.Spec.RedisURL})
	}
	if err != nil {
		return err
	}
	var daemon io.Reader
	if supervised {
		daemon = opts.IO.In
	}
	return workerError(cluster.Run(opts.Ctx, cluster.ProcessOptions{
		Spec: opts.Spec, Config: cfg, Daemon: daemon,
		Out: opts.IO.Out, Err: opts.IO.ErrOut, LogLevel: opts.Getenv("FRUTOS_LOG_LEVEL"),
	}))
}

// workerError gives a worker that could not start its exit status and hint.
func workerError(err error) error {
	var se *cluster.StartError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Step {
	case cluster.StepSecret:
		return withCode(exitConfig, err, "")
	case cluster.StepRedisURL:
		return withCode(exitRedis, err, "pass --redis or set REDIS_URL")
	case cluster.StepRedis:
		return withCode(exitRedis, err, "")
	case cluster.StepListen:
		return withCode(exitFailure, err, "is another process using the port? pick one with --listen")
	}
	return err
}
