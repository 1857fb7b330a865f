package chaos

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/frutos/frutos/bench"
)

// Counts is what the load saw during one phase. Every event sent is, at
// the end, exactly one of delivered or lost; duplicates and late arrivals
// (arrived after the grace, already counted lost) are extra.
type Counts struct {
	Sent      int64 `json:"sent"`
	Delivered int64 `json:"delivered"`
	Lost      int64 `json:"lost"`
	// LostNoOffset of them were for clients that came back as new
	// sessions because they had received no event before (so had no
	// offset to ask for their session with).
	LostNoOffset int64 `json:"lost_no_offset"`
	Duplicates   int64 `json:"duplicates"`
	Late         int64 `json:"late"`
	// EmitErrors are emits Redis refused (down): never sent, not counted.
	EmitErrors int64 `json:"emit_errors"`
	// Drops are connections that ended; Reconnects the connections made
	// again, Recovered those that got their session (and missed events)
	// back.
	Drops        int64 `json:"drops"`
	Reconnects   int64 `json:"reconnects"`
	Recovered    int64 `json:"recovered"`
	NotRecovered int64 `json:"not_recovered"`
	// NotRecoveredNoOffset of them had received no event yet, so had no
	// offset to ask from.
	NotRecoveredNoOffset int64            `json:"not_recovered_no_offset"`
	ConnectFailures      map[string]int64 `json:"connect_failures,omitempty"`
	Latency              bench.Summary    `json:"latency_ms"`
	Clients              int              `json:"clients"`
	UpAtEnd              int              `json:"up_at_end"`
}

func (p *phase) counts(l *Load) Counts {
	p.mu.Lock()
	failures := maps.Clone(p.failures)
	p.mu.Unlock()
	return Counts{
		Sent: p.sent.Load(), Delivered: p.delivered.Load(), Lost: p.lost.Load(), LostNoOffset: p.lostNoOffset.Load(),
		Duplicates: p.dups.Load(), Late: p.late.Load(), EmitErrors: p.emitErrors.Load(),
		Drops: p.drops.Load(), Reconnects: p.reconnects.Load(), Recovered: p.recovered.Load(),
		NotRecovered: p.notRecovered.Load(), NotRecoveredNoOffset: p.noOffset.Load(), ConnectFailures: failures,
		Latency: p.latency.Summary(), Clients: l.Clients(), UpAtEnd: l.Up(),
	}
}

// Probe is how the CLI (`frutos status`, which asks the daemon, which
// asks the workers) answered during a phase, polled every second.
type Probe struct {
	OK     int     `json:"ok"`
	Failed int     `json:"failed"`
	MaxMs  float64 `json:"max_ms"`
	// FirstError is the first failure's message.
	FirstError string `json:"first_error,omitempty"`
}

// FaultResult is one row of the report.
type FaultResult struct {
	Fault string `json:"fault"`
	What  string `json:"what"`
	Counts
	// ReconnectSec is the time from the fault until every client was
	// connected again (0 when none dropped; -1 when some never came back
	// within the deadline).
	ReconnectSec      float64 `json:"reconnect_sec"`
	EndedDisconnected int     `json:"ended_disconnected"`
	CLI               Probe   `json:"cli"`
	// WorkersOnline is how many workers were online, ready and connected
	// to Redis after the phase, of Workers expected.
	WorkersOnline int      `json:"workers_online"`
	Workers       int      `json:"workers"`
	Notes         []string `json:"notes,omitempty"`
	Error         string   `json:"error,omitempty"`
	Skipped       string   `json:"skipped,omitempty"`
}

// Report is a chaos run.
type Report struct {
	Started  time.Time      `json:"started"`
	Duration float64        `json:"duration_sec"`
	Version  string         `json:"version"`
	Adapter  string         `json:"adapter,omitempty"` // redis.adapter of the workers
	Setup    string         `json:"setup"`
	Faults   []FaultResult  `json:"faults"`
	Hostile  *HostileResult `json:"hostile,omitempty"`
}

// Fault returns the row of a fault, nil when it did not run.
func (r *Report) Fault(name string) *FaultResult {
	for i := range r.Faults {
		if r.Faults[i].Fault == name {
			return &r.Faults[i]
		}
	}
	return nil
}

// WriteMarkdown writes the report as the tables of bench/CHAOS.md.
func (r *Report) WriteMarkdown(w io.Writer) {
	title := "Chaos report"
	if r.Adapter != "" && r.Adapter != "pubsub" {
		title += " (redis.adapter: " + r.Adapter + ")"
	}
	fmt.Fprintf(w, "# %s\n\n%s, %s, %.0f s. %s\n\n", title, r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Version, r.Duration, r.Setup)
	fmt.Fprintln(w, "| fault | clients dropped | all back after | ended disconnected | recovered / new sessions | sent | delivered | lost | twice | late | emits refused | p50 / p99 ms | CLI ok / failed (max ms) | workers after |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, f := range r.Faults {
		if f.Skipped != "" {
			fmt.Fprintf(w, "| %s | skipped: %s |||||||||||||\n", f.Fault, f.Skipped)
			continue
		}
		back := "-"
		switch {
		case f.ReconnectSec < 0:
			back = "**never**"
		case f.Drops > 0:
			back = fmt.Sprintf("%.1f s", f.ReconnectSec)
		}
		fmt.Fprintf(w, "| %s | %d | %s | %d | %d / %d | %d | %d | %s | %s | %d | %d | %.1f / %.1f | %d / %d (%.0f) | %d of %d |\n",
			f.Fault, f.Drops, back, f.EndedDisconnected, f.Recovered, f.NotRecovered, f.Sent, f.Delivered,
			bold(f.Lost), bold(f.Duplicates), f.Late, f.EmitErrors, f.Latency.P50, f.Latency.P99,
			f.CLI.OK, f.CLI.Failed, f.CLI.MaxMs, f.WorkersOnline, f.Workers)
	}
	fmt.Fprintln(w)
	for _, f := range r.Faults {
		fmt.Fprintf(w, "- **%s**: %s.", f.Fault, f.What)
		if f.NotRecovered > 0 {
			fmt.Fprintf(w, " Of the %d new sessions, %d had received no event before, so had no offset to recover from; %d events lost were theirs.", f.NotRecovered, f.NotRecoveredNoOffset, f.LostNoOffset)
		}
		if len(f.ConnectFailures) > 0 {
			fmt.Fprintf(w, " Connection attempts refused: %s.", formatCounts(f.ConnectFailures))
		}
		if f.CLI.FirstError != "" {
			fmt.Fprintf(w, " First CLI failure: `%s`.", oneLine(f.CLI.FirstError))
		}
		for _, n := range f.Notes {
			fmt.Fprintf(w, " %s.", n)
		}
		if f.Error != "" {
			fmt.Fprintf(w, " **Error:** %s.", f.Error)
		}
		fmt.Fprintln(w)
	}
	if h := r.Hostile; h != nil {
		fmt.Fprintln(w)
		h.WriteMarkdown(w)
	}
}

func bold(n int64) string {
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("**%d**", n)
}

func formatCounts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
