package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// commandGroups orders root help by purpose, the way gh groups its
// commands, rather than alphabetically: each group and its commands.
var commandGroups = []struct {
	id, title string
	commands  []string
}{
	{"run", "Run the cluster:", []string{"start", "stop", "restart", "reload", "scale", "update", "delete", "kill"}},
	{"watch", "Watch it:", []string{"status", "describe", "logs", "monit", "admin-ui", "flush"}},
	{"keep", "Keep it running across reboots:", []string{"save", "resurrect", "startup", "daemon"}},
	{"redis", "Redis, events and clients:", []string{"ping", "emit", "token"}},
	{"check", "Check and measure:", []string{"doctor", "bench", "version"}},
}

// groupCommands puts root's commands in commandGroups; one not listed
// stays under "Additional Commands".
func groupCommands(root *cobra.Command) {
	group := map[string]string{}
	for _, g := range commandGroups {
		root.AddGroup(&cobra.Group{ID: g.id, Title: g.title})
		for _, name := range g.commands {
			group[name] = g.id
		}
	}
	for _, c := range root.Commands() {
		c.GroupID = group[c.Name()]
	}
	root.SetHelpCommandGroupID("check")
}

// annotationReportsConfig marks a command that reports a configuration
// file that does not decode itself (doctor, as a failed check) rather than
// stopping before it runs.
const annotationReportsConfig = "frutos/reports-config"

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
	// A flag error is the error and a pointer to --help (as gh), not the
	// whole usage; a value of the wrong kind says what the flag takes.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return flagError{err: flagValueError(err)}
	})
	// Every command checks --env and --config (no command defines its own
	// PersistentPreRunE, which would replace this one). doctor reports a
	// configuration that does not decode as one of its checks, so it
	// stops here only for a bad flag value.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		err := f.CheckGlobalFlags()
		if err != nil && cmd.Annotations[annotationReportsConfig] != "" && !onlyBadFlagValues(err) {
			return nil
		}
		return err
	}
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
		newCmdDescribe(f, nil),
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
		newCmdDoctor(f, nil),
	)
	groupCommands(root)
	// frutos --version / -v, as PM2's: the line `frutos version` prints.
	b := buildInfo()
	root.Version = fmt.Sprintf("%s (commit %s, %s, %s)", b.Version, b.Commit, b.GoVersion, b.Platform)
	root.SetVersionTemplate("frutos {{.Version}}\n")
	root.InitDefaultCompletionCmd() // cobra's, made now so that typeArgErrors reaches it
	typeArgErrors(root)
	return root
}
