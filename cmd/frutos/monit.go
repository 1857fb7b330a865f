package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/logs"
	"github.com/frutos/frutos/tui"
)

type monitOptions struct {
	IO       *IOStreams
	Factory  *Factory
	Daemon   func() *control.Client
	Getenv   func(string) string
	Interval time.Duration
}

func newCmdMonit(f *Factory, runF func(*monitOptions) error) *cobra.Command {
	opts := &monitOptions{IO: f.IO, Factory: f, Daemon: f.Daemon, Getenv: f.Getenv}
	cmd := &cobra.Command{
		Use:   "monit",
		Short: "Watch the workers live: CPU, memory, connections, events, Redis, logs",
		Long: `A live screen of the cluster, like pm2 monit: every worker's status, uptime,
restarts, CPU, RSS, connections and events per second with totals; a short
history of CPU, RSS and connections for the selected worker and for the whole
cluster; Redis health; and the selected worker's out and err logs.

Keys: up/down or j/k select a worker, r restarts it, R reloads all workers
(zero downtime), + and - add or remove a worker, l shows or hides the logs,
h switches to the hosts of the fleet (every frutos daemon on the same Redis,
as in status --all-hosts) and back, q quits. r, R and - ask for
confirmation (y/n).

When the daemon stops, the screen says so and comes back when it returns.
With NO_COLOR set, no colours are used. When standard output is not a
terminal (a script, a CI log), monit prints one snapshot of the table and
exits; the table's width is $COLUMNS, or 160.`,
		Example: "  frutos monit\n  frutos monit --interval 2s\n  frutos monit | tee monit.txt   # one snapshot",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if opts.Interval < 100*time.Millisecond {
				return usageErrorf("--interval %s is too short: give 100ms or more", opts.Interval)
			}
			if runF != nil {
				return runF(opts)
			}
			return runMonit(opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Interval, "interval", time.Second, "how often to refresh")
	return cmd
}

func runMonit(opts *monitOptions) error {
	client := opts.Daemon()
	if !opts.IO.StdoutTTY {
		return monitSnapshot(opts, client)
	}
	fleet := &fleetReader{f: opts.Factory}
	defer fleet.close()
	m := tui.New(tui.Options{Daemon: client, Interval: opts.Interval, Color: opts.IO.Color(), Socket: client.Socket(),
		Fleet: fleet.read, Logs: followWorkerLogs})
	defer m.Close()
	// The screen changes about once a second: 15 frames a second keep keys
	// snappy at a third of the default's wake-ups (monit at ~1% of a core
	// watching 8 workers, instead of ~1.6%).
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithOutput(opts.IO.Out), tea.WithFPS(15))
	if _, err := p.Run(); err != nil {
		return fmt.Errorf("monit: %w", err)
	}
	return nil
}

// monitSnapshot prints the table once, for a stdout that is no terminal.
func monitSnapshot(opts *monitOptions, client *control.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := client.Status(ctx)
	if err != nil {
		return daemonError(err)
	}
	width := 160
	if n, err := strconv.Atoi(opts.Getenv("COLUMNS")); err == nil && n >= 40 {
		width = n
	}
	_, err = fmt.Fprint(opts.IO.Out, tui.Snapshot(st, width))
	return err
}

// followWorkerLogs is monit's log follower (tui.LogFollower): a worker's
// out and err files, tailed and followed as frutos logs does.
func followWorkerLogs(ctx context.Context, t tui.LogTarget, n int, past func([]tui.LogLine), live func(tui.LogLine)) {
	reader := logs.Reader{DateFormat: t.DateFormat}
	tails := reader.TailFiles(logs.WorkerFiles(t.Dir, t.App, t.ID), n)
	var lines []tui.LogLine
	for _, tl := range tails {
		if tl.Err != nil {
			lines = append(lines, tui.LogLine{Err: true, Text: fmt.Sprintf("(monit: %v)", tl.Err)})
		}
		for _, l := range tl.Lines {
			lines = append(lines, monitLine(tl.File, l))
		}
	}
	past(lines)
	_ = reader.FollowFiles(ctx, tails, logs.Following{
		Line: func(f logs.File, l logs.Line) { live(monitLine(f, l)) },
		Failed: func(f logs.File, err error) {
			live(tui.LogLine{Err: true, Text: fmt.Sprintf("(monit: stopped following %s: %v)", f.Path, err)})
		},
	})
}

func monitLine(f logs.File, l logs.Line) tui.LogLine {
	return tui.LogLine{Err: f.Stream == logs.Err, Text: l.Text, Time: l.Time}
}

// fleetReader reads the fleet registry for monit's hosts view. Redis is
// resolved as for status --all-hosts, when the view is first opened, and
// again after a failure (the embedded Redis may start meanwhile).
type fleetReader struct {
	f    *Factory
	mu   sync.Mutex
	conn *redisConn
}

func (r *fleetReader) read(ctx context.Context) (control.Fleet, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		conn, err := connectRedis(r.f, redisFlags{Timeout: defaultRedisTimeout})
		if err != nil {
			return control.Fleet{}, err
		}
		r.conn = conn
	}
	fleet, err := readFleet(ctx, r.conn)
	if err != nil {
		err = r.conn.Target.Classify(err)
		if r.conn.Embedded {
			r.conn.Close()
			r.conn = nil
		}
	}
	return fleet, err
}

func (r *fleetReader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn != nil {
		r.conn.Close()
	}
}
