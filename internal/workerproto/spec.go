package workerproto

import (
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Command is the frutos subcommand that runs a worker.
const Command = "worker"

// Spec is a worker's command line: who it is and where it serves.
type Spec struct {
	// ID is the worker id (its slot in the daemon's table), shown in logs.
	ID int
	// Tag starts every session id of this process (see SessionID); ""
	// for none. The daemon's tags come from Tag.
	Tag string
	// Socket is the private unix socket of a supervised worker: Socket.IO
	// at EnginePath and the admin handler under AdminPrefix.
	Socket string
	// Handoff is the unix socket on which a supervised worker receives
	// websocket connections from the front door.
	Handoff string
	// Listen is the public address of a standalone worker ("" with no
	// Socket and no Handoff: the configuration's host:port).
	Listen string
	// Admin is the private address of a standalone worker's admin handler.
	Admin string
	// RedisURL overrides REDIS_URL and the configuration's Redis.
	RedisURL string
}

// The flags of a Spec, in the order Args writes them.
const (
	flagID      = "id"
	flagTag     = "tag"
	flagSocket  = "socket"
	flagHandoff = "handoff"
	flagListen  = "listen"
	flagAdmin   = "admin"
	flagRedis   = "redis"
)

// Supervised is the Spec of generation gen of worker id of a daemon whose
// run directory is runDir.
func Supervised(runDir string, id, gen int) Spec {
	tag := Tag(id, gen)
	return Spec{ID: id, Tag: tag, Socket: SocketPath(runDir, tag), Handoff: HandoffPath(runDir, tag)}
}

// Args is the command line of s after Command: the id always, the other
// flags when set.
func (s Spec) Args() []string {
	args := []string{"--" + flagID, strconv.Itoa(s.ID)}
	for _, f := range []struct{ name, value string }{
		{flagTag, s.Tag}, {flagSocket, s.Socket}, {flagHandoff, s.Handoff},
		{flagListen, s.Listen}, {flagAdmin, s.Admin}, {flagRedis, s.RedisURL},
	} {
		if f.value != "" {
			args = append(args, "--"+f.name, f.value)
		}
	}
	return args
}

// Bind defines the flags of a Spec on fs, to be read into s.
func (s *Spec) Bind(fs *pflag.FlagSet) {
	fs.IntVar(&s.ID, flagID, 0, "worker id (slot) shown in logs")
	fs.StringVar(&s.Tag, flagTag, "", "prefix of this worker's session ids, for the front door")
	fs.StringVar(&s.Socket, flagSocket, "", "serve Socket.IO and the admin endpoints on this unix socket (daemon mode)")
	fs.StringVar(&s.Handoff, flagHandoff, "", "receive websocket connections from the front door on this unix socket (daemon mode)")
	fs.StringVar(&s.Listen, flagListen, "", "serve Socket.IO on this address (standalone; default host:port of the configuration)")
	fs.StringVar(&s.Admin, flagAdmin, "", "serve /health, /stats and /metrics on this address (keep it private)")
	fs.StringVar(&s.RedisURL, flagRedis, "", "Redis URL (default: REDIS_URL, then the configuration)")
}

// ParseArgs reads a worker's command line (what follows Command) into a
// Spec and checks its tag.
func ParseArgs(args []string) (Spec, error) {
	var s Spec
	fs := pflag.NewFlagSet(Command, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.Bind(fs)
	if err := fs.Parse(args); err != nil {
		return Spec{}, err
	}
	if fs.NArg() > 0 {
		return Spec{}, fmt.Errorf("%s takes no arguments, got %q", Command, fs.Args())
	}
	if err := CheckTag(s.Tag); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// Tag is the tag of generation gen of worker id.
func Tag(id, gen int) string { return fmt.Sprintf("w%dg%d", id, gen) }

var tagRe = regexp.MustCompile(`^[A-Za-z0-9_-]{0,11}$`)

// CheckTag refuses a tag that cannot start a session id: at most 11 of
// A-Z a-z 0-9 _ - (no dot: the dot ends the tag).
func CheckTag(tag string) error {
	if !tagRe.MatchString(tag) {
		return fmt.Errorf("session prefix %q: at most 11 of A-Z a-z 0-9 _ -", tag)
	}
	return nil
}

// SessionID is the session id a worker tagged tag gives the engine's id:
// "<tag>.<id>", or id alone when tag is "".
func SessionID(tag, id string) string {
	if tag == "" {
		return id
	}
	return tag + "." + id
}

// TagOf is the tag of the worker that made sid, if sid carries one.
func TagOf(sid string) (tag string, ok bool) {
	tag, _, ok = strings.Cut(sid, ".")
	return tag, ok
}

// RunDir is the directory of the sockets of the workers of the daemon with
// pid pid, in the state home; the daemon removes its predecessors'.
func RunDir(home string, pid int) string { return filepath.Join(RunRoot(home), strconv.Itoa(pid)) }

// RunRoot holds every daemon's RunDir.
func RunRoot(home string) string { return filepath.Join(home, "run") }

// SocketPath is the private socket of the worker tagged tag.
func SocketPath(runDir, tag string) string { return filepath.Join(runDir, tag+".sock") }

// HandoffPath is the handoff socket of the worker tagged tag.
func HandoffPath(runDir, tag string) string { return filepath.Join(runDir, tag+".handoff") }
