package redisctl

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// libraryLogEvery is how often one kind of go-redis message is logged.
const libraryLogEvery = 10 * time.Second

// QuietLibraryLogs routes go-redis's own log lines ("redis: connection
// pool: failed to dial ...", printed to stderr on every retry during an
// outage, hundreds a minute) to logger at debug level, at most one line of
// each kind every 10 seconds, with the count of the ones left out.
//
// go-redis keeps its logger in a process-wide variable, so this is called
// once, from main, before any client is made. A nil logger discards them.
func QuietLibraryLogs(logger *slog.Logger) {
	redis.SetLogger(newLibraryLogger(logger, libraryLogEvery, time.Now))
}

// libraryLogger implements go-redis's logging interface.
type libraryLogger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	kinds map[string]*logKind // by format string
}

type logKind struct {
	last       time.Time
	suppressed int
}

// maxLogKinds bounds the throttle table; go-redis has a few dozen formats.
const maxLogKinds = 256

func newLibraryLogger(logger *slog.Logger, every time.Duration, now func() time.Time) *libraryLogger {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &libraryLogger{
		log:   logger.With("component", "go-redis"),
		every: every, now: now,
		kinds: map[string]*logKind{},
	}
}

// Printf logs the message unless one of the same kind was logged less than
// l.every ago.
func (l *libraryLogger) Printf(ctx context.Context, format string, v ...any) {
	if ctx == nil {
		ctx = context.Background()
	}
	if !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	now := l.now()
	l.mu.Lock()
	k, ok := l.kinds[format]
	if !ok {
		if len(l.kinds) >= maxLogKinds {
			clear(l.kinds)
		}
		k = &logKind{}
		l.kinds[format] = k
	}
	if ok && now.Sub(k.last) < l.every {
		k.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := k.suppressed
	k.last, k.suppressed = now, 0
	l.mu.Unlock()

	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	if suppressed > 0 {
		l.log.DebugContext(ctx, msg, "suppressed", suppressed)
		return
	}
	l.log.DebugContext(ctx, msg)
}
