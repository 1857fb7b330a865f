package main

import (
	"github.com/frutos/frutos/configs"
)

// Factory holds what commands depend on, built once in run and passed down.
// Everything costly is lazy, so `frutos --help` dials nothing.
type Factory struct {
	IO     *IOStreams
	Getenv func(string) string

	// ConfigFile and Env are the global --config and --env flags.
	ConfigFile string
	Env        string
}

func newFactory(streams *IOStreams, getenv func(string) string) *Factory {
	return &Factory{IO: streams, Getenv: getenv}
}

// Config loads the configuration: defaults < file < env section <
// environment < flags.
func (f *Factory) Config(flags configs.Flags) (*configs.Config, error) {
	return configs.Load(configs.LoadOptions{File: f.ConfigFile, Env: f.Env, Getenv: f.Getenv, Flags: flags})
}
