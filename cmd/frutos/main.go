// Command frutos runs and operates a Socket.IO realtime tier: a supervisor
// daemon, its worker processes joined through Redis, and the operator tools
// around them.
//
// This package is the command line and nothing more: one file per cobra
// command (start.go, scale.go, ...), each with its options struct, a
// constructor taking the Factory (factory.go: the streams, the configuration
// loader, the daemon's control client, built lazily) and a run function.
// Commands parse, call a package (daemon, cluster, control, logs, redisctl,
// tui) and print. run (below) is the one place that turns errors into exit
// statuses and hints (errors.go, args.go); nothing below it exits. The
// hidden `worker` and `daemon` commands are the two long-running processes
// (cluster.Run and daemon.Daemon); `monit` wires the screen (package tui) to
// its readers: the control client, the fleet registry and the log files.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/frutos/frutos/redisctl"
)

func main() {
	// go-redis logs dial failures to stderr on its own; route them to a
	// quiet logger so a failed command prints its one error line only.
	// Long-running commands (daemon, worker) install their own.
	redisctl.QuietLibraryLogs(slog.New(slog.DiscardHandler))
	os.Exit(run(os.Args[1:], systemStreams(), os.Getenv))
}

// run executes one command line and returns the process exit code. Nothing
// below it exits.
func run(args []string, streams *IOStreams, getenv func(string) string) int {
	f := newFactory(streams, getenv)
	root := newRootCmd(f)
	root.SetArgs(args)
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	// Ctrl-C (or SIGTERM) cancels the command's context: following
	// commands (logs) end cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && cmd == root {
		// The root runs nothing and validates no arguments (every command
		// below it does): cobra's error there is an unknown command.
		err = asArgsError(err)
	}
	if cmd == nil {
		cmd = root
	}
	return reportError(streams, err, cmd)
}
