package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/testutil/frutosbin"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/redisctl"
)

func TestMain(m *testing.M) {
	// What main does before run: go-redis's retry chatter goes to a
	// debug log, not to the user's terminal. (This runs in the test binary
	// and in every `frutos` a script executes, which is this binary again.)
	redisctl.QuietLibraryLogs(nil)
	testscript.Main(cleanupAfter{m}, map[string]func(){
		"frutos": func() { os.Exit(run(os.Args[1:], systemStreams(), os.Getenv)) },
	})
}

// cleanupAfter removes the frutos binary the tests built (frutosbin) once
// they have run: testscript.Main exits without returning.
type cleanupAfter struct{ m *testing.M }

func (c cleanupAfter) Run() int {
	defer frutosbin.Cleanup()
	return c.m.Run()
}

// TestScripts runs testdata/script/*.txtar: the CLI as a user types it,
// against real redis-servers started here. Scripts get:
//
//	$REDIS, $REDIS_ADDR  a redis-server without a password
//	$PW_ADDR             one with requirepass s3cret-Pw
//	$SILENT_ADDR         a port that accepts connections and never answers
//	$CLOSED_PORT         a loopback port nothing listens on
//	$FRUTOS_HOME         $WORK/home
//
// and these commands:
//
//	exits N prog args...   run prog (like exec) and require exit status N
//	subscribe PATTERN      PSUBSCRIBE on $REDIS from the test (until the script ends)
//	received N             wait for N messages on that subscription; print each as
//	                       "<channel> <message as JSON>" (msgpack decoded) on stdout
//	embedded start|stop    run an embedded Redis for $FRUTOS_HOME
//	subst FILE...          expand $VARS inside files
//	jwtclaims              verify the token on the last stdout with the secret frutos
//	                       would use (env, then the home's dev-secret); print its claims
//	freeport NAME          set $NAME to a loopback port nothing listens on
//	waitworkers N [status] wait until the daemon lists N workers, all online (or status)
//	waitfile FILE REGEXP   wait until FILE has a line matching REGEXP
//	ownredis NAME [OPTS]   start a redis-server for this script alone; $NAME is its URL,
//	                       $NAME_ADDR its host:port
//	                       (scripts that start a daemon use one, not the shared $REDIS)
//	connect URL TOKEN      open a Socket.IO session; print "connected" or
//	                       "connect_error <message> <data JSON>" (TOKEN: a JWT, - for
//	                       none, stdout for the last stdout, mint:SECRET:SUB:TTL[:ROLE]
//	                       to sign one here, expired if TTL < 0)
//
// `frutos` is the built binary (frutosbin), as a user runs it: `frutos
// start` starts a real daemon and real workers from it. A daemon a script
// leaves running for $FRUTOS_HOME is killed when the script ends.
// SYSTEMD_UNIT_PATH starts with $WORK/systemd (then systemd's own
// directories), so that frutos looks for and writes units there, never in
// the machine's.
func TestScripts(t *testing.T) {
	bin := frutosbin.Path(t)
	plain := redistest.Start(t)
	withPW := redistest.Start(t, "--requirepass", "s3cret-Pw")
	silent := redistest.Silent(t)
	closed := redistest.FreePort(t)

	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("REDIS", plain.URL())
			env.Setenv("REDIS_ADDR", plain.Addr())
			env.Setenv("PW_ADDR", withPW.Addr())
			env.Setenv("SILENT_ADDR", silent)
			env.Setenv("CLOSED_PORT", strconv.Itoa(closed))
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("FRUTOS_HOME", home)
			env.Setenv("NO_COLOR", "1")
			env.Setenv("PATH", filepath.Dir(bin)+string(filepath.ListSeparator)+env.Getenv("PATH"))
			env.Setenv("SYSTEMD_UNIT_PATH", filepath.Join(env.WorkDir, "systemd")+":") // then systemd's own
			env.Values[scriptStateKey{}] = &scriptState{}
			env.Defer(func() {
				stopDaemon(bin, home, env.Vars)
				env.Values[scriptStateKey{}].(*scriptState).close()
			})
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":       cmdExits,
			"subscribe":   cmdSubscribe,
			"received":    cmdReceived,
			"embedded":    cmdEmbedded,
			"subst":       cmdSubst,
			"jwtclaims":   cmdJWTClaims,
			"freeport":    cmdFreePort,
			"waitworkers": cmdWaitWorkers,
			"waitfile":    cmdWaitFile,
			"ownredis":    cmdOwnRedis,
			"connect":     cmdConnect,
		},
	})
}

type scriptStateKey struct{}

// scriptState is what a script's custom commands keep between lines.
type scriptState struct {
	mu       sync.Mutex
	client   *redis.Client
	ps       *redis.PubSub
	embedded *redisctl.Embedded
}

func scriptStateOf(ts *testscript.TestScript) *scriptState {
	return ts.Value(scriptStateKey{}).(*scriptState)
}

func (s *scriptState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps != nil {
		s.ps.Close()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.embedded != nil {
		s.embedded.Close()
	}
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("exits: %v", err)
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

func cmdSubscribe(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: subscribe PATTERN")
	}
	s := scriptStateOf(ts)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ps != nil {
		ts.Fatalf("subscribe: already subscribed")
	}
	opt, err := redis.ParseURL(ts.Getenv("REDIS"))
	ts.Check(err)
	s.client = redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.ps = s.client.PSubscribe(ctx, args[0])
	if _, err := s.ps.ReceiveTimeout(ctx, 10*time.Second); err != nil { // the confirmation
		ts.Fatalf("subscribe: %v", err)
	}
}

func cmdReceived(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: received N")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	s := scriptStateOf(ts)
	s.mu.Lock()
	ps := s.ps
	s.mu.Unlock()
	if ps == nil {
		ts.Fatalf("received: subscribe first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := ts.Stdout()
	for range n {
		m, err := ps.ReceiveMessage(ctx)
		if err != nil {
			ts.Fatalf("received: %v", err)
		}
		var msg any
		if err := msgpack.Unmarshal([]byte(m.Payload), &msg); err != nil {
			ts.Fatalf("received: %s: not msgpack: %v", m.Channel, err)
		}
		b, err := json.Marshal(msg)
		ts.Check(err)
		fmt.Fprintf(out, "%s %s\n", m.Channel, b)
	}
}

func cmdEmbedded(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: embedded start|stop")
	}
	s := scriptStateOf(ts)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch args[0] {
	case "start":
		e, err := redisctl.StartEmbedded(ts.Getenv("FRUTOS_HOME"))
		ts.Check(err)
		s.embedded = e
	case "stop":
		if s.embedded == nil {
			ts.Fatalf("embedded: not started")
		}
		ts.Check(s.embedded.Close())
		s.embedded = nil
	default:
		ts.Fatalf("usage: embedded start|stop")
	}
}

func cmdSubst(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: subst FILE...")
	}
	for _, f := range args {
		p := ts.MkAbs(f)
		b, err := os.ReadFile(p)
		ts.Check(err)
		ts.Check(os.WriteFile(p, []byte(os.Expand(string(b), ts.Getenv)), 0o644))
	}
}

func cmdJWTClaims(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jwtclaims")
	}
	token := strings.TrimSpace(ts.ReadFile("stdout"))
	cfg, err := configs.Load(configs.LoadOptions{Getenv: ts.Getenv})
	ts.Check(err)
	secret, _, err := jwtauth.ResolveSecret(cfg)
	ts.Check(err)
	c, err := jwtauth.Verify(secret, token)
	if err != nil {
		ts.Fatalf("jwtclaims: %v", err)
	}
	ttl := time.Until(c.Exp).Round(time.Minute)
	fmt.Fprintf(ts.Stdout(), "sub=%s role=%s ttl=%s\n", c.Sub, c.Role, ttl)
}

// runCLI runs one command line in-process, as main would.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	streams := &IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut, NoColor: true}
	code = run(args, streams, func(k string) string { return env[k] })
	return code, out.String(), errOut.String()
}
