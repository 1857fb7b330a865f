package tui

import (
	"testing"

	"github.com/frutos/frutos/control"
)

func TestTUISparkline(t *testing.T) {
	tests := []struct {
		xs            []float64
		width         int
		base, minSpan float64
		want          string
	}{
		{nil, 4, 0, 10, "    "},
		{[]float64{0, 5, 10}, 5, 0, 10, "  ▁▅█"},
		{[]float64{0.5, 0.2, 0.9}, 3, 0, 10, "▁▁▂"},      // idle noise stays low
		{[]float64{100, 101, 102, 103}, 3, -1, 1, "▁▅█"}, // from the lowest shown; the oldest cut
		{[]float64{7, 7, 7}, 3, -1, 10, "▁▁▁"},           // steady: flat at the bottom
		{[]float64{1, 2, 3}, 0, 0, 1, ""},
	}
	for _, tt := range tests {
		if got := sparkline(tt.xs, tt.width, tt.base, tt.minSpan); got != tt.want {
			t.Errorf("sparkline(%v, %d, %v, %v) = %q, want %q", tt.xs, tt.width, tt.base, tt.minSpan, got, tt.want)
		}
	}
}

func TestTUIHistoryKeepsRSSOfAProcessNotMeasuredYet(t *testing.T) {
	var h history
	h = h.add([]control.Worker{{ID: 0, PID: 10, Memory: 30 << 20, CPU: 2}, {ID: 1, PID: 11, Memory: 10 << 20}})
	// worker 0 restarted: a new pid the daemon has not sampled; worker 1 errored
	h = h.add([]control.Worker{{ID: 0, PID: 12, Memory: 0}, {ID: 1, PID: 0, Memory: 0}})
	if got := h.workers[0].rss; got[1] != 30<<20 {
		t.Errorf("worker 0 rss %v, want the last measure kept", got)
	}
	if got := h.workers[1].rss; got[1] != 0 {
		t.Errorf("errored worker rss %v, want 0", got)
	}
	if got := h.cluster.rss; got[1] != 30<<20 {
		t.Errorf("cluster rss %v", got)
	}
	for range historyLen + 5 {
		h = h.add([]control.Worker{{ID: 0, PID: 12, Memory: 1}})
	}
	if n := len(h.workers[0].cpu); n != historyLen {
		t.Errorf("history of %d samples, want %d", n, historyLen)
	}
	if _, ok := h.workers[1]; ok {
		t.Error("a removed worker's history is kept")
	}
}
