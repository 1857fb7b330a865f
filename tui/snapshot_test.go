package tui

import (
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/frutos/frutos/control"
)

func TestTUISnapshot(t *testing.T) {
	st := fourWorkers()
	st.Workers[2].Status, st.Workers[2].PID, st.Workers[2].LastExit = control.StatusErrored, 0, "exit status 2"
	for _, tt := range []struct {
		name  string
		width int
		st    control.Status
	}{
		{"four_workers_100", 100, st},
		{"four_workers_160", 160, st},
		{"no_app", 100, control.Status{Daemon: control.Daemon{PID: 7, UptimeSec: 3}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := Snapshot(tt.st, tt.width)
			if strings.Contains(out, "\x1b") || strings.Contains(out, "> ") {
				t.Errorf("escape codes or a selection in a snapshot:\n%s", out)
			}
			golden.RequireEqual(t, []byte(out))
		})
	}
}
