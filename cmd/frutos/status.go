package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/daemon"
	"github.com/frutos/frutos/tui"
)

type statusOptions struct {
	IO      *IOStreams
	Factory *Factory
	Daemon  func() *control.Client
	JSON    bool

	AllHosts bool
	Redis    redisFlags // with --all-hosts
}

func newCmdStatus(f *Factory, runF func(*statusOptions) error) *cobra.Command {
	opts := &statusOptions{IO: f.IO, Factory: f, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:     "status",
		Aliases: []string{"list", "ls"},
		Short:   "Show the workers: status, CPU, memory, connections, Redis",
		Long: `Show this host's workers, as the daemon sees them: status, uptime, restarts,
CPU, memory, connections, events per second, and Redis.

With --all-hosts, show every host of the fleet instead: each frutos daemon
with a running app publishes a heartbeat in Redis (under <redis.key>-frutos:hosts)
every node.heartbeat, and a host not heard from for node.ttl is shown gone.
STATE is up, gone (stopped heartbeating: crashed, killed, cut off) or stopped
(frutos kill, delete, or a stop signal). It reads Redis directly, so it works
without a daemon on this host: the URL is --redis, else REDIS_URL, else
redis.url of the configuration, else the embedded Redis of this state home.
Exit status 4 when Redis cannot be read.`,
		Example: `  frutos status
  frutos ls --json | jq '.workers[] | {id, status, connections}'
  frutos status --all-hosts
  frutos status --all-hosts --json | jq '.hosts[] | select(.state != "up") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !opts.AllHosts && (cmd.Flags().Changed("redis") || cmd.Flags().Changed("timeout")) {
				return usageErrorf("--redis and --timeout go with --all-hosts (this host's status comes from its daemon)")
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.AllHosts {
				return runStatusAllHosts(opts)
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
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print as JSON (stable shape: daemon, redis, workers[]; with --all-hosts: redis, key, hosts[])")
	cmd.Flags().BoolVar(&opts.AllHosts, "all-hosts", false, "show every host registered in Redis (the fleet), not this host's workers")
	addRedisFlags(cmd.Flags(), &opts.Redis)
	return cmd
}

// runStatusAllHosts reads the fleet registry from Redis and prints it.
func runStatusAllHosts(opts *statusOptions) error {
	conn, err := connectRedis(opts.Factory, opts.Redis)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := withRedisTimeout(opts.Redis)
	defer cancel()
	fleet, err := readFleet(ctx, conn)
	if err != nil {
		return redisFailure(conn.Target, err)
	}
	if len(fleet.Hosts) == 0 && !opts.JSON {
		fmt.Fprintf(opts.IO.ErrOut, "no host registered in %s (%s): a daemon registers once `frutos start` has started its app\n",
			fleet.Key, fleet.Redis)
		return nil
	}
	return printFleet(opts.IO, fleet, opts.JSON)
}

// readFleet reads the fleet registry through conn.
func readFleet(ctx context.Context, conn *redisConn) (control.Fleet, error) {
	hosts, err := daemon.ReadFleet(ctx, conn.Target.Client, conn.Config.Redis.Key, time.Now())
	return control.Fleet{Redis: conn.Target.URL, Key: daemon.HostsKey(conn.Config.Redis.Key), Hosts: hosts}, err
}

// printFleet writes the fleet table, or its JSON.
func printFleet(io *IOStreams, fleet control.Fleet, asJSON bool) error {
	if asJSON {
		if fleet.Hosts == nil {
			fleet.Hosts = []control.Host{}
		}
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(fleet)
	}
	tw := tabwriter.NewWriter(io.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tLAST SEEN\tADDRESS\tWORKERS\tCONNS\tCPU\tMEMORY\tREDIS\tVERSION")
	var up, conns int
	for _, h := range fleet.Hosts {
		latency := "-" // 0: not measured yet
		if h.State == control.HostUp {
			up++
			conns += h.Connections
			if h.RedisLatencyMs > 0 {
				latency = fmt.Sprintf("%.2f ms", h.RedisLatencyMs)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s ago\t%s\t%d/%d\t%d\t%.1f%%\t%s\t%s\t%s\n",
			h.Name, h.State, tui.FormatDuration(h.LastSeenSec), h.Address, h.WorkersOnline, h.Workers,
			h.Connections, h.CPU, tui.FormatBytes(h.Memory), latency, h.Version)
	}
	fmt.Fprintf(tw, "%d of %d up\t\t\t\t\t%d\n", up, len(fleet.Hosts), conns) // no trailing cells: no trailing spaces
	return tw.Flush()
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
	fmt.Fprintln(tw, "ID\tPID\tSTATUS\tUPTIME\tRESTARTS\tCPU\tMEMORY\tCONNS\tEV/S\tREDIS\tLAST EXIT")
	for _, w := range st.Workers {
		pid, up := "-", "-"
		if w.PID > 0 {
			pid, up = fmt.Sprint(w.PID), tui.FormatDuration(w.UptimeSec)
		}
		redis := w.Redis
		if redis == "" {
			redis = "-"
		}
		status := w.Status
		if w.Adopted {
			status += " (adopted)"
		}
		lastExit := w.LastExit
		if lastExit == "" {
			lastExit = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%.1f%%\t%s\t%d\t%.0f\t%s\t%s\n",
			w.ID, pid, status, up, w.Restarts, w.CPU, tui.FormatBytes(w.Memory), w.Connections, w.EventsPerS, redis, lastExit)
	}
	if len(st.Workers) > 1 {
		t := tui.Totals(st.Workers)
		fmt.Fprintf(tw, "all\t\t%d/%d up\t\t%d\t%.1f%%\t%s\t%d\t%.0f\t\t\n",
			t.Online, len(st.Workers), t.Restarts, t.CPU, tui.FormatBytes(t.Memory), t.Connections, t.EventsPerS)
	}
	return tw.Flush()
}
