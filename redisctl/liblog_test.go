package redisctl

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLibraryLoggerThrottles(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Unix(1000, 0)
	l := newLibraryLogger(logger, 10*time.Second, func() time.Time { return now })
	ctx := context.Background()
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"

	for i := range 300 { // an outage: a dial failure every 100ms for 30s
		l.Printf(ctx, dial, 1, "connection refused")
		if i%50 == 0 {
			l.Printf(ctx, "sentinel: selected addr=%s", "h:1")
		}
		now = now.Add(100 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var dials, others int
	var lastDial string
	for _, line := range lines {
		switch {
		case strings.Contains(line, "failed to dial"):
			dials++
			lastDial = line
			if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "component=go-redis") {
				t.Errorf("line not at debug with component: %s", line)
			}
			if strings.Contains(line, `msg="redis: `) {
				t.Errorf("the redis: prefix was kept: %s", line)
			}
		case strings.Contains(line, "sentinel: selected"):
			others++
		}
	}
	if dials != 3 {
		t.Errorf("%d dial lines in 30s, want 3 (one per 10s):\n%s", dials, buf.String())
	}
	if others != 3 { // every 5s for 30s, each kind throttled on its own
		t.Errorf("%d sentinel lines, want 3", others)
	}
	if !strings.Contains(lastDial, "suppressed=99") {
		t.Errorf("the last dial line does not count the 99 left out: %s", lastDial)
	}
}

func TestLibraryLoggerRespectsLevel(t *testing.T) {
	var buf bytes.Buffer
	l := newLibraryLogger(slog.New(slog.NewTextHandler(&buf, nil)), time.Second, time.Now) // Info level
	l.Printf(context.Background(), "redis: connection pool: failed to dial: %v", "x")
	if buf.Len() != 0 {
		t.Errorf("logged at debug to an info logger: %s", buf.String())
	}
	newLibraryLogger(nil, time.Second, time.Now).Printf(context.TODO(), "x %d", 1) // must not panic
}
