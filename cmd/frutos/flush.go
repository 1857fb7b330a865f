package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/logs"
)

type flushOptions struct {
	IO  *IOStreams
	Ctx context.Context

	ID *int // nil: every worker

	// Flush empties the log files of worker id (every worker's when nil)
	// and returns the files it emptied. The default truncates the files in
	// place (see flushLogFiles); it is the seam to ask the daemon, which
	// owns the writers, instead.
	Flush func(ctx context.Context, id *int) ([]string, error)
}

func newCmdFlush(f *Factory, runF func(*flushOptions) error) *cobra.Command {
	locate := locateLogs(f)
	opts := &flushOptions{
		IO: f.IO,
		// The daemon owns the writers: it empties the files in place. With
		// no daemon (or no app), the files are emptied directly.
		Flush: func(ctx context.Context, id *int) ([]string, error) {
			t := control.Target{All: id == nil}
			if id != nil {
				t.ID = *id
			}
			res, err := f.Daemon().Flush(ctx, t)
			var ce *control.Error
			switch {
			case err == nil:
				return res.Files, nil
			case errors.Is(err, control.ErrNotRunning), errors.As(err, &ce) && ce.Code == control.CodeNotFound:
				return flushLogFiles(locate, id)
			}
			return nil, daemonError(err)
		},
	}
	cmd := &cobra.Command{
		Use:   "flush [id|all]",
		Short: "Empty the workers' log files",
		Long: `Empty the log files of every worker, or of one worker, like pm2 flush: each
out and err file is emptied and its rotated files are removed. Workers go on
writing to the same files, and a running 'frutos logs' goes on following them.`,
		Example: `  # every worker's logs
  frutos flush

  # worker 2's only
  frutos flush 2`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 1 {
				id, err := parseWorkerID(args[0])
				if err != nil {
					return err
				}
				opts.ID = id
			}
			opts.Ctx = c.Context()
			if runF != nil {
				return runF(opts)
			}
			return runFlush(opts)
		},
	}
	return cmd
}

func runFlush(opts *flushOptions) error {
	ctx := opts.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	emptied, err := opts.Flush(ctx, opts.ID)
	for _, path := range emptied {
		fmt.Fprintf(opts.IO.ErrOut, "emptied %s\n", path)
	}
	if err != nil {
		return err
	}
	if len(emptied) == 0 {
		fmt.Fprintln(opts.IO.ErrOut, "no log files to empty")
	}
	return nil
}

// flushLogFiles empties the files directly, in place, so that writers that
// have them open (the daemon's) keep writing to them.
func flushLogFiles(locate func() (logLocation, error), id *int) ([]string, error) {
	loc, err := locate()
	if err != nil {
		return nil, err
	}
	files, err := logs.List(loc.Dir, loc.App)
	if err != nil {
		return nil, err
	}
	var ids []int
	if id != nil {
		if !containsID(files, *id) {
			return nil, unknownWorker(loc, files, *id)
		}
		ids = []int{*id}
	}
	emptied, err := logs.Flush(loc.Dir, loc.App, ids...)
	if err != nil {
		return emptied, fmt.Errorf("flush logs in %s: %w", loc.Dir, err)
	}
	return emptied, nil
}
