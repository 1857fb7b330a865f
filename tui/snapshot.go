package tui

import (
	"strings"

	"github.com/frutos/frutos/control"
)

// Snapshot is the screen's header and table for st as plain text, width
// columns wide: what `frutos monit` prints when its output is not a
// terminal (a script, a CI log).
func Snapshot(st control.Status, width int) string {
	m := Model{st: newStyles(false), conn: connState{seen: true}, status: st}
	m.table = m.table.setWorkers(st.Workers)
	lines := m.headerView(width)
	lines = append(lines, m.table.view(width, len(st.Workers)+2, false, m.st)...)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strings.TrimRight(fit(l, width), " "))
		b.WriteByte('\n')
	}
	return b.String()
}
