package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultFile is read from the working directory when LoadOptions.File is
// empty and the file exists.
const DefaultFile = "frutos.yaml"

// LoadOptions says where settings come from. Every source is explicit so tests
// can run Load without touching the process environment.
type LoadOptions struct {
	// File is --config. "" means ./frutos.yaml if it exists, else only the
	// built-in defaults; a File that is set must exist.
	File string
	// Env is --env: "development" (when "") or "production". It selects the
	// file's env.<name> section and the production checks.
	Env string
	// Getenv reads environment variables (os.Getenv when nil). An empty value
	// counts as not set.
	Getenv func(string) string
	// Flags are the values given on the command line.
	Flags Flags
}

// Flags are the command-line settings; a zero field means "not given".
type Flags struct {
	Instances string // --instances: a count or "max"
	Port      int    // --port
	RedisURL  string // --redis
	Home      string // --home
}

// Load builds the configuration: Default(), then the file, then the file's
// env.<Env> section, then environment variables (REDIS_URL, PORT, FRUTOS_HOME,
// FRUTOS_NODE_NAME, the variable named by auth.secret_env, FRUTOS_CORS_ORIGINS,
// FRUTOS_REDIS_ADAPTER, the variable named by emit.key_env, FRUTOS_ADMIN_UI,
// FRUTOS_ADMIN_UI_PASSWORD_HASH), then Flags.
// Home and logs.dir are made absolute ("~" is the user's home; a relative path
// in the file is relative to the file's folder, elsewhere to the working
// directory). The result is validated.
//
// Every failure is a *Error naming the file, line and field (or the variable
// or flag) it came from; several are joined with errors.Join, one per line.
// Problems in the file are reported first and alone, then problems with
// environment variables and flags, then validation of the merged result.
func Load(o LoadOptions) (*Config, error) {
	return load(o, true)
}

// Resolve merges the settings as Load does, without the checks on the
// merged result (validation and the production rules): for a command that
// needs one setting, the state home, and must find the same one the
// daemon was started with even when, say, production's secret is not
// exported in the operator's shell. A source that cannot be read (an
// unknown --env, a file that does not decode, PORT=abc) is still an error.
func Resolve(o LoadOptions) (*Config, error) {
	return load(o, false)
}

func load(o LoadOptions, validate bool) (*Config, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	c := Default()
	if err := checkEnv(o.Env); err != nil {
		return nil, err
	}
	if o.Env == Production {
		c.Env = Production
	}

	src := map[string]Error{} // setting path -> where its value came from
	file, data, err := readConfigFile(o.File)
	if err != nil {
		return nil, err
	}
	var inlineSecret *Error // where the file wrote auth.secret, if it did
	if file != "" {
		if errs := decodeFile(file, data, c, src); len(errs) > 0 {
			return nil, joinErrs(errs)
		}
		if c.Auth.Secret != "" {
			e := src["auth.secret"]
			inlineSecret = &e
		}
	}

	errs := applyEnv(c, src, getenv)
	errs = append(errs, applyFlags(c, src, o.Flags)...)
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	if errs := resolvePaths(c, src, file); len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	if !validate {
		return c, nil
	}

	k := checker{src: src}
	if inlineSecret != nil && c.Env == Production {
		e := *inlineSecret
		e.Msg = fmt.Sprintf("an inline secret is refused in production; export %s instead "+
			"(auth.secret_env names the variable) and keep inline secrets under env.development", c.Auth.SecretEnv)
		k.errs = append(k.errs, &e)
	}
	k.check(c)
	if len(k.errs) > 0 {
		return nil, joinErrs(k.errs)
	}
	return c, nil
}

// CheckSources checks what the command line says about where settings come
// from, and nothing else: that Env is an env, that File (when set) exists,
// and that the file (File, or ./frutos.yaml) decodes. Environment variables
// and the rules on the merged result (a production secret...) are left to
// Load: a command that needs only the state home checks its --env and
// --config with this, without requiring what only a running app needs.
//
// Errors are those Load would return for the same problems: a bad --env or
// a --config that does not exist comes from a flag (FromFlag), a file that
// does not decode is located in the file.
func CheckSources(o LoadOptions) error {
	if err := checkEnv(o.Env); err != nil {
		return err
	}
	file, data, err := readConfigFile(o.File)
	if err != nil || file == "" {
		return err
	}
	if errs := decodeFile(file, data, Default(), map[string]Error{}); len(errs) > 0 {
		return joinErrs(errs)
	}
	return nil
}

// checkEnv checks the --env value: "" (development), development or
// production.
func checkEnv(env string) error {
	switch env {
	case "", Development, Production:
		return nil
	}
	return &Error{File: "flag --env", Field: "env",
		Msg: fmt.Sprintf("%q is not an env; use development or production", env)}
}

// readConfigFile reads name, or ./frutos.yaml if name is "" and it exists
// (file "" if not). A name given that does not exist is a bad --config
// value, not a bad file.
func readConfigFile(name string) (string, []byte, error) {
	if name == "" {
		if _, err := os.Stat(DefaultFile); errors.Is(err, fs.ErrNotExist) {
			return "", nil, nil
		}
		name = DefaultFile
	}
	data, err := os.ReadFile(name)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, &Error{File: "flag --config",
				Msg: fmt.Sprintf("%s: no such file; give the path of a frutos.yaml (the example: configs/frutos.yaml)", name)}
		}
		return "", nil, &Error{File: name, Msg: "cannot read the config file: " + err.Error()}
	}
	return name, data, nil
}

func applyEnv(c *Config, src map[string]Error, getenv func(string) string) []error {
	var errs []error
	from := func(name, path string) {
		src[path] = Error{File: "env " + name, Field: path}
	}
	if v := getenv("REDIS_URL"); v != "" {
		c.Redis.URL = v
		from("REDIS_URL", "redis.url")
	}
	if v := getenv("PORT"); v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			errs = append(errs, &Error{File: "env PORT", Field: "port",
				Msg: fmt.Sprintf("%q is not a port number; write one like 3000", v)})
		} else {
			c.Port = n
			from("PORT", "port")
		}
	}
	if v := getenv("FRUTOS_HOME"); v != "" {
		c.Home = v
		from("FRUTOS_HOME", "home")
	}
	if v := getenv("FRUTOS_NODE_NAME"); strings.TrimSpace(v) != "" {
		c.Node.Name = strings.TrimSpace(v)
		from("FRUTOS_NODE_NAME", "node.name")
	}
	if name := c.Auth.SecretEnv; envNameRE.MatchString(name) {
		if v := getenv(name); v != "" {
			c.Auth.Secret = v
			from(name, "auth.secret")
		}
	}
	if v := getenv("FRUTOS_REDIS_ADAPTER"); strings.TrimSpace(v) != "" {
		c.Redis.Adapter = strings.TrimSpace(v)
		from("FRUTOS_REDIS_ADAPTER", "redis.adapter")
	}
	if name := c.Emit.KeyEnv; envNameRE.MatchString(name) {
		if v := getenv(name); v != "" {
			c.Emit.Key = v
			from(name, "emit.key")
		}
	}
	errs = append(errs, applyAdminUIEnv(c, src, getenv)...)
	if v := getenv("FRUTOS_CORS_ORIGINS"); strings.TrimSpace(v) != "" {
		origins := []string{}
		for o := range strings.SplitSeq(v, ",") {
			if o = strings.TrimSpace(o); o != "" {
				origins = append(origins, o)
			}
		}
		c.CORS.Origins = origins
		for k := range src {
			if strings.HasPrefix(k, "cors.origins[") {
				delete(src, k)
			}
		}
		from("FRUTOS_CORS_ORIGINS", "cors.origins")
		for i := range origins {
			from("FRUTOS_CORS_ORIGINS", fmt.Sprintf("cors.origins[%d]", i))
		}
	}
	return errs
}

// applyAdminUIEnv reads FRUTOS_ADMIN_UI (1, true, 0, false) and the
// password hash, which only the environment may hold.
func applyAdminUIEnv(c *Config, src map[string]Error, getenv func(string) string) []error {
	var errs []error
	if v := strings.TrimSpace(getenv(AdminUIEnv)); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, &Error{File: "env " + AdminUIEnv, Field: "admin_ui.enabled",
				Msg: fmt.Sprintf("%q is not on or off; write 1 (on) or 0 (off)", v)})
		} else {
			c.AdminUI.Enabled = on
			src["admin_ui.enabled"] = Error{File: "env " + AdminUIEnv, Field: "admin_ui.enabled"}
		}
	}
	if v := strings.TrimSpace(getenv(AdminUIPasswordHashEnv)); v != "" {
		c.AdminUI.PasswordHash = v
		src["admin_ui.password_hash"] = Error{File: "env " + AdminUIPasswordHashEnv, Field: "admin_ui.password_hash"}
	}
	return errs
}

func applyFlags(c *Config, src map[string]Error, f Flags) []error {
	var errs []error
	from := func(flag, path string) {
		src[path] = Error{File: "flag " + flag, Field: path}
	}
	if f.Instances != "" {
		n, err := ParseInstances(f.Instances)
		if err != nil {
			errs = append(errs, &Error{File: "flag --instances", Field: "instances", Msg: err.Error()})
		} else {
			c.Instances = n
			from("--instances", "instances")
		}
	}
	if f.Port != 0 {
		c.Port = f.Port
		from("--port", "port")
	}
	if f.RedisURL != "" {
		c.Redis.URL = f.RedisURL
		from("--redis", "redis.url")
	}
	if f.Home != "" {
		c.Home = f.Home
		from("--home", "home")
	}
	return errs
}

// resolvePaths makes home and logs.dir absolute. A relative path written in
// the file is relative to the file's folder, so `frutos start --config
// /etc/frutos/frutos.yaml` means the same thing from any directory.
func resolvePaths(c *Config, src map[string]Error, file string) []error {
	var errs []error
	for _, p := range []struct {
		path string
		val  *string
	}{{"home", &c.Home}, {"logs.dir", &c.Logs.Dir}} {
		if *p.val == "" {
			continue // validation reports an empty home; an empty logs.dir means <home>/logs
		}
		base := "."
		if s, ok := src[p.path]; ok && s.Line > 0 {
			base = filepath.Dir(file)
		}
		abs, err := resolvePath(*p.val, base)
		if err != nil {
			e, ok := src[p.path]
			if !ok {
				e = Error{Field: p.path}
			}
			e.Msg = err.Error()
			errs = append(errs, &e)
			continue
		}
		*p.val = abs
	}
	return errs
}

func resolvePath(p, base string) (string, error) {
	switch {
	case p == "~" || strings.HasPrefix(p, "~/"):
		h, err := os.UserHomeDir()
		if err != nil || h == "" {
			return "", fmt.Errorf("cannot expand %q: there is no home directory ($HOME is not set); write an absolute path", p)
		}
		p = filepath.Join(h, p[1:])
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("cannot expand %q: only ~/ (your own home) is supported; write an absolute path", p)
	case !filepath.IsAbs(p):
		p = filepath.Join(base, p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("cannot make %q absolute: %v", p, err)
	}
	return abs, nil
}

// joinErrs returns the only error as itself, or several joined (one per line).
func joinErrs(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
