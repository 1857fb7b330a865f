package logs

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// collector gathers the lines a follower hands out and lets a test wait for
// them without sleeping.
type collector struct {
	mu      sync.Mutex
	lines   []Line
	changed chan struct{} // a token whenever lines grow
}

func newCollector() *collector { return &collector{changed: make(chan struct{}, 1)} }

func (c *collector) add(l Line) {
	c.mu.Lock()
	c.lines = append(c.lines, l)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines...)
}

func (c *collector) texts() []string {
	var out []string
	for _, l := range c.snapshot() {
		out = append(out, l.Text)
	}
	return out
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// waitLen waits until at least n lines arrived, or fails the test at the
// deadline.
func (c *collector) waitLen(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for c.len() < n {
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v: %d of %d lines arrived; last: %q", d, c.len(), n, lastTexts(c.texts(), 5))
		}
	}
}

// waitQuiet waits until n lines arrived or none came for quiet.
func (c *collector) waitQuiet(n int, quiet time.Duration) {
	for c.len() < n {
		select {
		case <-c.changed:
		case <-time.After(quiet):
			return
		}
	}
}

func lastTexts(s []string, n int) []string {
	return s[max(len(s)-n, 0):]
}

// follow runs Reader.Follow in a goroutine until the test ends.
func follow(t *testing.T, r Reader, path string, from Offset) *collector {
	t.Helper()
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Follow(ctx, path, from, c.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Follow returned %v, want context.Canceled", err)
		}
	})
	return c
}

// fastReader polls often, so tests run quickly.
var fastReader = Reader{Poll: 2 * time.Millisecond}

// readLines returns the lines of the file at path (without newlines).
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if s == "" {
		return nil
	}
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("%s does not end with a newline: ...%q", path, s[max(len(s)-40, 0):])
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func mustOpen(t *testing.T, path string, o Options) *Writer {
	t.Helper()
	w, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w *Writer, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("Write(%q) = %d, %v", s, n, err)
	}
}
