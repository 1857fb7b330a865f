package logs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// Bug: worker log lines repeated a key ("component=worker worker=0 pid=...
// component=redis-adapter"): each package adds its component to the
// logger it is given.
func TestUniqueKeysKeepsEachKeyOnce(t *testing.T) {
	var b bytes.Buffer
	text := slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(UniqueKeys(text)).With("component", "worker", "worker", 0, "pid", 7)
	log.With("component", "redis-adapter").Info("subscribed", "channel", "socket.io#/#")
	log.Info("worker started")
	log.WithGroup("g").With("component", "inner").Info("grouped")
	want := []string{
		`level=INFO msg=subscribed component=redis-adapter worker=0 pid=7 channel=socket.io#/#`,
		`level=INFO msg="worker started" component=worker worker=0 pid=7`,
		`level=INFO msg=grouped component=worker worker=0 pid=7 g.component=inner`,
	}
	got := strings.Split(strings.TrimSpace(b.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
