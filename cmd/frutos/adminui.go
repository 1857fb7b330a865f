package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/frutos/frutos/configs"
)

// The dashboard: the page the Socket.IO project hosts, and the npm
// package that ships the same files (MIT) for hosting them yourself.
const (
	adminUIPage     = "https://admin.socket.io"
	adminUIPackage  = "@socket.io/admin-ui@0.5.1"
	adminUIHashCost = 12
)

type adminUIOptions struct {
	IO     *IOStreams
	Config func(configs.Flags) (*configs.Config, error)

	URL  string
	JSON bool
}

// adminUIInfo is `frutos admin-ui --json` (a stable shape).
type adminUIInfo struct {
	Enabled             bool   `json:"enabled"`
	ReadOnly            bool   `json:"read_only"`
	HasPassword         bool   `json:"has_password"`
	Page                string `json:"page"`
	ServerURL           string `json:"server_url"`
	Username            string `json:"username"`
	Namespace           string `json:"namespace"`
	Path                string `json:"path"`
	PageOriginOK        bool   `json:"page_origin_allowed"`
	SelfHostFromPackage string `json:"self_host_package"`
}

func newCmdAdminUI(f *Factory, runF func(*adminUIOptions) error) *cobra.Command {
	opts := &adminUIOptions{IO: f.IO, Config: f.Config}
	cmd := &cobra.Command{
		Use:   "admin-ui",
		Short: "Print how to open the Socket.IO Admin UI on this cluster",
		Long: `Print how to open the official Socket.IO Admin UI (@socket.io/admin-ui) on
this cluster: the page, and what to type in its connection form.

The workers speak the server side of the dashboard on the /admin namespace
when admin_ui.enabled is true (or FRUTOS_ADMIN_UI=1), with the username
admin_ui.username and the bcrypt hash of the password in
FRUTOS_ADMIN_UI_PASSWORD_HASH (environment only; 'frutos admin-ui hash' makes
one). One dashboard sees every worker of every host on the same Redis.

The page is https://admin.socket.io, hosted by the Socket.IO project, or the
same files from the npm package (ui/dist, MIT licence), served by any static
file server on a private address. Its origin must be allowed by cors.origins
(with cors.credentials), as any browser client's.`,
		Example: `  frutos admin-ui
  frutos admin-ui --url https://realtime.example.com --json
  read -rs P && printf '%s' "$P" | frutos admin-ui hash`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runAdminUI(opts)
		},
	}
	cmd.Flags().StringVar(&opts.URL, "url", "", "the server URL browsers use (default http://<this host>:<port>)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON")
	cmd.AddCommand(newCmdAdminUIHash(f))
	return cmd
}

func runAdminUI(opts *adminUIOptions) error {
	cfg, err := opts.Config(configs.Flags{})
	if err != nil {
		return err
	}
	info := adminUIInfo{
		Enabled:             cfg.AdminUI.Enabled,
		ReadOnly:            cfg.AdminUI.ReadOnly,
		HasPassword:         cfg.AdminUI.PasswordHash != "",
		Page:                adminUIPage,
		ServerURL:           opts.URL,
		Username:            cfg.AdminUI.Username,
		Namespace:           "/admin",
		Path:                "/socket.io",
		PageOriginOK:        (slices.Contains(cfg.CORS.Origins, "*") || slices.Contains(cfg.CORS.Origins, adminUIPage)) && cfg.CORS.Credentials,
		SelfHostFromPackage: adminUIPackage,
	}
	if info.ServerURL == "" {
		host, _ := os.Hostname()
		if cfg.Node.Name != "" {
			host = cfg.Node.Name
		}
		info.ServerURL = "http://" + host + ":" + strconv.Itoa(cfg.Port)
	}
	if opts.JSON {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(info); err != nil {
			return err
		}
	} else {
		w := opts.IO.Out
		fmt.Fprintf(w, "Open %s and fill in its connection form:\n", info.Page)
		fmt.Fprintf(w, "  Server URL  %s\n", info.ServerURL)
		fmt.Fprintf(w, "  Username    %s\n", info.Username)
		fmt.Fprintf(w, "  Password    the one whose bcrypt hash is in %s\n", configs.AdminUIPasswordHashEnv)
		fmt.Fprintf(w, "  Advanced options: admin namespace %s, path %s, built-in parser\n", info.Namespace, info.Path)
		fmt.Fprintf(w, "Or host the same page yourself, on a private address (the package ships it, MIT licence):\n")
		fmt.Fprintf(w, "  npm pack %s && tar xzf socket.io-admin-ui-0.5.1.tgz package/ui/dist\n", adminUIPackage)
		fmt.Fprintf(w, "  then serve package/ui/dist with any static file server, and allow its origin in cors.origins\n")
	}
	// what stands in the way, on stderr
	e := opts.IO.ErrOut
	switch {
	case !info.Enabled:
		fmt.Fprintf(e, "the Admin UI is off: set admin_ui.enabled: true (or %s=1) and %s (from 'frutos admin-ui hash'), then 'frutos reload'\n",
			configs.AdminUIEnv, configs.AdminUIPasswordHashEnv)
	case !info.HasPassword:
		fmt.Fprintf(e, "warning: the Admin UI has no password (development only): anyone who reaches the port can use it; set %s\n",
			configs.AdminUIPasswordHashEnv)
	}
	if info.ReadOnly {
		fmt.Fprintln(e, "read-only: the dashboard shows, and cannot emit, join, leave or disconnect")
	}
	if !info.PageOriginOK {
		fmt.Fprintf(e, "note: cors.origins does not allow %s with credentials; add it (or your own page's origin) so that browsers may connect\n", adminUIPage)
	}
	return nil
}

// newCmdAdminUIHash: `frutos admin-ui hash` reads a password on stdin
// (never from the command line, where ps and the shell history see it) and
// prints its bcrypt hash.
func newCmdAdminUIHash(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Print the bcrypt hash of a password read on stdin, for FRUTOS_ADMIN_UI_PASSWORD_HASH",
		Long: `Read a password on stdin (its first line) and print its bcrypt hash (cost 12),
the value of FRUTOS_ADMIN_UI_PASSWORD_HASH. The password is never an
argument: ps and the shell history would show it.`,
		Example: `  read -rs P && printf '%s' "$P" | frutos admin-ui hash
  export FRUTOS_ADMIN_UI_PASSWORD_HASH="$(printf '%s' "$P" | frutos admin-ui hash)"`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			line, err := bufio.NewReader(f.IO.In).ReadString('\n')
			if err != nil && line == "" {
				return usageErrorf("no password on stdin; pipe it in: printf '%%s' \"$P\" | frutos admin-ui hash")
			}
			password := strings.TrimRight(line, "\r\n")
			switch {
			case password == "":
				return usageErrorf("the password is empty")
			case len(password) > 72:
				return usageErrorf("the password is longer than bcrypt's 72 bytes")
			}
			h, err := bcrypt.GenerateFromPassword([]byte(password), adminUIHashCost)
			if err != nil {
				return errors.New("bcrypt: " + err.Error())
			}
			_, err = fmt.Fprintln(f.IO.Out, string(h))
			return err
		},
	}
}
