package daemon

import (
	"fmt"

	"github.com/frutos/frutos/control"
)

func badRequestf(format string, args ...any) error {
	return &control.Error{Code: control.CodeBadRequest, Message: fmt.Sprintf(format, args...)}
}

func notFoundf(format string, args ...any) error {
	return &control.Error{Code: control.CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

func conflictf(format string, args ...any) error {
	return &control.Error{Code: control.CodeConflict, Message: fmt.Sprintf(format, args...)}
}
