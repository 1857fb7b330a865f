package main

import (
	"sync"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
)

// Factory holds what commands depend on, built once in run and passed down.
// Everything costly is lazy, so `frutos --help` dials nothing.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string

	// ConfigFile and Env are the global --config and --env flags.
	ConfigFile string
	Env        string

	homeOnce sync.Once
	home     string
}

func newFactory(streams *IOStreams, getenv func(string) string) *Factory {
	return &Factory{IO: streams, Getenv: getenv}
}

// Config loads the configuration: defaults < file < env section <
// environment < flags.
func (f *Factory) Config(flags configs.Flags) (*configs.Config, error) {
	return configs.Load(f.loadOptions(flags))
}

func (f *Factory) loadOptions(flags configs.Flags) configs.LoadOptions {
	return configs.LoadOptions{File: f.ConfigFile, Env: f.Env, Getenv: f.Getenv, Flags: flags}
}

// CheckGlobalFlags checks the global --env and --config, when one is given,
// for every command: a command that needs only the state home (status,
// stop) would otherwise look for a daemon in the default home, and a
// mistyped --env would read "the daemon is not running". Only the sources
// are checked (configs.CheckSources): a bad --env or a --config that does
// not exist is a flag error, a file that does not decode a configuration
// error; what only a running app needs (production's secret) is not asked
// of status.
func (f *Factory) CheckGlobalFlags() error {
	if f.ConfigFile == "" && f.Env == "" {
		return nil
	}
	return configs.CheckSources(f.loadOptions(configs.Flags{}))
}

// Home is the state home: the configuration's (FRUTOS_HOME, the file's
// home, or ~/.frutos). A configuration that does not validate does not
// stop commands that only need the home (status, stop...): the home is
// still the one its sources say (configs.Resolve), so that `status --env
// production` without the production secret exported finds the daemon of
// the file's home. Only when the sources cannot be read do they fall back
// to FRUTOS_HOME or the default.
// It is resolved once per command (the flags are parsed by then).
func (f *Factory) Home() string {
	f.homeOnce.Do(func() {
		switch cfg, err := configs.Resolve(f.loadOptions(configs.Flags{})); {
		case err == nil:
			f.home = cfg.Home
		case f.Getenv("FRUTOS_HOME") != "":
			f.home = f.Getenv("FRUTOS_HOME")
		default:
			f.home = configs.Default().Home
		}
	})
	return f.home
}

// Daemon is a client for the daemon of the state home.
func (f *Factory) Daemon() *control.Client {
	return control.NewClient(f.Home())
}
