package tui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// styles are the few looks of the screen. Without colour every style
// renders its text unchanged, so the layout never depends on colour: the
// selection is also marked with ">", errors with words.
type styles struct {
	title    lipgloss.Style // app name, section titles
	dim      lipgloss.Style // labels, help
	good     lipgloss.Style // online, Redis up
	warn     lipgloss.Style // launching, stopping, confirmations
	bad      lipgloss.Style // errored, Redis down, daemon gone, stderr lines
	selected lipgloss.Style // the selected row
	spark    lipgloss.Style
}

func newStyles(color bool) styles {
	r := lipgloss.NewRenderer(io.Discard)
	if color {
		// The 16 basic colours: right on any terminal and over any ssh.
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	s := func() lipgloss.Style { return r.NewStyle() }
	return styles{
		title:    s().Bold(true),
		dim:      s().Foreground(lipgloss.Color("8")),
		good:     s().Foreground(lipgloss.Color("2")),
		warn:     s().Foreground(lipgloss.Color("3")),
		bad:      s().Foreground(lipgloss.Color("1")).Bold(true),
		selected: s().Reverse(true),
		spark:    s().Foreground(lipgloss.Color("6")),
	}
}

// statusStyle colours a worker's status word.
func (st styles) status(status string) lipgloss.Style {
	switch status {
	case "online":
		return st.good
	case "errored":
		return st.bad
	case "stopped":
		return st.dim
	}
	return st.warn
}
