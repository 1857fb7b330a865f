package chaos_test

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/frutos/frutos/bench/chaos"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	frutosbin.Cleanup()
	os.Exit(code)
}

// short is the suite's fixed short version for CI: every fault, a small
// load, a 3 s Redis outage, a few hundred hostile clients.
func short(bin string) chaos.Options {
	return chaos.Options{
		Bin: bin, Workers: 4, Clients: 150, EmitRate: 60,
		RedisDown: 3 * time.Second, Before: time.Second, After: 2 * time.Second, Grace: 5 * time.Second,
		ReconnectWithin: 60 * time.Second,
		Hostile: chaos.HostileOptions{Tokenless: 300, Slow: 20, SlowEvents: 5, SlowKB: 8, Oversized: 10,
			Flooders: 5, FloodEvents: 500},
		Log: testLog{},
	}
}

type testLog struct{}

func (testLog) Write(p []byte) (int, error) { os.Stderr.Write(p); return len(p), nil }

// Every fault of make chaos, short: after each, every client is connected
// again and every worker is back; reload and scale lose nothing; the
// counts add up.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a few minutes of faults")
	}
	rep, err := chaos.Run(context.Background(), short(frutosbin.Path(t)))
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	t.Logf("\n%s", md.String())
	for _, f := range rep.Faults {
		if f.Skipped != "" {
			t.Logf("%s skipped: %s", f.Fault, f.Skipped)
			continue
		}
		if f.Error != "" {
			t.Errorf("%s: %s", f.Fault, f.Error)
		}
		if f.ReconnectSec < 0 || f.EndedDisconnected != 0 {
			t.Errorf("%s: %d clients never came back", f.Fault, f.EndedDisconnected)
		}
		if f.WorkersOnline != f.Workers {
			t.Errorf("%s: %d of %d workers healthy after it", f.Fault, f.WorkersOnline, f.Workers)
		}
		if f.Sent != f.Delivered+f.Lost {
			t.Errorf("%s: sent %d ≠ delivered %d + lost %d", f.Fault, f.Sent, f.Delivered, f.Lost)
		}
		if f.Sent == 0 {
			t.Errorf("%s: nothing was sent", f.Fault)
		}
	}
	// Clients that had received no event have no offset to recover
	// from (the Socket.IO protocol): only their events may be lost.
	for _, name := range []string{"baseline", "reload", "scale"} {
		if f := rep.Fault(name); f == nil || f.Lost != f.LostNoOffset || f.Duplicates != 0 {
			t.Errorf("%s must lose nothing a recovered client was sent: %+v", name, f)
		}
	}
	if h := rep.Hostile; h == nil {
		t.Error("no hostile report")
	} else {
		if n := h.Tokenless["connect_error: Unauthorized"]; n != int64(h.Options.Tokenless) {
			t.Errorf("tokenless handshakes: %v", h.Tokenless)
		}
		if h.OversizedClosed != int64(h.Options.Oversized) {
			t.Errorf("%d of %d oversized senders closed", h.OversizedClosed, h.Options.Oversized)
		}
	}
}

// The faults the streams adapter is for, short: kill -9 of one and of two
// workers, Redis shut down, restarted empty and frozen, and a reload lose
// nothing that Redis accepted and deliver nothing twice; every client of a
// killed worker gets its session back.
func TestChaosShortStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("a few minutes of faults")
	}
	o := short(frutosbin.Path(t))
	o.Adapter = "streams"
	o.Faults = []string{"baseline", "kill-worker", "kill-two-workers", "redis-stop", "redis-new-dataset", "redis-frozen", "reload"}
	rep, err := chaos.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	t.Logf("\n%s", md.String())
	for _, f := range rep.Faults {
		if f.Error != "" {
			t.Errorf("%s: %s", f.Fault, f.Error)
		}
		if f.ReconnectSec < 0 || f.EndedDisconnected != 0 || f.WorkersOnline != f.Workers {
			t.Errorf("%s: %d clients never came back, %d of %d workers healthy", f.Fault, f.EndedDisconnected, f.WorkersOnline, f.Workers)
		}
		// An emit whose XADD timed out while Redis was frozen is counted
		// refused (EmitErrors) though Redis may have taken it: its one
		// delivery is then one more than sent, and right.
		if f.Sent == 0 || f.Delivered < f.Sent || f.Delivered > f.Sent+f.EmitErrors || f.Lost != 0 || f.Duplicates != 0 || f.Late != 0 {
			t.Errorf("%s: sent %d, delivered %d, lost %d, twice %d, late %d", f.Fault, f.Sent, f.Delivered, f.Lost, f.Duplicates, f.Late)
		}
		if f.NotRecovered != 0 {
			t.Errorf("%s: %d of %d reconnections were new sessions", f.Fault, f.NotRecovered, f.Reconnects)
		}
	}
	for _, name := range []string{"kill-worker", "kill-two-workers", "reload"} {
		if f := rep.Fault(name); f == nil || f.Recovered == 0 {
			t.Errorf("%s: no client was recovered: %+v", name, f)
		}
	}
}

// The report is real: a build whose worker drops one event in a thousand
// (go build -tags frutos_dropone) shows the loss, and nothing else does.
func TestChaosReportShowsABrokenBuildsLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a broken binary")
	}
	opts := short(frutosbin.WithTags(t, "frutos_dropone"))
	opts.Workers, opts.Clients, opts.EmitRate = 1, 50, 300
	opts.Faults = []string{"baseline"}
	opts.After = 5 * time.Second // ≥ 1,500 events through one worker
	rep, err := chaos.Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	b := rep.Fault("baseline")
	want := b.Sent / 1000
	if b.Lost < want || b.Lost == 0 || b.Sent != b.Delivered+b.Lost {
		t.Errorf("broken build: sent %d, delivered %d, lost %d (want at least %d lost)", b.Sent, b.Delivered, b.Lost, want)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	if !bytes.Contains(md.Bytes(), []byte("| **")) {
		t.Errorf("the report does not show the loss in bold:\n%s", md.String())
	}
}

// The soak, short: samples of every process, a reload, nothing lost.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of soak")
	}
	o := short(frutosbin.Path(t))
	o.Workers, o.Clients, o.EmitRate = 2, 100, 50
	rep, err := chaos.RunSoak(context.Background(), chaos.SoakOptions{Options: o,
		Duration: time.Minute, ReloadEvery: 25 * time.Second, SampleEvery: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	rep.WriteMarkdown(&md)
	t.Logf("\n%s", md.String())
	if len(rep.Samples) < 6 || rep.Reloads < 1 || len(rep.Errors) > 0 {
		t.Errorf("%d samples, %d reloads, errors %v", len(rep.Samples), rep.Reloads, rep.Errors)
	}
	for _, s := range rep.Samples {
		if len(s.Processes) != 3 || s.Processes[0].Goroutines == 0 || s.Processes[1].Goroutines == 0 || s.Processes[1].FDs == 0 {
			t.Errorf("sample at %.0fs: %+v", s.At, s.Processes)
		}
	}
	if c := rep.Counts; c.Lost != 0 || c.Duplicates != 0 || c.Sent == 0 || c.Sent != c.Delivered {
		t.Errorf("soak with reloads: %+v", c)
	}
}
