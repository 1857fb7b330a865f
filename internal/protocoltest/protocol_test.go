//go:build unix

package protocoltest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/nodefix"
)

// knownFailures are the cases the engine under test (newEngine) is known to
// fail, with why: one list, to empty as the engine gets fixed. A failure
// listed here is logged, not counted; one not listed fails the test. A
// case marked always that passes fails the test too (the list is stale).
// Intermittent ones are races: they fail in some runs only.
//
// frutos's engine fails none. Against the library's engine the list had 15
// entries (git log -p of this file): a POST with an invalid packet that did
// not close the session, and races: the pong deadline armed after the ping
// (sessions that answered every ping ended), a poll and a close packet sent
// at once, a poll during the upgrade, a second websocket during the
// upgrade.
//
// To count every failure, intermittent ones included:
// FRUTOS_PROTOCOL_STRICT=1 go test -race -count=20 -run TestProtocolSuites ./internal/protocoltest/
var knownFailures = []knownFailure{
	// The suites' own race (Node's engine fails it too).
	{eio, "Engine.IO protocol heartbeat HTTP long-polling closes the session upon ping timeout", intermittent, pingTimeoutMargin},
	{sio, "Engine.IO protocol heartbeat HTTP long-polling should close the session upon ping timeout", intermittent, pingTimeoutMargin},
}

// pingTimeoutMargin is why the suites' ping timeout case on long-polling
// fails now and then, against any engine.
const pingTimeoutMargin = "the suite's race, not the engine's: it polls exactly pingInterval + pingTimeout after " +
	"the handshake, when the pong deadline is due if the server's ping was on time, and expects 400 (the session " +
	"closed); a ping a millisecond late gives 200. frutos's engine ends a session whose deadline has passed even if " +
	"its timer has not run yet, which helps when the deadline's timer is late, not the ping's. Failed against the " +
	"library's engine 11 runs in 100, against Node's engine.io 6.6.12 once in 23, frutos's once in 20 under -race " +
	"on a loaded machine"

// knownFailure is one entry of knownFailures.
type knownFailure struct {
	suite, title string
	kind         failureKind
	reason       string
}

type failureKind int

const (
	always       failureKind = iota // fails in every run
	intermittent                    // a race: fails in some runs
)

const (
	eio = "engine.io-protocol"
	sio = "socket.io-protocol"
	// stillOpen is the case testdata/protocol/reporter.cjs adds when mocha
	// is still running 5 s after the last test: a connection the server
	// never closed keeps it alive.
	stillOpen = "(after the run) connections left open"
)

// EnvStrict, set to 1, counts every failure, listed or not.
const EnvStrict = "FRUTOS_PROTOCOL_STRICT"

// suites are the folders of testdata/protocol holding a test-suite.js.
var suites = []string{eio, sio}

// suitesDir is testdata/protocol, from this package's directory.
const suitesDir = "../../testdata/protocol"

// suiteTimeout bounds one mocha run (a passing run takes a few seconds).
const suiteTimeout = 2 * time.Minute

// TestProtocolSuites runs the official Engine.IO and Socket.IO protocol
// test suites (mocha) against the server of this package, on a free
// loopback port.
func TestProtocolSuites(t *testing.T) {
	dir, err := filepath.Abs(suitesDir)
	if err != nil {
		t.Fatal(err)
	}
	requireMocha(t, dir)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Start(ln)
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close the server: %v", err)
		}
	})
	url := "http://" + ln.Addr().String()

	for _, suite := range suites {
		t.Run(suite, func(t *testing.T) {
			results, output, runErr := runMocha(t, dir, suite, url)
			failed := false
			defer func() {
				if failed || testing.Verbose() {
					t.Logf("mocha output (%s):\n%s", suite, output)
				}
			}()
			if results == nil {
				failed = true
				t.Fatalf("mocha wrote no results: %v", runErr)
			}
			failed = !checkResults(t, suite, results, runErr)
		})
	}
}

// result is one entry of the file testdata/protocol/reporter.cjs writes.
type result struct {
	Title string `json:"title"`
	State string `json:"state"` // passed, failed or pending
	Error string `json:"error"`
}

// checkResults compares the outcome of every case with knownFailures and
// reports whether everything went as expected.
func checkResults(t *testing.T, suite string, results []result, runErr error) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		ok = false
		t.Errorf(format, args...)
	}
	// A case fails if any of its events failed (a late assertion can fail
	// a case that had passed).
	var titles []string
	errs := map[string][]string{}
	for _, r := range results {
		if _, seen := errs[r.Title]; !seen {
			titles = append(titles, r.Title)
			errs[r.Title] = []string{}
		}
		switch r.State {
		case "failed":
			errs[r.Title] = append(errs[r.Title], r.Error)
		case "pending":
			fail("%s: pending (skipped) in the suite", r.Title)
		}
	}
	if len(titles) == 0 {
		fail("mocha ran no test (%v)", runErr)
	}
	strict := os.Getenv(EnvStrict) == "1"
	known := map[string]knownFailure{}
	for _, k := range knownFailures {
		if k.suite == suite {
			known[k.title] = k
		}
	}
	nfailed, nknown := 0, 0
	for _, title := range titles {
		e := errs[title]
		k, isKnown := known[title]
		switch {
		case len(e) > 0 && isKnown && !strict:
			nfailed++
			nknown++
			t.Logf("known failure: %s\n\tgot: %s\n\twhy: %s", title, strings.Join(e, "; "), k.reason)
		case len(e) > 0:
			nfailed++
			fail("FAIL %s: %s", title, strings.Join(e, "; "))
		case isKnown && k.kind == always:
			fail("%s now passes: remove it from knownFailures (was: %s)", title, k.reason)
		}
	}
	for title := range known {
		if title != stillOpen && !slices.Contains(titles, title) {
			fail("knownFailures: %s has no case %q", suite, title)
		}
	}
	if runErr != nil && nfailed == 0 {
		fail("mocha failed with every case passing: %v", runErr)
	}
	if ok {
		t.Logf("%s: %d cases, %d known failures", suite, len(titles), nknown)
	}
	return ok
}

// runMocha runs one suite against url and returns its results (nil when
// mocha wrote none), its output (stdout and stderr) and its exit error.
// Mocha and anything it spawns run in their own process group, killed when
// the run ends.
func runMocha(t *testing.T, dir, suite, url string) ([]result, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), suiteTimeout)
	defer cancel()
	out := filepath.Join(t.TempDir(), "results.json")
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "mocha"),
		"--reporter", "./reporter.cjs", "--reporter-option", "output="+out,
		filepath.Join(suite, "test-suite.js"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PROTOCOL_URL="+url, "NO_COLOR=1", "FORCE_COLOR=0")
	var output bytes.Buffer
	cmd.Stdout = &output
	cmd.Stderr = &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd) }
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = killGroup(cmd) // whatever mocha left behind
	}
	if ctx.Err() != nil {
		runErr = fmt.Errorf("%w after %s: %w", ctx.Err(), suiteTimeout, runErr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, output.String(), errors.Join(runErr, err)
	}
	var results []result
	if err := json.Unmarshal(b, &results); err != nil {
		return nil, output.String(), errors.Join(runErr, fmt.Errorf("decode %s: %w", out, err))
	}
	return results, output.String(), runErr
}

// killGroup kills the process group cmd leads.
func killGroup(cmd *exec.Cmd) error {
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// requireMocha skips the test when node or the suites' node_modules is
// missing, unless FRUTOS_REQUIRE_NODE=1, in which case it fails.
func requireMocha(t *testing.T, dir string) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else {
		for _, m := range []string{"mocha", "chai", "chai-string", "node-fetch", "ws"} {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
				missing = fmt.Sprintf("%s is missing from %s", m, filepath.Join(dir, "node_modules"))
				break
			}
		}
	}
	if missing == "" {
		return
	}
	const fix = "run: npm ci --prefix testdata/protocol (or make protocol)"
	if os.Getenv(nodefix.EnvRequireNode) == "1" {
		t.Fatalf("protocol suites: %s (%s=1); %s", missing, nodefix.EnvRequireNode, fix)
	}
	t.Skipf("protocol suites: %s; %s (set %s=1 to fail instead)", missing, fix, nodefix.EnvRequireNode)
}
