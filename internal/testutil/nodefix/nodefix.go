// Package nodefix drives the Node.js interop fixture in testdata/node (the
// real socket.io, socket.io-client, @socket.io/redis-adapter and
// @socket.io/redis-emitter packages) from Go tests, to prove wire
// compatibility with them.
//
// Each fixture script is a long-running subprocess speaking JSON lines:
// commands go to its stdin, events and replies come from its stdout, one
// JSON object per line. A Proc keeps every line it has received; WaitFor
// scans that history from the beginning and then waits for new lines, so a
// line that arrived before the call is found too.
//
// Decoding: lines are decoded with encoding/json into map[string]any, so
// JSON numbers are float64 (integers above 2^53 lose precision: the
// fixture sends none). Binary values travel as {"$bin": "<base64>"} in both
// directions: Do converts every []byte inside a command to that form, and
// Bin decodes it back.
//
// Lines are shared between callers and must be treated as read-only.
package nodefix

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// EnvRequireNode is the environment variable that turns a missing Node
// fixture from a skip into a failure (CI sets it to 1).
const EnvRequireNode = "FRUTOS_REQUIRE_NODE"

// DefaultSecret is the JWT secret StartServer uses when ServerOptions.Secret
// is empty.
const DefaultSecret = "frutos-nodefix-secret"

// DefaultWait bounds WaitFor and Do when their context has no deadline.
const DefaultWait = 15 * time.Second

const (
	startTimeout = 20 * time.Second // node start-up, including Redis connect
	stopTimeout  = 5 * time.Second  // from stdin close to exit, then SIGKILL
	stderrKeep   = 20               // stderr lines kept for failure messages
	stdoutShow   = 10               // stdout lines shown in failure messages
)

// requiredModules are the packages whose presence in node_modules means
// `npm ci` has run.
var requiredModules = []string{
	"socket.io", "socket.io-client", "@socket.io/redis-adapter",
	"@socket.io/redis-emitter", "@socket.io/redis-streams-adapter", "redis", "jsonwebtoken",
}

// EnvDir, when set, overrides Dir (e.g. to try a copy of the fixture with
// other package versions).
const EnvDir = "NODEFIX_DIR"

// Dir returns the absolute path of testdata/node, found by walking up from
// the test's working directory to the directory holding go.mod (or the
// value of NODEFIX_DIR when set).
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(EnvDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatalf("nodefix: %s: %v", EnvDir, err)
		}
		return abs
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("nodefix: getwd: %v", err)
	}
	for d := wd; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "testdata", "node")
		}
		parent := filepath.Dir(d)
		if parent == d {
			t.Fatalf("nodefix: no go.mod above %s", wd)
		}
		d = parent
	}
}

// Require skips the test when node or the fixture's node_modules is
// missing, unless FRUTOS_REQUIRE_NODE=1, in which case it fails the test.
func Require(t testing.TB) {
	t.Helper()
	missing := ""
	if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not installed"
	} else {
		dir := Dir(t)
		for _, m := range requiredModules {
			if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(m), "package.json")); err != nil {
				missing = fmt.Sprintf("%s is missing from %s", m, filepath.Join(dir, "node_modules"))
				break
			}
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv(EnvRequireNode) == "1" {
		t.Fatalf("nodefix: %s (%s=1); run: npm ci --prefix testdata/node", missing, EnvRequireNode)
	}
	t.Skipf("nodefix: %s; run: npm ci --prefix testdata/node (set %s=1 to fail instead)", missing, EnvRequireNode)
}

// Line is one JSON object printed by a fixture script.
type Line map[string]any

// String returns l[key] when it is a string, else "".
func (l Line) String(key string) string {
	s, _ := l[key].(string)
	return s
}

// Map returns l[key] when it is a JSON object, else nil.
func (l Line) Map(key string) Line {
	m, _ := l[key].(map[string]any)
	return m
}

// Args returns l["args"] when it is an array, else nil.
func (l Line) Args() []any {
	a, _ := l["args"].([]any)
	return a
}

// Bin wraps b in the fixture's binary form {"$bin": base64}. Do converts
// []byte values by itself; Bin is for building expected values.
func Bin(b []byte) map[string]any {
	return map[string]any{"$bin": base64.StdEncoding.EncodeToString(b)}
}

// DecodeBin returns the bytes of a {"$bin": base64} value.
func DecodeBin(v any) ([]byte, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, false
	}
	s, ok := m["$bin"].(string)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// ReplyError is the error a command replied with.
type ReplyError struct {
	Op      string
	Message string
}

func (e *ReplyError) Error() string { return fmt.Sprintf("nodefix %s: %s", e.Op, e.Message) }

// Proc is one fixture subprocess.
type Proc struct {
	name string // e.g. "server.js[1234]"
	cmd  *exec.Cmd

	writeMu sync.Mutex
	stdin   io.WriteCloser

	mu      sync.Mutex
	lines   []Line
	changed chan struct{} // closed (and replaced) on each new line and on exit
	exited  bool
	exitErr error
	stderr  tailBuffer

	port   int
	nextID atomic.Int64
	done   chan struct{} // closed once the process has exited and stdout is drained
	stop   sync.Once
}

// start launches `node <script>` in Dir(t) with env added to the current
// environment, and registers Stop with t.Cleanup.
func start(t testing.TB, script string, env []string) *Proc {
	t.Helper()
	Require(t)
	return startIn(t, Dir(t), script, env)
}

// startIn launches `node <script>` in dir (a fixture whose modules the
// caller checked).
func startIn(t testing.TB, dir, script string, env []string) *Proc {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("nodefix: %v", err)
	}
	cmd := exec.Command(node, script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = stopTimeout // never hang on an inherited pipe
	p := &Proc{cmd: cmd, changed: make(chan struct{}), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("nodefix: stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("nodefix: stdout pipe: %v", err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatalf("nodefix: start node %s: %v", script, err)
	}
	p.name = fmt.Sprintf("%s[%d]", script, cmd.Process.Pid)
	go p.read(stdout)
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s", p.diag())
		}
	})
	return p
}

// read consumes stdout until EOF, then reaps the process.
func (p *Proc) read(stdout io.Reader) {
	r := bufio.NewReader(stdout)
	for {
		b, err := r.ReadBytes('\n')
		if b = bytes.TrimSpace(b); len(b) > 0 {
			var l Line
			if json.Unmarshal(b, &l) != nil || l == nil {
				l = Line{"$nonjson": string(b)}
			}
			p.mu.Lock()
			p.lines = append(p.lines, l)
			p.notifyLocked()
			p.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exited = true
	p.exitErr = err
	p.notifyLocked()
	p.mu.Unlock()
	close(p.done)
}

func (p *Proc) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Name identifies the process in messages, e.g. "server.js[1234]".
func (p *Proc) Name() string { return p.name }

// Port is the port a server reported in its ready line (0 for others).
func (p *Proc) Port() int { return p.port }

// URL is http://127.0.0.1:<Port()>.
func (p *Proc) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

// Lines returns a copy of every line received so far.
func (p *Proc) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Events returns every {"event": name} line received so far.
func (p *Proc) Events(name string) []Line {
	var out []Line
	for _, l := range p.Lines() {
		if ev, ok := l["event"].(string); ok && ev == name {
			out = append(out, l)
		}
	}
	return out
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// Stderr returns the last lines the process wrote to stderr.
func (p *Proc) Stderr() string { return p.stderr.String() }

// WaitFor returns the first line, from the beginning of the history, that
// match accepts, waiting for new lines until ctx ends (DefaultWait when ctx
// has no deadline). It returns an error at once when the process has exited
// without such a line. Errors carry the process's recent output and stderr.
func (p *Proc) WaitFor(ctx context.Context, match func(Line) bool) (Line, error) {
	ls, err := p.WaitCount(ctx, 1, match)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// WaitCount waits until n lines match and returns the first n of them.
func (p *Proc) WaitCount(ctx context.Context, n int, match func(Line) bool) ([]Line, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultWait)
		defer cancel()
	}
	seen := 0 // lines already checked
	var found []Line
	for {
		p.mu.Lock()
		for ; seen < len(p.lines) && len(found) < n; seen++ {
			if match(p.lines[seen]) {
				found = append(found, p.lines[seen])
			}
		}
		exited, exitErr, changed := p.exited, p.exitErr, p.changed
		p.mu.Unlock()
		if len(found) >= n {
			return found, nil
		}
		if exited {
			return found, fmt.Errorf("nodefix: %s exited (%v) before %d matching line(s) (got %d)\n%s",
				p.name, exitErr, n, len(found), p.diag())
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return found, fmt.Errorf("nodefix: %s: %w waiting for %d matching line(s) (got %d)\n%s",
				p.name, ctx.Err(), n, len(found), p.diag())
		}
	}
}

// WaitEvent waits for the first {"event": name} line.
func (p *Proc) WaitEvent(ctx context.Context, name string) (Line, error) {
	return p.WaitFor(ctx, func(l Line) bool { ev, ok := l["event"].(string); return ok && ev == name })
}

// Has returns a predicate matching lines that have key.
func Has(key string) func(Line) bool {
	return func(l Line) bool { _, ok := l[key]; return ok }
}

// Send writes one command line without waiting for a reply. []byte values
// inside cmd are sent as {"$bin": base64}.
func (p *Proc) Send(cmd map[string]any) error {
	b, err := json.Marshal(toWire(cmd))
	if err != nil {
		return fmt.Errorf("nodefix: encode command: %w", err)
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("nodefix: write to %s: %w\n%s", p.name, err, p.diag())
	}
	return nil
}

// Do sends cmd with a fresh "id" and waits for the reply with that id. It
// returns the reply's "ok" value, or a *ReplyError built from its "error".
func (p *Proc) Do(ctx context.Context, cmd map[string]any) (any, error) {
	l, err := p.DoLine(ctx, cmd)
	if err != nil {
		return nil, err
	}
	return l["ok"], nil
}

// DoLine is Do returning the whole reply line (e.g. the emitter's
// "receivers" count).
func (p *Proc) DoLine(ctx context.Context, cmd map[string]any) (Line, error) {
	id := fmt.Sprintf("go-%d", p.nextID.Add(1))
	c := make(map[string]any, len(cmd)+1)
	for k, v := range cmd {
		c[k] = v
	}
	c["id"] = id
	if err := p.Send(c); err != nil {
		return nil, err
	}
	l, err := p.WaitFor(ctx, func(l Line) bool {
		s, ok := l["id"].(string)
		_, hasOK := l["ok"]
		_, hasErr := l["error"]
		return ok && s == id && (hasOK || hasErr)
	})
	if err != nil {
		return nil, fmt.Errorf("nodefix: %v: %w", cmd["op"], err)
	}
	if e, ok := l["error"]; ok && e != nil {
		op, _ := cmd["op"].(string)
		return l, &ReplyError{Op: op, Message: fmt.Sprint(e)}
	}
	return l, nil
}

// Stop closes stdin (the scripts exit on EOF, closing their Redis clients),
// waits up to 5s, then kills the process. Safe to call more than once and
// concurrently; registered with t.Cleanup by the Start functions.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		p.writeMu.Lock()
		_ = p.stdin.Close()
		p.writeMu.Unlock()
		timer := time.NewTimer(stopTimeout)
		defer timer.Stop()
		select {
		case <-p.done:
			return
		case <-timer.C:
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// diag describes the recent output of the process for failure messages.
func (p *Proc) diag() string {
	p.mu.Lock()
	recent := p.lines
	if len(recent) > stdoutShow {
		recent = recent[len(recent)-stdoutShow:]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s: last %d stdout line(s) of %d:\n", p.name, len(recent), len(p.lines))
	for _, l := range recent {
		j, _ := json.Marshal(l)
		if len(j) > 500 {
			j = append(j[:500], "..."...)
		}
		fmt.Fprintf(&b, "  %s\n", j)
	}
	p.mu.Unlock()
	fmt.Fprintf(&b, "--- %s: stderr (last %d lines):\n%s", p.name, stderrKeep, p.stderr.String())
	return b.String()
}

// toWire converts []byte values (recursively through maps and slices of
// any) to {"$bin": base64}.
func toWire(v any) any {
	switch x := v.(type) {
	case []byte:
		return Bin(x)
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = toWire(e)
		}
		return m
	case Line:
		return toWire(map[string]any(x))
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = toWire(e)
		}
		return s
	default:
		return v
	}
}

// tailBuffer is an io.Writer keeping the last stderrKeep lines.
type tailBuffer struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, string(b.partial[:i]))
		b.partial = b.partial[i+1:]
	}
	if len(b.partial) > 64<<10 { // a runaway line without newline
		b.lines = append(b.lines, string(b.partial))
		b.partial = nil
	}
	if len(b.lines) > stderrKeep {
		b.lines = append([]string(nil), b.lines[len(b.lines)-stderrKeep:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.lines
	if len(b.partial) > 0 {
		all = append(append([]string(nil), all...), string(b.partial))
	}
	if len(all) == 0 {
		return "  (empty)"
	}
	return "  " + strings.Join(all, "\n  ")
}

// waitReady waits for {"ready": true}; on failure it fails the test.
func (p *Proc) waitReady(t testing.TB) Line {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	l, err := p.WaitFor(ctx, func(l Line) bool { return l["ready"] == true })
	if err != nil {
		t.Fatalf("nodefix: %s not ready: %v", p.name, err)
	}
	return l
}
