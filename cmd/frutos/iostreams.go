package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams are the command's standard streams. Data goes to Out, progress
// and errors to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// StdinTTY and StdoutTTY say whether In and Out are terminals.
	StdinTTY, StdoutTTY bool
	// NoColor is set by NO_COLOR.
	NoColor bool
}

func systemStreams() *IOStreams {
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr,
		StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		StdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		NoColor:   noColor,
	}
}

// Color reports whether output to Out may use colours.
func (s *IOStreams) Color() bool { return s.StdoutTTY && !s.NoColor }
