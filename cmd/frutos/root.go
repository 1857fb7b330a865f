package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "frutos <command> [flags]",
		Short: "Run and operate a Socket.IO realtime tier",
		Long: `frutos runs a Socket.IO realtime tier: a supervisor daemon and N worker
processes joined through Redis, wire-compatible with socket.io-client and
with Node backends using @socket.io/redis-emitter.`,
		Example: `  frutos start --instances max
  frutos status
  frutos emit user 42 evidencia_aprobada '{"evidenciaId": 7}'`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return flagError{err: err, usage: c.UsageString()}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&f.ConfigFile, "config", "", "configuration file (default ./frutos.yaml if present)")
	pf.StringVar(&f.Env, "env", "", "environment: development (default) or production")

	root.AddCommand(
		newCmdVersion(f, nil),
		newCmdLogs(f, nil),
		newCmdFlush(f, nil),
		newCmdWorker(f, nil),
		newCmdDaemon(f, nil),
		newCmdStart(f, nil),
		newCmdStatus(f, nil),
		newCmdStop(f, nil),
		newCmdRestart(f, nil),
		newCmdReload(f, nil),
		newCmdDelete(f, nil),
		newCmdScale(f, nil),
		newCmdKill(f, nil),
		newCmdUpdate(f, nil),
		newCmdSave(f, nil),
		newCmdResurrect(f, nil),
		newCmdStartup(f, nil),
		newCmdPing(f, nil),
		newCmdEmit(f, nil),
		newCmdToken(f, nil),
		newCmdAdminUI(f, nil),
		newCmdMonit(f, nil),
		newCmdBench(f, nil),
	)
	root.InitDefaultCompletionCmd() // cobra's, made now so that typeArgErrors reaches it
	typeArgErrors(root)
	return root
}
