package main

import (
	"errors"
	"fmt"
	"strings"

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

// flagError is a command-line mistake: usage is printed with it.
type flagError struct {
	err   error
	usage string
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
// it to an exit code.
func reportError(s *IOStreams, err error) int {
	if err == nil {
		return exitOK
	}
	code, hint := exitFailure, ""
	var fe flagError
	var ae argsError
	var ee *exitError
	var ce *configs.Error
	switch {
	case errors.As(err, &ee):
		code, hint = ee.code, ee.hint
	case errors.As(err, &fe):
		code = exitUsage
		if fe.usage != "" {
			hint = "\n" + strings.TrimRight(fe.usage, "\n")
		} else {
			hint = "run with --help for usage"
		}
	case errors.As(err, &ae):
		code, hint = exitUsage, "run 'frutos --help' for the list of commands"
	case errors.As(err, &ce) && onlyBadFlagValues(err):
		code, hint = exitUsage, "run with --help for usage"
	case errors.As(err, &ce):
		code, hint = exitConfig, "fix the configuration, then try again (the example: configs/frutos.yaml)"
	}
	fmt.Fprintf(s.ErrOut, "error: %s\n", strings.TrimSpace(err.Error()))
	if hint != "" {
		fmt.Fprintf(s.ErrOut, "hint: %s\n", strings.TrimPrefix(hint, "\n"))
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
