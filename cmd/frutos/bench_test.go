package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/internal/testutil/workertest"
)

func benchEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func runBenchCLI(getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"bench"}, args...), &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, getenv)
	return code, out.String(), errOut.String()
}

func TestBenchBadFlags(t *testing.T) {
	env := benchEnv(map[string]string{"FRUTOS_HOME": t.TempDir()})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--conns", "0"}, "--conns must be at least 1"},
		{[]string{"--rate", "-1"}, "--rate must be more than 0"},
		{[]string{"--duration", "0s"}, "--duration must be more than 0"},
		{[]string{"--emit-rate", "-5"}, "--emit-rate must be 0 or more"},
		{[]string{"--transport", "carrier-pigeon"}, `--transport "carrier-pigeon"`},
		{[]string{"--users", "9-1"}, "users"},
		{[]string{"--role", "king"}, `--role "king"`},
		{[]string{"--url", "ftp://x"}, "want http://host:port"},
		{[]string{"--shard", "3/2", "--run-id", "x", "--broadcast=false"}, "--shard"},
		{[]string{"extra"}, "unknown command"},
	} {
		code, _, stderr := runBenchCLI(env, tc.args...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("bench %v: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, stderr, tc.want)
		}
	}
}

// Emits need Redis: asking for them without one is exit 4 with a hint;
// the broadcast alone (on by default) is skipped with a note instead.
func TestBenchWithoutRedis(t *testing.T) {
	env := benchEnv(map[string]string{"FRUTOS_HOME": t.TempDir(), "FRUTOS_AUTH_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"})
	code, _, stderr := runBenchCLI(env, "--emit-rate", "10", "--url", "http://127.0.0.1:1")
	if code != exitRedis || !strings.Contains(stderr, "--redis") {
		t.Fatalf("exit %d, stderr %q; want exit 4 with a --redis hint", code, stderr)
	}
}

// setup turns the flags and the configuration into the load: tokens the
// workers accept (the configured secret), users 1-N by default, the URL of
// the configured port, source addresses on loopback only.
func TestBenchSetupMintsTokensTheWorkersAccept(t *testing.T) {
	const secret = "bench-cli-secret-0123456789abcdef"
	f := newFactory(&IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}},
		benchEnv(map[string]string{"FRUTOS_HOME": t.TempDir(), "FRUTOS_AUTH_SECRET": secret, "PORT": "3456"}))
	var got *benchOptions
	cmd := newCmdBench(f, func(o *benchOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--conns", "25000", "--role", "mentor", "--broadcast=false", "--duration", "10s", "--procs", "3"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	s, err := got.setup()
	if err != nil {
		t.Fatal(err)
	}
	defer s.cleanup()
	c := s.cfg
	if c.URL != "http://127.0.0.1:3456" || c.Users != (bench.UserRange{First: 1, Count: 25000}) || c.Sources != 3 || c.Emitter != nil {
		t.Fatalf("config: url %s users %v sources %d emitter %v", c.URL, c.Users, c.Sources, c.Emitter)
	}
	tok, err := c.Token("4242")
	if err != nil {
		t.Fatal(err)
	}
	claims, err := jwtauth.Verify(secret, tok)
	if err != nil || claims.Sub != "4242" || claims.Role != jwtauth.RoleMentor || time.Until(claims.Exp) < 10*time.Second {
		t.Fatalf("token claims %+v, %v", claims, err)
	}
	// A load process gets the user's flags back, not the ones that choose processes.
	if slices.Contains(got.passFlags, "--procs=3") || !slices.Contains(got.passFlags, "--conns=25000") ||
		!slices.Contains(got.passFlags, "--role=mentor") {
		t.Fatalf("flags passed to load processes: %v", got.passFlags)
	}

	got.URL = "http://10.1.2.3:3000" // not loopback: no source addresses to bind
	if s, err := got.setup(); err != nil || s.cfg.Sources != 0 {
		t.Fatalf("non-loopback url: sources %d, err %v", s.cfg.Sources, err)
	}
}

// The binary end to end, split over two load processes: the report adds
// up, and counts every emit once.
func TestBenchBinaryWithTwoLoadProcesses(t *testing.T) {
	const secret = "bench-binary-secret-0123456789abcdef"
	rs := redistest.Start(t)
	w := workertest.Start(t, workertest.Options{RedisURL: rs.URL(), Secret: secret})

	cmd := exec.Command(frutosbin.Path(t), "bench", "--url", w.URL, "--conns", "120", "--rate", "1000",
		"--duration", "3s", "--emit-rate", "200", "--procs", "2", "--redis", rs.URL(), "--json")
	cmd.Env = append(os.Environ(), "FRUTOS_AUTH_SECRET="+secret, "FRUTOS_HOME="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("frutos bench: %v\n%s", err, stderr.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, stdout.String())
	}
	c, e, b := rep.Connections, rep.Events, rep.Broadcast
	if rep.LoadTool.Procs != 2 || c.Established != 120 || c.Failed != 0 || c.HeldAtEnd != 120 {
		t.Fatalf("procs %d, connections %+v\n%s", rep.LoadTool.Procs, c, stderr.String())
	}
	if e.Sent == 0 || e.Delivered != e.Sent || e.Expected != e.Sent || e.Lost != 0 || e.Duplicates != 0 {
		t.Fatalf("events %+v", e)
	}
	if !b.Sent || b.Received != 120 || b.FanOutMS == nil {
		t.Fatalf("broadcast %+v", b)
	}
	if !strings.Contains(stderr.String(), "over 2 load processes") {
		t.Fatalf("stderr: %s", stderr.String())
	}
}
