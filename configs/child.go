package configs

import (
	"encoding/json"
	"fmt"
	"os"
)

// ChildConfigEnv is the environment variable that carries the resolved
// configuration from the daemon to a worker.
const ChildConfigEnv = "FRUTOS_CONFIG"

// ChildEnv returns the environment entries that hand c to a worker process:
// FRUTOS_CONFIG=<c as JSON>, secrets included (a process environment is
// readable only by its owner). Append them to the child's environment; the
// worker calls FromChildEnv. Overrides from the parent's environment are
// already applied in c, so the worker does not read REDIS_URL, PORT, etc.
func (c *Config) ChildEnv() ([]string, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode the config for a worker: %w", err)
	}
	return []string{ChildConfigEnv + "=" + string(b)}, nil
}

// FromChildEnv restores, in a worker, the Config its daemon passed with
// ChildEnv, and validates it. getenv is os.Getenv when nil. Keys missing from
// the JSON keep their defaults and unknown keys are ignored, so a daemon and a
// worker from adjacent versions still agree during a rolling upgrade.
func FromChildEnv(getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	const from = "env " + ChildConfigEnv
	v := getenv(ChildConfigEnv)
	if v == "" {
		return nil, &Error{File: from, Msg: "not set; workers are started by the frutos daemon (run frutos start)"}
	}
	c := Default()
	if err := json.Unmarshal([]byte(v), c); err != nil {
		return nil, &Error{File: from, Msg: "cannot decode: " + err.Error()}
	}
	k := checker{file: from}
	k.check(c)
	if len(k.errs) > 0 {
		return nil, joinErrs(k.errs)
	}
	return c, nil
}
