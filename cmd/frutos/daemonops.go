package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/frutos/frutos/control"
)

// parseTarget reads the "id|all" argument of stop, restart and flush.
func parseTarget(args []string) (control.Target, error) {
	if len(args) == 0 || args[0] == "all" {
		return control.Target{All: true}, nil
	}
	id, err := strconv.Atoi(args[0])
	if err != nil || id < 0 {
		return control.Target{}, usageErrorf("%q is not a worker id; give a number from `frutos status`, or all", args[0])
	}
	return control.Target{ID: id}, nil
}

// callDaemon runs one operation and prints its message and the status
// after it.
func callDaemon(io *IOStreams, client *control.Client, path string, body any, timeout time.Duration, asJSON bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res control.Result
	if err := client.Do(ctx, "POST", path, body, &res); err != nil {
		return daemonError(err)
	}
	fmt.Fprintln(io.ErrOut, res.Message)
	return printStatus(io, res.Status, asJSON)
}

// opTimeout bounds operations that stop and start workers.
const opTimeout = 10 * time.Minute
