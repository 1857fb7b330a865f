package daemon

import (
	"fmt"

	"github.com/frutos/frutos/control"
)

// Error codes of the control API.
const (
	codeBadRequest  = "bad_request"
	codeNotFound    = "not_found"
	codeConflict    = "conflict"
	codeFailed      = "failed"
	codeUnavailable = "unavailable"
)

func badRequestf(format string, args ...any) error {
	return &control.Error{Code: codeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &control.Error{Code: codeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &control.Error{Code: codeConflict, Message: fmt.Sprintf(format, args...)}
}
