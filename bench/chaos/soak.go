package chaos

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/frutos/frutos/internal/workerproto"
)

// SoakOptions is a soak: the chaos cluster and load, steady for Duration,
// with a reload every ReloadEvery and a sample of every process every
// SampleEvery.
type SoakOptions struct {
	Options
	Duration, ReloadEvery, SampleEvery time.Duration
}

// ProcSample is one process at one sample.
type ProcSample struct {
	Name       string `json:"name"` // "daemon", "worker 0", ...
	PID        int    `json:"pid"`
	RSS        uint64 `json:"rss"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
}

// Sample is every process, the log directory and the clients at one time.
type Sample struct {
	At        float64      `json:"at_sec"`
	Processes []ProcSample `json:"processes"`
	LogsBytes int64        `json:"logs_bytes"`
	ClientsUp int          `json:"clients_up"`
}

// Series is one measure over the soak, with its verdict.
type Series struct {
	Name    string    `json:"name"`
	Values  []float64 `json:"values"`
	Grows   bool      `json:"grows"`
	Verdict string    `json:"verdict"`
}

// SoakReport is a soak run.
type SoakReport struct {
	Started  time.Time `json:"started"`
	Duration float64   `json:"duration_sec"`
	Version  string    `json:"version"`
	Setup    string    `json:"setup"`
	Reloads  int       `json:"reloads"`
	Errors   []string  `json:"errors,omitempty"`
	Counts   Counts    `json:"counts"`
	Samples  []Sample  `json:"samples"`
	Series   []Series  `json:"series"`
	// LogsBound is the most the log directory may hold by its rotation
	// settings.
	LogsBound int64 `json:"logs_bound"`
}

// Growing lists the series that grow without bound.
func (r *SoakReport) Growing() []string {
	var g []string
	for _, s := range r.Series {
		if s.Grows {
			g = append(g, s.Name)
		}
	}
	return g
}

// RunSoak runs the soak and reports every process's footprint over time.
func RunSoak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	o.Options.defaults()
	if o.Duration <= 0 {
		o.Duration = 30 * time.Minute
	}
	if o.ReloadEvery <= 0 {
		o.ReloadEvery = 5 * time.Minute
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = time.Minute
	}
	rep := &SoakReport{Started: time.Now()}
	e, cleanup, err := setUp(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	rep.Version = e.version(ctx)
	rep.Setup = fmt.Sprintf("%d workers, %d websocket clients, %.0f targeted emits/s, a reload every %s, a sample every %s, %d CPUs",
		o.Workers, o.Clients, o.EmitRate, o.ReloadEvery, o.SampleEvery, runtime.NumCPU())
	// logs: out and err per worker slot and the daemon's own, each up to
	// max_size × (max_files + 1); the chaos configuration has 1 MB and 3.
	rep.LogsBound = int64(2*o.Workers+1) * 4 << 20

	var mu sync.Mutex
	errorf := func(format string, args ...any) {
		mu.Lock()
		rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	e.load.Begin("soak")
	start := time.Now()
	end := start.Add(o.Duration)
	var reloads sync.WaitGroup
	nextReload := start.Add(o.ReloadEvery)
	for next := start; ; next = next.Add(o.SampleEvery) {
		if !sleep(ctx, time.Until(next)) {
			break
		}
		s := e.sample(ctx)
		s.At = time.Since(start).Seconds()
		rep.Samples = append(rep.Samples, s)
		e.logf("soak %3.0fs: %d processes, logs %d KB, %d clients up", s.At, len(s.Processes), s.LogsBytes>>10, s.ClientsUp)
		if !next.Add(o.SampleEvery).Before(end.Add(time.Second)) {
			break
		}
		if !time.Now().Before(nextReload) {
			nextReload = nextReload.Add(o.ReloadEvery)
			rep.Reloads++
			reloads.Add(1)
			go func() {
				defer reloads.Done()
				if _, err := e.sys.CLI(ctx, 10*time.Minute, "reload"); err != nil {
					errorf("reload: %v", err)
				}
			}()
		}
	}
	reloads.Wait()
	rep.Counts = e.load.End(o.Grace)
	rep.Duration = time.Since(start).Seconds()
	rep.Series = series(rep.Samples)
	return rep, ctx.Err()
}

// sample reads the daemon's and every worker's footprint: RSS from the
// process table, goroutines from the daemon and from each worker's
// /stats, file descriptors from /proc.
func (e *env) sample(ctx context.Context) Sample {
	var s Sample
	s.ClientsUp = e.load.Up()
	s.LogsBytes = dirSize(e.logsDir)
	st, err := e.sys.Status(ctx)
	if err != nil {
		return s
	}
	s.Processes = append(s.Processes, ProcSample{Name: "daemon", PID: st.Daemon.PID, RSS: st.Daemon.Memory,
		Goroutines: st.Daemon.Goroutines, FDs: st.Daemon.FDs})
	for _, w := range st.Workers {
		if w.PID == 0 {
			continue
		}
		p := ProcSample{Name: fmt.Sprintf("worker %d", w.ID), PID: w.PID, RSS: w.Memory, FDs: countFDs(w.PID)}
		p.Goroutines = workerGoroutines(ctx, workerproto.Supervised(workerproto.RunDir(e.sys.Home, st.Daemon.PID), w.ID, w.Generation).Socket)
		s.Processes = append(s.Processes, p)
	}
	return s
}

// workerGoroutines asks a worker on its private socket, as the daemon does.
func workerGoroutines(ctx context.Context, sock string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c := workerproto.NewClient(sock)
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return 0
	}
	return st.Goroutines
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(ents)
}

func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// series turns the samples into one series per process and measure, and
// judges each: it grows without bound when every sample of its last third
// is above every sample of its first third by more than a margin (10 %
// and an absolute floor: 8 MB, 20 goroutines, 10 fds). A reloaded
// worker's series follows its slot across processes.
func series(samples []Sample) []Series {
	type key struct{ name, measure string }
	var order []key
	vals := map[key][]float64{}
	add := func(k key, v float64) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = append(vals[k], v)
	}
	for _, s := range samples {
		for _, p := range s.Processes {
			add(key{p.Name, "RSS MB"}, float64(p.RSS)/(1<<20))
			add(key{p.Name, "goroutines"}, float64(p.Goroutines))
			add(key{p.Name, "fds"}, float64(p.FDs))
		}
		add(key{"logs", "MB"}, float64(s.LogsBytes)/(1<<20))
	}
	floor := map[string]float64{"RSS MB": 8, "goroutines": 20, "fds": 10, "MB": 1}
	var out []Series
	for _, k := range order {
		v := vals[k]
		s := Series{Name: k.name + " " + k.measure, Values: v}
		n := len(v) / 3
		switch {
		case n == 0:
			s.Verdict = "too few samples"
		default:
			early, late := slices.Max(v[:n]), slices.Min(v[len(v)-n:])
			s.Grows = late > early*1.10 && late-early > floor[k.measure]
			s.Verdict = "flat"
			if s.Grows {
				s.Verdict = fmt.Sprintf("GROWS: last third ≥ %.1f, first third ≤ %.1f", late, early)
			} else if late > early {
				s.Verdict = fmt.Sprintf("bounded (+%.1f)", late-early)
			}
		}
		out = append(out, s)
	}
	return out
}

// WriteMarkdown writes the soak report.
func (r *SoakReport) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "# Soak report\n\n%s, %s, %.0f s. %s. %d reloads.\n\n", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Version, r.Duration, r.Setup, r.Reloads)
	c := r.Counts
	fmt.Fprintf(w, "Events: %d sent, %d delivered, %s lost, %s twice, %d late; %d connections dropped, %d recovered, %d new sessions; latency p50 %.1f ms, p99 %.1f ms.\n\n",
		c.Sent, c.Delivered, bold(c.Lost), bold(c.Duplicates), c.Late, c.Drops, c.Recovered, c.NotRecovered, c.Latency.P50, c.Latency.P99)
	if g := r.Growing(); len(g) > 0 {
		fmt.Fprintf(w, "**Grows without bound:** %v.\n\n", g)
	} else {
		fmt.Fprintln(w, "Nothing grows without bound.")
		fmt.Fprintln(w)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "- **Error:** %s\n", e)
	}
	fmt.Fprintln(w, "| series | first | min | max | last | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, s := range r.Series {
		if len(s.Values) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.1f | %.1f | %s |\n", s.Name, s.Values[0], slices.Min(s.Values), slices.Max(s.Values), s.Values[len(s.Values)-1], s.Verdict)
	}
	fmt.Fprintf(w, "\nThe log directory's bound by its rotation settings: %.0f MB.\n", float64(r.LogsBound)/(1<<20))
}
