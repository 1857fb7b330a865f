package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/redisproc"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/nodefix"
)

// The commands of the scripts that run a daemon (see TestScripts). A
// script's daemon is the built binary started by `exec frutos start`; it
// is killed when the script ends (stopDaemon), whatever the script did.

// cmdFreePort sets the environment variable NAME to a loopback TCP port
// nothing listens on: "freeport NAME".
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport NAME")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	port := l.Addr().(*net.TCPAddr).Port
	ts.Check(l.Close())
	ts.Setenv(args[0], strconv.Itoa(port))
}

// cmdOwnRedis starts a redis-server for this script alone and sets the
// variable NAME to its URL and NAME_ADDR to its host:port: "ownredis NAME
// [redis-server options...]". Scripts that start a daemon
// use one: workers subscribed to the shared $REDIS would be counted by
// other scripts (emit's "1 server received it", status --all-hosts).
func cmdOwnRedis(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: ownredis NAME [redis-server options...]")
	}
	dir := ts.MkAbs("redis-" + args[0])
	ts.Check(os.MkdirAll(dir, 0o700))
	var err error
	for range 5 { // a free port can be taken between probe and bind
		l, lerr := net.Listen("tcp", "127.0.0.1:0")
		ts.Check(lerr)
		port := l.Addr().(*net.TCPAddr).Port
		ts.Check(l.Close())
		var p *redisproc.Process
		if p, err = redisproc.Start(port, dir, nil, args[1:]); err == nil {
			ts.Defer(p.Kill)
			ts.Setenv(args[0], fmt.Sprintf("redis://127.0.0.1:%d", port))
			ts.Setenv(args[0]+"_ADDR", fmt.Sprintf("127.0.0.1:%d", port))
			return
		}
	}
	ts.Fatalf("ownredis: %v", err)
}

// cmdWaitWorkers waits (30 s at most) until the daemon of $FRUTOS_HOME
// lists N workers, all of them with the status given (online by
// default): "waitworkers N [status]".
func cmdWaitWorkers(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitworkers N [status]")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	want := control.StatusOnline
	if len(args) == 2 {
		want = args[1]
	}
	client := control.NewClient(ts.Getenv("FRUTOS_HOME"))
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := client.Status(ctx)
		cancel()
		if err == nil && len(st.Workers) == n && allStatus(st.Workers, want) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitworkers: no %d %s workers after 30s (status: %+v, err %v)", n, want, st.Workers, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cmdWaitFile waits (30 s at most) until FILE exists and has a line
// matching REGEXP: "waitfile FILE REGEXP". For what a process writes
// after the state a script can wait on (a worker's log after it is ready).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitfile FILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("waitfile: no line matching %q in %s after 30s (read error %v):\n%s", args[1], args[0], err, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func allStatus(ws []control.Worker, status string) bool {
	for _, w := range ws {
		if w.Status != status {
			return false
		}
	}
	return true
}

// cmdConnect opens a Socket.IO session as a client would, and prints the
// outcome on stdout: "connected", or "connect_error <message> <data as
// JSON>": "connect URL TOKEN", where TOKEN is a JWT, "-" for none, or
// "mint:SECRET:SUB:TTL[:ROLE]" for a token signed here (a negative TTL makes an
// expired one), or "stdout" for the last command's stdout (frutos token).
func cmdConnect(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: connect URL TOKEN|-|stdout|mint:SECRET:SUB:TTL")
	}
	auth := map[string]any{}
	switch tok := args[1]; {
	case tok == "-":
	case tok == "stdout":
		auth["token"] = strings.TrimSpace(ts.ReadFile("stdout"))
	case len(tok) > 5 && tok[:5] == "mint:":
		auth["token"] = mintForScript(ts, tok[5:])
	default:
		auth["token"] = tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: args[0], Auth: auth})
	var ce *sioclient.ConnectError
	switch {
	case err == nil:
		c.Close()
		fmt.Fprintln(ts.Stdout(), "connected")
	case errors.As(err, &ce):
		data, _ := json.Marshal(ce.Data)
		fmt.Fprintf(ts.Stdout(), "connect_error %s %s\n", ce.Message, data)
	default:
		ts.Fatalf("connect: %v", err)
	}
}

// mintForScript signs SECRET:SUB:TTL (TTL may be negative: already expired).
func mintForScript(ts *testscript.TestScript, spec string) string {
	parts := strings.SplitN(spec, ":", 4)
	if len(parts) < 3 {
		ts.Fatalf("connect: mint:%s is not mint:SECRET:SUB:TTL[:ROLE]", spec)
	}
	d, err := time.ParseDuration(parts[2])
	ts.Check(err)
	role := jwtauth.RoleStudent
	if len(parts) == 4 {
		role = parts[3]
	}
	return nodefix.MintTokenClaims(parts[0], map[string]any{"sub": parts[1], "role": role, "exp": time.Now().Add(d).Unix()})
}

// stopDaemon ends the daemon a script left running for home: `frutos kill`,
// then SIGKILL if it is still there, and of its workers (they outlive a
// daemon that dies, for restart.orphan_grace) too.
func stopDaemon(bin, home string, env []string) {
	defer killOrphans(home) // also when the script killed its daemon itself
	pid := readPIDFile(filepath.Join(home, "daemon.pid"))
	if pid <= 0 || !processAlive(pid) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "kill")
	cmd.Env = append(env, "FRUTOS_HOME="+home)
	_ = cmd.Run()
	if processAlive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		for deadline := time.Now().Add(10 * time.Second); processAlive(pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	_ = os.Remove(filepath.Join(home, control.SocketName))
}
