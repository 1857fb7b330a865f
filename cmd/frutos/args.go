package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// argsError is a command line that names no command, or whose arguments a
// command's validator refused: a usage error (exit 2). Its message is
// cobra's (`unknown command "x" for "frutos"`, "accepts 1 arg(s), received
// 2").
type argsError struct{ err error }

func (e argsError) Error() string { return e.err.Error() }
func (e argsError) Unwrap() error { return e.err }

// typeArgErrors makes the argument validator of cmd and of every command
// below it (cobra's completion commands included) return an argsError, so
// that the exit status does not depend on the words of cobra's messages.
func typeArgErrors(cmd *cobra.Command) {
	if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error { return asArgsError(validate(c, args)) }
	}
	for _, sub := range cmd.Commands() {
		typeArgErrors(sub)
	}
}

// asArgsError types err as an argsError, unless a command explained its
// arguments with a flagError already (emit, token).
func asArgsError(err error) error {
	var fe flagError
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return argsError{err}
}
