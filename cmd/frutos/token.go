package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
)

type tokenOptions struct {
	IO     *IOStreams
	Config func(configs.Flags) (*configs.Config, error)
	Daemon func() *control.Client

	UserID string
	Role   string
	TTL    time.Duration
}

func newCmdToken(f *Factory, runF func(*tokenOptions) error) *cobra.Command {
	opts := &tokenOptions{IO: f.IO, Config: f.Config, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:   "token <user-id>",
		Short: "Print a JWT the workers accept, for testing with real clients",
		Long: `Print a JWT (HS256) for <user-id> that the workers accept in the Socket.IO
handshake (auth: {token}), alone on stdout.

When a daemon runs the app of this home, it signs the token with the secret
its workers verify (whatever this shell's environment says). Otherwise the
token is signed here with the configured secret (the variable named by
auth.secret_env, FRUTOS_AUTH_SECRET by default); in development without one,
frutos keeps a random secret in <home>/dev-secret, which workers started
from the same home without a secret use too; production without a secret is
an error.`,
		Example: `  frutos token 42
  frutos token 7 --role mentor --ttl 15m
  TOKEN=$(frutos token 42) && node client.js "$TOKEN"`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return flagError{err: fmt.Errorf("token takes one argument, the user id (got %d)", len(args)),
					hint: "usage: " + c.UseLine()}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			opts.UserID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runToken(opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Role, "role", "r", jwtauth.RoleStudent, "role claim: "+strings.Join(jwtauth.Roles, ", "))
	cmd.Flags().DurationVar(&opts.TTL, "ttl", time.Hour, "how long the token is valid")
	return cmd
}

func runToken(opts *tokenOptions) error {
	switch {
	case strings.TrimSpace(opts.UserID) == "":
		return usageErrorf("the user id is empty")
	case !jwtauth.ValidRole(opts.Role):
		return usageErrorf("--role %q is not a role; use %s", opts.Role, strings.Join(jwtauth.Roles, ", "))
	case opts.TTL <= 0:
		return usageErrorf("--ttl must be more than 0 (got %s)", opts.TTL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	t, err := opts.Daemon().Token(ctx, control.TokenRequest{Sub: opts.UserID, Role: opts.Role, TTLSec: opts.TTL.Seconds()})
	cancel()
	var ce *control.Error
	switch {
	case err == nil:
		fmt.Fprintf(opts.IO.ErrOut, "signed by the running daemon with its workers' secret: %s\n", t.Secret)
		_, err = fmt.Fprintln(opts.IO.Out, t.Token)
		return err
	case errors.Is(err, control.ErrNotRunning), errors.As(err, &ce) && ce.Code == control.CodeNotFound:
		// No app runs: sign here, as the workers that start next will verify.
	default:
		return daemonError(err)
	}
	cfg, err := opts.Config(configs.Flags{})
	if err != nil {
		return err
	}
	secret, generated, err := jwtauth.ResolveSecret(cfg)
	if err != nil {
		return withCode(exitConfig, err, "")
	}
	tok, err := jwtauth.Mint(secret, opts.UserID, opts.Role, opts.TTL)
	if err != nil {
		return err
	}
	if generated {
		fmt.Fprintf(opts.IO.ErrOut, "signed with the development secret in %s (no app runs for this home; workers started from it without %s accept it)\n",
			filepath.Join(cfg.Home, jwtauth.DevSecretFile), cfg.Auth.SecretEnv)
	}
	_, err = fmt.Fprintln(opts.IO.Out, tok)
	return err
}
