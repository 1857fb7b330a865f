package main

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

type startupOptions struct {
	IO      *IOStreams
	Home    func() string
	Install bool
	Exe     func() (string, error)
	Unit    string // where --install writes (default by uid)
}

func newCmdStartup(f *Factory, runF func(*startupOptions) error) *cobra.Command {
	opts := &startupOptions{IO: f.IO, Home: f.Home, Exe: os.Executable}
	cmd := &cobra.Command{
		Use:   "startup",
		Short: "Print (or install) a systemd unit that runs the daemon at boot",
		Long: `Print a systemd unit that runs "frutos daemon --resurrect" at boot, so the
process list saved with "frutos save" comes back after a reboot. After a
crash systemd restarts the daemon, which adopts the workers still serving
(KillMode=process keeps them alive: see restart.orphan_grace). Secrets
(REDIS_URL, FRUTOS_AUTH_SECRET) go in /etc/frutos/env, read by the unit.

With --install the unit is written (as root: /etc/systemd/system/frutos.service;
otherwise a user unit under ~/.config/systemd/user) and the commands to
enable it are printed.`,
		Example: "  frutos startup\n  sudo frutos startup --install",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runStartup(opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Install, "install", false, "write the unit file")
	return cmd
}

var unitTemplate = template.Must(template.New("unit").Parse(`[Unit]
Description=frutos realtime tier (Socket.IO workers)
Documentation=https://github.com/frutos/frutos#readme
After=network-online.target redis-server.service
Wants=network-online.target

[Service]
Type=simple
{{- if .User}}
User={{.User}}
{{- end}}
Environment=FRUTOS_HOME={{.Home}}
EnvironmentFile=-/etc/frutos/env
WorkingDirectory={{.Dir}}
ExecStart={{.Exe}} daemon --resurrect
# KillMode=process: systemd signals the daemon only, never its workers.
# "systemctl stop" sends SIGTERM to the daemon, which drains and stops its
# workers itself (SIGKILL after kill_timeout). When the daemon crashes (or
# "frutos update" replaces it) its workers keep their connections for
# restart.orphan_grace, and the daemon systemd restarts adopts them; with
# mixed or control-group, systemd would kill them all with the daemon.
KillMode=process
# frutos update starts a new daemon and exits: the old one names the new
# one the unit's main process (sd_notify MAINPID=), which needs this.
NotifyAccess=main
TimeoutStopSec=60
Restart=on-failure
RestartSec=1
LimitNOFILE=1048576

[Install]
WantedBy={{.WantedBy}}
`))

func runStartup(opts *startupOptions) error {
	exe, err := opts.Exe()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	dir, _ := os.Getwd()
	data := struct{ User, Home, Dir, Exe, WantedBy string }{Home: opts.Home(), Dir: dir, Exe: exe, WantedBy: "multi-user.target"}
	root := os.Getuid() == 0
	if u, err := user.Current(); err == nil && root {
		data.User = u.Username
	}
	if !root {
		data.WantedBy = "default.target"
	}
	var b strings.Builder
	if err := unitTemplate.Execute(&b, data); err != nil {
		return err
	}
	if !opts.Install {
		_, err := fmt.Fprint(opts.IO.Out, b.String())
		return err
	}
	path := opts.Unit
	enable := "systemctl daemon-reload && systemctl enable --now frutos"
	if path == "" {
		if root {
			path = "/etc/systemd/system/frutos.service"
		} else {
			home, err := os.UserHomeDir()
			if err != nil {
				return errors.New("no home directory for a user unit; run as root to install a system unit")
			}
			path = filepath.Join(home, ".config", "systemd", "user", "frutos.service")
			enable = "systemctl --user daemon-reload && systemctl --user enable --now frutos && loginctl enable-linger " + os.Getenv("USER")
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(opts.IO.ErrOut, "wrote %s\nnext: frutos save (if not done), then: %s\n", path, enable)
	return nil
}
