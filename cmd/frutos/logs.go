package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/logs"
)

// logLocation is where the workers' log files are and how to read them.
type logLocation struct {
	Dir        string // the logs directory (logs.dir, or <home>/logs)
	App        string // the app name in the file names
	DateFormat string // logs.date_format, to read the timestamps back
	// Live says a daemon runs the app; Workers are then its workers' ids
	// (files of other ids are stale: workers removed by scale). Idle says
	// why not, for the operator ("no daemon runs for <home>").
	Live    bool
	Workers []int
	Idle    string
}

// locateLogs finds the log files from the configuration.
func locateLogs(f *Factory) func() (logLocation, error) {
	return func() (logLocation, error) {
		// the running daemon knows where its workers write
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := f.Daemon().Status(ctx)
		cancel()
		if err == nil && st.LogsDir != "" {
			loc := logLocation{Dir: st.LogsDir, App: st.App, DateFormat: st.LogDateFormat, Live: true}
			for _, w := range st.Workers {
				loc.Workers = append(loc.Workers, w.ID)
			}
			return loc, nil
		}
		cfg, cerr := f.Config(configs.Flags{})
		if cerr != nil {
			return logLocation{}, cerr
		}
		loc := logLocation{Dir: cfg.LogsDir(), App: cfg.App, DateFormat: cfg.Logs.DateFormat}
		switch {
		case errors.Is(err, control.ErrNotRunning):
			loc.Idle = "no daemon runs for " + cfg.Home
		case err != nil:
			loc.Idle = "the daemon of " + cfg.Home + " does not answer"
		default:
			loc.Idle = "the daemon of " + cfg.Home + " runs no app"
		}
		return loc, nil
	}
}

type logsOptions struct {
	IO  *IOStreams
	Ctx context.Context // ends following (Ctrl-C)

	ID        *int // nil: every worker
	Lines     int
	Timestamp bool
	NoStream  bool
	ErrOnly   bool
	OutOnly   bool
	JSON      bool

	// Locate says where the log files are (the seam to the daemon).
	Locate func() (logLocation, error)
	// Poll is how often followed files are checked; Rescan how often the
	// directory is searched for new workers' files (following every worker).
	Poll, Rescan time.Duration
	// Now is the clock for the time of lines read live without one.
	Now func() time.Time
}

func newCmdLogs(f *Factory, runF func(*logsOptions) error) *cobra.Command {
	opts := &logsOptions{IO: f.IO, Locate: locateLogs(f), Poll: logs.DefaultPoll, Rescan: time.Second, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "logs [id|all]",
		Short: "Show the workers' logs, then follow them",
		Long: `Show the last lines of the workers' log files (out and err), then follow new
lines as they are written, until Ctrl-C; like pm2 logs. With no id, every
worker's lines are shown, each prefixed with "<id>|<app> |", and workers that
start later are picked up. The files of workers that scale removed are left
out (name one to see it); with no daemon running, the files of its last
workers are shown and named.

Following goes on across rotations and flushes: when a file is rotated, the
rest of it is shown, then the new file; no line is lost or shown twice.

--timestamp shows each line's time: the one written in the file (when
logs.timestamps is on), or, for a line streamed live from a file without
timestamps, the time frutos logs read it. Lines shown from the past of a
file without timestamps have no time.

--json prints one object per line, for scripts:
  {"worker": 0, "stream": "out", "time": "2026-11-27T10:00:00Z", "line": "..."}
("stream" is "out" or "err"; "time" is null when unknown).`,
		Example: `  # the last 15 lines of every worker, then follow
  frutos logs

  # worker 2's errors only, the last 100 lines, with times
  frutos logs 2 --err --lines 100 --timestamp

  # print and exit, as JSON lines
  frutos logs --nostream --json | jq -r 'select(.stream == "err") | .line'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				id, err := parseWorkerID(args[0])
				if err != nil {
					return err
				}
				opts.ID = id
			}
			if opts.ErrOnly && opts.OutOnly {
				return usageErrorf("--err and --out cannot be used together; leave both out for both streams")
			}
			if opts.Lines < 0 {
				return usageErrorf("--lines %d: give 0 or more", opts.Lines)
			}
			opts.Ctx = c.Context()
			if runF != nil {
				return runF(opts)
			}
			return runLogs(opts)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&opts.Lines, "lines", 15, "how many past lines of each file to show")
	fl.BoolVar(&opts.Timestamp, "timestamp", false, "show each line's time (see above)")
	fl.BoolVar(&opts.NoStream, "nostream", false, "print the past lines and exit instead of following")
	fl.BoolVar(&opts.ErrOnly, "err", false, "only the error stream (stderr)")
	fl.BoolVar(&opts.OutOnly, "out", false, "only the output stream (stdout)")
	fl.BoolVar(&opts.JSON, "json", false, "print one JSON object per line")
	return cmd
}

// parseWorkerID reads a worker id argument: a number, or "all" (nil).
func parseWorkerID(s string) (*int, error) {
	if s == "all" {
		return nil, nil
	}
	id, err := strconv.Atoi(s)
	if err != nil || id < 0 {
		return nil, usageErrorf("%q is not a worker id: give a number like 0 (see frutos status), or all", s)
	}
	return &id, nil
}

// unknownWorker is the error for an id with no log files.
func unknownWorker(loc logLocation, files []logs.File, id int) error {
	var have []string
	for _, i := range logs.IDs(files) {
		have = append(have, strconv.Itoa(i))
	}
	msg := "no worker has logs there yet"
	if len(have) > 0 {
		msg = "workers with logs: " + strings.Join(have, ", ")
	}
	return withCode(exitUsage, fmt.Errorf("no logs for worker %d in %s; %s", id, loc.Dir, msg),
		"run 'frutos status' to see the workers, or 'frutos logs' for all of them")
}

func runLogs(opts *logsOptions) error {
	ctx := opts.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	loc, err := opts.Locate()
	if err != nil {
		return err
	}
	files, err := logs.List(loc.Dir, loc.App)
	if err != nil {
		return err
	}
	var streams []logs.Stream
	if !opts.ErrOnly {
		streams = append(streams, logs.Out)
	}
	if !opts.OutOnly {
		streams = append(streams, logs.Err)
	}
	wanted := func(f logs.File) bool {
		return (opts.ID == nil || f.ID == *opts.ID) && slices.Contains(streams, f.Stream)
	}

	// shown: their last lines, then what comes; quiet: only what comes,
	// the files of workers the running daemon no longer has (removed by
	// scale), in case one of their ids comes back.
	var shown, quiet []logs.File
	if opts.ID != nil {
		if !containsID(files, *opts.ID) {
			return unknownWorker(loc, files, *opts.ID)
		}
		// Both files of the worker, even one not written yet: it is
		// followed from when it appears.
		shown = logs.WorkerFiles(loc.Dir, loc.App, *opts.ID, streams...)
	} else {
		for _, f := range files {
			switch {
			case !wanted(f):
			case loc.Live && !slices.Contains(loc.Workers, f.ID):
				quiet = append(quiet, f)
			default:
				shown = append(shown, f)
			}
		}
	}

	p := newLogPrinter(opts, loc, shown)
	reader := logs.Reader{DateFormat: loc.DateFormat, Poll: opts.Poll}
	tails := reader.TailFiles(shown, opts.Lines)
	// Where the quiet files end now, before anything is printed: a line
	// written after what is printed is followed.
	quietTails := reader.TailFiles(quiet, 0)
	for _, t := range tails {
		if t.Err != nil {
			return t.Err
		}
		if t.Absent {
			continue // not written yet: followed from its start
		}
		if opts.Lines > 0 && !opts.JSON {
			fmt.Fprintf(opts.IO.ErrOut, "%s last %s:\n", t.File.Path, plural.Count(opts.Lines, "line", "lines"))
		}
		for _, l := range t.Lines {
			p.print(t.File, l, time.Time{})
		}
	}
	switch {
	case !loc.Live && !opts.NoStream:
		// Nothing writes these files now: say what is followed, rather
		// than wait without a word.
		followingIdle(opts.IO, loc, shown)
	case len(shown) == 0 && !opts.JSON:
		fmt.Fprintf(opts.IO.ErrOut, "no logs in %s yet\n", loc.Dir)
	}
	if opts.NoStream {
		return p.err()
	}
	tails = append(tails, quietTails...)
	following := logs.Following{Line: func(f logs.File, l logs.Line) { p.print(f, l, opts.Now()) }}
	if opts.ID == nil {
		// every worker: those that start later too
		following.Rescan = opts.Rescan
		following.More = func() ([]logs.File, error) {
			files, err := logs.List(loc.Dir, loc.App)
			return slices.DeleteFunc(files, func(f logs.File) bool { return !wanted(f) }), err
		}
	}
	if err := reader.FollowFiles(ctx, tails, following); err != nil {
		return err
	}
	return p.err() // Ctrl-C is the normal end
}

// followingIdle tells, when no daemon runs the app, which files logs
// follows: those of its last workers, or none yet.
func followingIdle(io *IOStreams, loc logLocation, files []logs.File) {
	var present []string
	for _, f := range files {
		if _, err := os.Stat(f.Path); err == nil {
			present = append(present, f.Path)
		}
	}
	if len(present) == 0 {
		fmt.Fprintf(io.ErrOut, "%s and there are no log files in %s: waiting for the workers' files there "+
			"(start them with `frutos start`; Ctrl-C to stop)\n", loc.Idle, loc.Dir)
		return
	}
	fmt.Fprintf(io.ErrOut, "%s: following the %s of its last workers (Ctrl-C to stop):\n",
		loc.Idle, plural.Count(len(present), "log file", "log files"))
	const most = 10
	for _, p := range present[:min(len(present), most)] {
		fmt.Fprintf(io.ErrOut, "  %s\n", p)
	}
	if len(present) > most {
		fmt.Fprintf(io.ErrOut, "  and %d more in %s\n", len(present)-most, loc.Dir)
	}
}

func containsID(files []logs.File, id int) bool {
	for _, f := range files {
		if f.ID == id {
			return true
		}
	}
	return false
}

// logLineJSON is the --json shape of a line; keep it stable.
type logLineJSON struct {
	Worker int        `json:"worker"`
	Stream string     `json:"stream"`
	Time   *time.Time `json:"time"`
	Line   string     `json:"line"`
}

// logPrinter prints lines from several followers, one whole line at a time.
type logPrinter struct {
	mu        sync.Mutex
	io        *IOStreams
	json      *json.Encoder
	timestamp bool
	layout    string
	width     int
	color     bool
	werr      error
}

func newLogPrinter(opts *logsOptions, loc logLocation, targets []logs.File) *logPrinter {
	p := &logPrinter{io: opts.IO, timestamp: opts.Timestamp, layout: loc.DateFormat, color: opts.IO.Color()}
	if p.layout == "" {
		p.layout = logs.DefaultDateFormat
	}
	if opts.JSON {
		p.json = json.NewEncoder(opts.IO.Out)
		p.json.SetEscapeHTML(false)
	}
	// PM2 pads "<id>|<app>" to one width: "0|frutos  | line".
	p.width = len(loc.App) + 3
	for _, t := range targets {
		p.width = max(p.width, len(strconv.Itoa(t.ID))+1+len(t.App)+1)
	}
	return p
}

// print prints one line of t. readAt is when it was read live (zero for past
// lines); it stands for the line's time when the file has none.
func (p *logPrinter) print(t logs.File, l logs.Line, readAt time.Time) {
	at := l.Time
	if at.IsZero() {
		at = readAt
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return
	}
	if p.json != nil {
		j := logLineJSON{Worker: t.ID, Stream: string(t.Stream), Line: l.Text}
		if !at.IsZero() {
			j.Time = &at
		}
		p.werr = p.json.Encode(j)
		return
	}
	var b strings.Builder
	prefix := fmt.Sprintf("%-*s |", p.width, strconv.Itoa(t.ID)+"|"+t.App)
	if p.color {
		code := "32" // green out, red err, as PM2
		if t.Stream == logs.Err {
			code = "31"
		}
		prefix = "\x1b[" + code + "m" + prefix + "\x1b[0m"
	}
	b.WriteString(prefix)
	b.WriteByte(' ')
	if p.timestamp && !at.IsZero() {
		b.WriteString(at.Format(p.layout))
		b.WriteByte(' ')
	}
	b.WriteString(l.Text)
	b.WriteByte('\n')
	_, p.werr = p.io.Out.Write([]byte(b.String()))
}

func (p *logPrinter) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr != nil {
		return fmt.Errorf("print logs: %w", p.werr)
	}
	return nil
}
