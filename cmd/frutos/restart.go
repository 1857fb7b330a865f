package main

import (
	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

func newCmdRestart(f *Factory, runF func(*targetOptions) error) *cobra.Command {
	return newTargetCmd(f, &cobra.Command{
		Use:   "restart <id|all>",
		Short: "Stop then start workers (use reload for zero downtime)",
		Long: `Stop then start workers, as pm2 restart does: a worker's clients reconnect
to the others while it restarts. For zero downtime use frutos reload.`,
		Example: "  frutos restart 0\n  frutos restart all",
	}, (*control.Client).Restart, runF)
}
