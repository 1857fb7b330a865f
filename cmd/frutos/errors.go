package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
)

// Exit codes, stable for scripts.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed (details on stderr)
	exitUsage   = 2 // bad flags or arguments
	exitConfig  = 3 // the configuration is invalid
	exitRedis   = 4 // Redis is unreachable or unhealthy
	exitDaemon  = 5 // the daemon is not running or did not answer
)

// flagError is a command-line mistake: exit 2, with the command's own
// hint (a one-line usage, an example) or else the pointer to its --help.
// The whole usage is never printed: it buries the error.
type flagError struct {
	err  error
	hint string
}

func (e flagError) Error() string { return e.err.Error() }
func (e flagError) Unwrap() error { return e.err }

// usageErrorf makes a flagError for a bad argument found by a command.
func usageErrorf(format string, args ...any) error {
	return flagError{err: fmt.Errorf(format, args...)}
}

// exitError carries an exit code and a hint chosen by a command.
type exitError struct {
	code int
	err  error
	hint string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withCode wraps err with an exit code and an optional hint.
func withCode(code int, err error, hint string) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err, hint: hint}
}

// reportError prints err (once, one line plus an optional hint) and maps
// it to an exit code. cmd is the command that failed: a usage error's hint
// points to its --help.
func reportError(s *IOStreams, err error, cmd *cobra.Command) int {
	if err == nil {
		return exitOK
	}
	code, hint := exitFailure, ""
	seeHelp := fmt.Sprintf("run '%s --help' for usage", cmd.CommandPath())
	var fe flagError
	var ae argsError
	var ee *exitError
	var ce *configs.Error
	switch {
	case errors.As(err, &ee):
		code, hint = ee.code, ee.hint
	case errors.As(err, &fe):
		code, hint = exitUsage, fe.hint
		if hint == "" {
			hint = seeHelp
		}
	case errors.As(err, &ae) && !cmd.HasParent():
		code, hint = exitUsage, fmt.Sprintf("run '%s --help' for the list of commands", cmd.CommandPath())
	case errors.As(err, &ae):
		code, hint = exitUsage, seeHelp
	case errors.As(err, &ce) && onlyBadFlagValues(err):
		code, hint = exitUsage, seeHelp
	case errors.As(err, &ce):
		code, hint = exitConfig, "fix the configuration, then try again (the example: configs/frutos.yaml)"
	}
	fmt.Fprintf(s.ErrOut, "error: %s\n", strings.TrimSpace(err.Error()))
	if hint != "" {
		fmt.Fprintf(s.ErrOut, "hint: %s\n", hint)
	}
	return code
}

// onlyBadFlagValues reports whether every configuration error in err is
// about a flag's value (`--env staging`, `--instances 0`): a usage error,
// as any other bad flag, not a bad configuration.
func onlyBadFlagValues(err error) bool {
	switch e := err.(type) {
	case *configs.Error:
		return e.FromFlag()
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		for _, err := range errs {
			if !onlyBadFlagValues(err) {
				return false
			}
		}
		return len(errs) > 0
	case interface{ Unwrap() error }:
		return onlyBadFlagValues(e.Unwrap())
	}
	return false
}
