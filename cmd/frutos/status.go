package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/tui"
)

type statusOptions struct {
	IO     *IOStreams
	Daemon func() *control.Client
	JSON   bool
}

func newCmdStatus(f *Factory, runF func(*statusOptions) error) *cobra.Command {
	opts := &statusOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"list", "ls"},
		Short:   "Show the workers: status, CPU, memory, connections, Redis",
		Example: "  frutos status\n  frutos ls --json | jq '.workers[] | {id, status, connections}'",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			st, err := opts.Daemon().Status(ctx)
			if err != nil {
				return daemonError(err)
			}
			return printStatus(opts.IO, st, opts.JSON)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON (stable shape: daemon, redis, workers[])")
	return cmd
}

// printStatus writes the process table, or its JSON.
func printStatus(io *IOStreams, st control.Status, asJSON bool) error {
	if asJSON {
		if st.Workers == nil {
			st.Workers = []control.Worker{}
		}
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	app := st.App
	if app == "" {
		app = "(no app started)"
	}
	fmt.Fprintf(io.Out, "%s", app)
	if st.Env != "" {
		fmt.Fprintf(io.Out, " (%s) on %s:%d", st.Env, st.Host, st.Port)
	}
	fmt.Fprintf(io.Out, " | daemon pid %d, %s, up %s\n", st.Daemon.PID, tui.FormatBytes(st.Daemon.Memory), tui.FormatDuration(st.Daemon.UptimeSec))
	if st.Redis.URL != "" {
		state := "up"
		if !st.Redis.Up {
			state = "DOWN: " + st.Redis.Error
		}
		kind := ""
		if st.Redis.Embedded {
			kind = " (embedded)"
		}
		fmt.Fprintf(io.Out, "redis %s%s %s, %.2f ms\n", st.Redis.URL, kind, state, st.Redis.LatencyMs)
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPID\tSTATUS\tUPTIME\tRESTARTS\tCPU\tMEMORY\tCONNS\tEV/S\tREDIS")
	var conns int
	var mem uint64
	for _, w := range st.Workers {
		pid, up := "-", "-"
		if w.PID > 0 {
			pid, up = fmt.Sprint(w.PID), tui.FormatDuration(w.UptimeSec)
		}
		redis := w.Redis
		if redis == "" {
			redis = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%.1f%%\t%s\t%d\t%.0f\t%s\n",
			w.ID, pid, w.Status, up, w.Restarts, w.CPU, tui.FormatBytes(w.Memory), w.Connections, w.EventsPerS, redis)
		conns += w.Connections
		mem += w.Memory
	}
	if len(st.Workers) > 1 {
		fmt.Fprintf(tw, "all\t\t\t\t\t\t%s\t%d\t\t\n", tui.FormatBytes(mem), conns)
	}
	return tw.Flush()
}
