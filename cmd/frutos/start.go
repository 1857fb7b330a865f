package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

type startOptions struct {
	IO         *IOStreams
	Config     func(configs.Flags) (*configs.Config, error)
	File       func() string
	Env        func() string
	Flags      configs.Flags
	JSON       bool
	Executable func() (string, error)
}

func newCmdStart(f *Factory, runF func(*startOptions) error) *cobra.Command {
	opts := &startOptions{IO: f.IO, Config: f.Config, Executable: os.Executable,
		File: func() string { return f.ConfigFile }, Env: func() string { return f.Env }}
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the daemon (if needed) and the workers",
		Long: `Start the daemon in the background if it is not running, then the workers
on the one public port, and return when they are ready. On failure (port
taken, Redis unreachable, bad configuration) nothing is left half started.

With no Redis configured in development, an embedded one is started.`,
		Example: `  frutos start --instances max
  frutos start --env production --config /etc/frutos/frutos.yaml
  REDIS_URL=redis://10.0.0.5:6379 frutos start --instances 4 --port 8080`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := checkPortFlag(c, opts.Flags.Port); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runStart(opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Flags.Instances, "instances", "i", "", `number of workers, or "max" for one per usable CPU`)
	fl.IntVarP(&opts.Flags.Port, "port", "p", 0, "public port (default: PORT, then the configuration's, 3000)")
	expectPort(fl, "port")
	fl.StringVar(&opts.Flags.RedisURL, "redis", "", "Redis URL (default: REDIS_URL, then the configuration)")
	fl.BoolVar(&opts.JSON, "json", false, "print the status as JSON")
	return cmd
}

func runStart(opts *startOptions) error {
	cfg, err := opts.Config(opts.Flags)
	if err != nil {
		return err
	}
	load := loadOptions(opts.File(), opts.Env(), opts.Flags)
	return startApp(opts.IO, cfg, load, opts.Executable, opts.JSON, "")
}

// checkPortFlag refuses a --port that is no TCP port. 0 is refused too:
// configs.Flags reads 0 as "not given", and `--port 0` silently meant
// 3000 (PORT=0 is refused as well).
func checkPortFlag(c *cobra.Command, port int) error {
	if c.Flags().Changed("port") && (port < 1 || port > 65535) {
		return usageErrorf("--port %d is not a TCP port; use 1-65535", port)
	}
	return nil
}

// loadOptions records how the configuration was loaded (for save and
// resurrect). The file is made absolute: the daemon may run elsewhere.
func loadOptions(file, env string, fl configs.Flags) control.LoadOptions {
	if file == "" {
		if _, err := os.Stat(configs.DefaultFile); err == nil {
			file = configs.DefaultFile
		}
	}
	if file != "" {
		if abs, err := filepath.Abs(file); err == nil {
			file = abs
		}
	}
	return control.LoadOptions{File: file, Env: env, Instances: fl.Instances, Port: fl.Port, RedisURL: fl.RedisURL}
}

// startApp makes sure a daemon runs for cfg's home and asks it to start
// the app. A daemon this call started is stopped again if the start fails.
// intro, when not empty, is a line said with "starting", once the daemon
// has not refused the start (resurrect's "resurrecting ...").
func startApp(io *IOStreams, cfg *configs.Config, load control.LoadOptions, exe func() (string, error), asJSON bool, intro string) error {
	client := control.NewClient(cfg.Home)
	spawned, err := ensureDaemon(io, client, cfg.Home, exe)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	req := control.StartRequest{Config: raw, Load: load}
	undo := func() {
		if spawned {
			kctx, kcancel := context.WithTimeout(context.Background(), time.Minute)
			_, _ = client.Kill(kctx)
			kcancel()
		}
	}
	// Ask first, say "starting" after: a start the daemon refuses (an app
	// runs already, too many workers) prints only the refusal.
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	plan, err := client.CheckStart(cctx, req)
	ccancel()
	if intro != "" && (err == nil || errors.Is(err, control.ErrUnknownRoute)) {
		fmt.Fprintln(io.ErrOut, intro)
	}
	switch {
	case errors.Is(err, control.ErrUnknownRoute): // an older daemon: its start decides
		fmt.Fprintf(io.ErrOut, "starting %s...\n", cfg.App)
	case err != nil:
		undo()
		return daemonError(err)
	case len(plan.Resume) > 0:
		fmt.Fprintf(io.ErrOut, "starting %s %v of %s again...\n", plural.Count(len(plan.Resume), "stopped worker", "stopped workers"), plan.Resume, cfg.App)
	default:
		fmt.Fprintf(io.ErrOut, "starting %s of %s (%s) on %s:%d...\n", plural.Count(cfg.Instances.Count(), "worker", "workers"), cfg.App, cfg.Env, cfg.Host, cfg.Port)
	}
	timeout := control.StartTimeout(cfg.Restart.ListenTimeout.Duration()) + 15*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := client.Start(ctx, req)
	if err != nil {
		undo()
		return daemonError(err)
	}
	fmt.Fprintln(io.ErrOut, res.Message)
	return printStatus(io, res.Status, asJSON)
}

// ensureDaemon starts a background daemon for home unless one answers. It
// reports whether it started one.
func ensureDaemon(io *IOStreams, client *control.Client, home string, exe func() (string, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := client.Ping(ctx)
	cancel()
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, control.ErrNotRunning) {
		return false, daemonError(err)
	}
	bin, err := exe()
	if err != nil {
		return false, fmt.Errorf("find the frutos binary: %w", err)
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return false, fmt.Errorf("create the state home: %w", err)
	}
	logPath := filepath.Join(home, "daemon.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "daemon")
	cmd.Env = append(os.Environ(), "FRUTOS_HOME="+home)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this shell
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start the daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		pctx, pcancel := context.WithTimeout(context.Background(), time.Second)
		err := client.Ping(pctx)
		pcancel()
		if err == nil {
			fmt.Fprintf(io.ErrOut, "daemon started (pid %d, home %s)\n", cmd.Process.Pid, home)
			return true, nil
		}
		select {
		case err := <-exited:
			return false, withCode(exitDaemon, fmt.Errorf("the daemon exited at start (%v): %s", err, lastLines(logPath, 5)),
				"see "+logPath)
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return false, withCode(exitDaemon, errors.New("the daemon did not answer within 15s"), "see "+logPath)
		case <-tick.C:
		}
	}
}

// daemonError maps control errors to exit codes and hints.
func daemonError(err error) error {
	var ce *control.Error
	switch {
	case errors.Is(err, control.ErrNotRunning):
		return withCode(exitDaemon, err, "start it with `frutos start`")
	case errors.Is(err, control.ErrUnknownRoute):
		return withCode(exitDaemon, err, "replace the daemon with this binary's: `frutos update`")
	case errors.As(err, &ce) && ce.Code == control.CodeRedisUnavailable:
		return withCode(exitRedis, err, "check it with `frutos ping`")
	case errors.As(err, &ce) && ce.Code == control.CodeBadRequest:
		return withCode(exitUsage, err, "")
	case errors.As(err, &ce):
		return withCode(exitFailure, err, "")
	}
	return withCode(exitDaemon, err, "is the daemon stuck? see its log in the state home (daemon.log)")
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
