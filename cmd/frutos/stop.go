package main

import (
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

func newCmdStop(f *Factory, runF func(*targetOptions) error) *cobra.Command {
	return newTargetCmd(f, &cobra.Command{
		Use:   "stop <id|all>",
		Short: "Stop workers gracefully (they stay in the list, stopped)",
		Long: `Stop workers gracefully: each drains (its clients are asked to reconnect
to the other workers), then exits; after kill_timeout it is killed. Stopped
workers stay in the list until restart, reload or delete.`,
		Example: "  frutos stop all\n  frutos stop 2",
	}, (*control.Client).Stop, runF)
}
