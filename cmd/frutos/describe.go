package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/logs"
	"github.com/frutos/frutos/tui"
)

type describeOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	ID     int
	JSON   bool
}

func newCmdDescribe(f *Factory, runF func(*describeOptions) error) *cobra.Command {
	opts := &describeOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:     "describe <id>",
		Aliases: []string{"show"},
		Short:   "Show everything about one worker: pid, uptime, restarts, last exit, log files, settings",
		Long: `Show one worker as PM2's describe does: its status, pid, uptime, restarts and
generation, the reason its last process ended (exit status or signal), CPU,
memory, connections by transport, Redis state, its out and err log files,
and the settings of the app it runs (how start loaded them).`,
		Example: "  frutos describe 0\n  frutos show 2 --json | jq .worker.last_exit",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return flagError{err: fmt.Errorf("describe takes one worker id (got %d arguments)", len(args)),
					hint: "usage: " + c.UseLine() + "; the ids are in `frutos status`"}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[0])
			if err != nil || id < 0 {
				return usageErrorf("%q is not a worker id: give a number like 0 (see frutos status)", args[0])
			}
			opts.ID = id
			if runF != nil {
				return runF(opts)
			}
			return runDescribe(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON")
	return cmd
}

// describeJSON is the stable --json shape of describe.
type describeJSON struct {
	App    string              `json:"app"`
	Env    string              `json:"env"`
	Listen string              `json:"listen"`
	Worker control.Worker      `json:"worker"`
	Logs   describeLogs        `json:"logs"`
	Load   control.LoadOptions `json:"load"`
}

type describeLogs struct {
	Out string `json:"out"`
	Err string `json:"err"`
}

func runDescribe(opts *describeOptions) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := opts.Daemon().Status(ctx)
	if err != nil {
		return daemonError(err)
	}
	var w *control.Worker
	var ids []string
	for i := range st.Workers {
		ids = append(ids, fmt.Sprint(st.Workers[i].ID))
		if st.Workers[i].ID == opts.ID {
			w = &st.Workers[i]
		}
	}
	if w == nil {
		if len(ids) == 0 {
			return withCode(exitFailure, fmt.Errorf("no workers: start them with `frutos start`"), "")
		}
		return withCode(exitUsage, fmt.Errorf("no worker %d (workers: %s)", opts.ID, strings.Join(ids, ", ")), "run 'frutos status' to see them")
	}
	out, errPath := logs.Paths(st.LogsDir, st.App, w.ID)
	d := describeJSON{App: st.App, Env: st.Env, Listen: fmt.Sprintf("%s:%d", st.Host, st.Port), Worker: *w,
		Logs: describeLogs{Out: out, Err: errPath}, Load: st.Load}
	if opts.JSON {
		return printIndentedJSON(opts.IO, d)
	}
	tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	pid, up := "-", "-"
	if w.PID > 0 {
		pid, up = fmt.Sprint(w.PID), tui.FormatDuration(w.UptimeSec)
	}
	row("worker", fmt.Sprintf("%d of %s (%s) on %s", w.ID, st.App, st.Env, d.Listen))
	row("status", w.Status)
	row("pid", pid)
	row("uptime", up)
	row("restarts", fmt.Sprintf("%d (generation %d)", w.Restarts, w.Generation))
	row("last exit", orDash(w.LastExit))
	row("ready", fmt.Sprintf("%t (draining %t)", w.Ready, w.Draining))
	row("cpu", fmt.Sprintf("%.1f%%", w.CPU))
	row("memory", tui.FormatBytes(w.Memory))
	row("connections", fmt.Sprintf("%d (websocket %d, polling %d)", w.Connections, w.Transports["websocket"], w.Transports["polling"]))
	row("events/s", fmt.Sprintf("%.0f (%d delivered)", w.EventsPerS, w.Delivered))
	row("redis", orDash(w.Redis))
	row("out log", out)
	row("err log", errPath)
	row("config", orDash(st.Load.File))
	row("instances", orDash(st.Load.Instances))
	if st.Load.Port != 0 {
		row("--port", fmt.Sprint(st.Load.Port))
	}
	if st.Load.RedisURL != "" {
		row("--redis", st.Load.RedisURL) // redacted by the daemon
	}
	return tw.Flush()
}
