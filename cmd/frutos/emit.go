package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/redisctl"
)

type emitOptions struct {
	IO      *IOStreams
	Factory *Factory

	Redis     redisFlags
	Data      string // --data: JSON, @file or - (stdin)
	DataSet   bool   // --data was given, even empty
	Namespace string
	JSON      bool

	// Set by the subcommand from its arguments.
	Kind  string // user, mentor, room or all
	Room  string // "" for all
	Event string
	Arg   *string // the [json] argument, when given
}

func newCmdEmit(f *Factory, runF func(*emitOptions) error) *cobra.Command {
	opts := &emitOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "emit (user|mentor|room|all) ...",
		Short: "Send a Socket.IO event to users, mentors, a room or everyone, through Redis",
		Long: `Send a Socket.IO event through Redis, exactly as Node's @socket.io/redis-emitter
does (same channels, same msgpack layout): frutos workers and Node servers
with @socket.io/redis-adapter deliver it to their clients.

  emit user <id> <event> [json]     to room user:<id> (every tab of that user)
  emit mentor <id> <event> [json]   to room mentor:<id>
  emit room <room> <event> [json]   to any room
  emit all <event> [json]           to every client of the namespace

The JSON payload is the event's one argument, as in the seed's
emitToUser(id, event, data); give it as the last argument, with --data @file,
or with --data - (stdin). Without one the event has no argument. Invalid
JSON, an empty or reserved event name (connect, disconnect, ...), a payload
larger than limits.max_payload or an empty id is refused before anything is
sent (exit 2); Redis failures exit 4.

With redis.sharded on, it publishes with SPUBLISH in the protocol of
Node's createShardedAdapter, which workers with redis.sharded use. With
redis.adapter: streams (FRUTOS_REDIS_ADAPTER=streams) it appends the event
to the stream of @socket.io/redis-streams-adapter (XADD), where workers
read it even if they were away when it was sent, and prints the entry id.

How many servers received it (PUBLISH's answer; with streams, the servers
of the namespace) is printed on stderr; 0 is a warning: no worker listens
on this Redis with this key and namespace. (On Redis Cluster a classic
PUBLISH is not counted across nodes.)`,
		Example: `  frutos emit user 42 evidencia_aprobada '{"evidenciaId": 7, "nota": 9.5}'
  frutos emit mentor 7 nueva_evidencia --data @evidencia.json
  echo '{"minutos": 10}' | frutos emit all sistema_mantenimiento --data -
  frutos emit room curso:algebra nueva_tarea '{"titulo": "Ecuaciones"}' --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return flagError{err: errors.New("emit needs a target: user, mentor, room or all"), hint: "usage: " + cmd.UseLine()}
			}
			return flagError{err: fmt.Errorf("unknown emit target %q; use user, mentor, room or all", args[0]), hint: "usage: " + cmd.UseLine()}
		},
		RunE: func(*cobra.Command, []string) error { return nil }, // Args has refused already
	}
	pf := cmd.PersistentFlags()
	addRedisFlags(pf, &opts.Redis)
	pf.StringVarP(&opts.Data, "data", "d", "", "the JSON payload: inline, @file, or - for stdin (instead of the [json] argument)")
	pf.StringVarP(&opts.Namespace, "namespace", "n", "/", "Socket.IO namespace")
	pf.BoolVar(&opts.JSON, "json", false, "print what was sent as JSON on stdout")

	target := func(kind, use, short, example string, nargs int) *cobra.Command {
		return &cobra.Command{
			Use:     use,
			Short:   short,
			Example: example,
			Args: func(c *cobra.Command, args []string) error {
				if len(args) < nargs || len(args) > nargs+1 {
					return flagError{err: fmt.Errorf("emit %s takes %d or %d arguments, got %d", kind, nargs, nargs+1, len(args)),
						hint: "usage: " + c.UseLine()}
				}
				return nil
			},
			RunE: func(c *cobra.Command, args []string) error {
				opts.Kind = kind
				opts.DataSet = c.Flag("data").Changed
				if err := opts.fromArgs(kind, args, nargs); err != nil {
					return flagError{err: err, hint: "usage: " + c.UseLine()}
				}
				if runF != nil {
					return runF(opts)
				}
				return runEmit(opts)
			},
		}
	}
	cmd.AddCommand(
		target("user", "user <id> <event> [json]", "Send an event to one user (room user:<id>)",
			`  frutos emit user 42 evidencia_aprobada '{"evidenciaId": 7}'`, 2),
		target("mentor", "mentor <id> <event> [json]", "Send an event to one mentor (room mentor:<id>)",
			`  frutos emit mentor 7 nueva_evidencia '{"estudiante": "Ana", "evidenciaId": 12}'`, 2),
		target("room", "room <room> <event> [json]", "Send an event to every client in a room",
			`  frutos emit room curso:algebra nueva_tarea '{"titulo": "Ecuaciones"}'`, 2),
		target("all", "all <event> [json]", "Send an event to every client of the namespace",
			`  frutos emit all actualizacion_disponible '{"version": "2.4.0"}'
  frutos emit all sistema_mantenimiento --namespace /admin`, 1),
	)
	return cmd
}

// fromArgs reads <id|room> <event> [json] (or <event> [json] for all).
func (o *emitOptions) fromArgs(kind string, args []string, nargs int) error {
	if nargs == 2 {
		id := args[0]
		if strings.TrimSpace(id) == "" {
			name := map[string]string{"user": "user id", "mentor": "mentor id", "room": "room name"}[kind]
			return fmt.Errorf("the %s is empty", name)
		}
		switch kind {
		case "user":
			o.Room = rooms.User(id)
		case "mentor":
			o.Room = rooms.Mentor(id)
		default:
			o.Room = id
		}
	}
	o.Event = args[nargs-1]
	if len(args) > nargs {
		o.Arg = &args[nargs]
	}
	switch {
	case strings.TrimSpace(o.Event) == "":
		return errors.New("the event name is empty")
	case redisadapter.IsReservedEvent(o.Event):
		return fmt.Errorf("%q is a reserved Socket.IO event name (connect, connect_error, disconnect, disconnecting, "+
			"newListener, removeListener); pick another", o.Event)
	}
	if strings.TrimSpace(o.Namespace) == "" {
		return errors.New("--namespace is empty; the default namespace is /")
	}
	return nil
}

// emitJSON is the stable --json shape: what was sent and to whom.
type emitJSON struct {
	URL       string          `json:"url"`
	Channel   string          `json:"channel"`
	Namespace string          `json:"namespace"`
	Rooms     []string        `json:"rooms"`
	Event     string          `json:"event"`
	Payload   json.RawMessage `json:"payload,omitempty"` // absent when the event has no argument
	Receivers int64           `json:"receivers"`
	// Streams adapter: the stream and the entry id (the clients' offset).
	Stream string `json:"stream,omitempty"`
	Entry  string `json:"entry,omitempty"`
}

func runEmit(opts *emitOptions) error {
	cfg, err := loadRedisConfig(opts.Factory, opts.Redis)
	if err != nil {
		return err
	}
	raw, value, err := opts.payload(cfg)
	if err != nil {
		return err
	}
	conn, err := openRedis(opts.Factory, opts.Redis, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()

	// SPUBLISH with redis.sharded, XADD with redis.adapter: streams
	em := redisctl.NewEmitter(conn.Target.Client, cfg.Redis).Of(opts.Namespace)
	streams := redisctl.Streams(cfg.Redis)
	// On Redis Cluster PUBLISH counts the subscribers of the node it was
	// sent to only; SPUBLISH's count is exact (a shard channel lives on
	// one master); the streams count sums every node's.
	counted := conn.Target.Mode != redisctl.Cluster || cfg.Redis.Sharded || streams
	rooms := []string{}
	if opts.Room != "" {
		em = em.To(opts.Room)
		rooms = append(rooms, opts.Room)
	}
	var args []any
	if raw != nil {
		args = append(args, value)
	}
	ctx, cancel := withRedisTimeout(opts.Redis)
	defer cancel()
	n, entry, err := redisctl.Emit(ctx, em, cfg.Redis, opts.Event, args...)
	if err != nil {
		return redisFailure(conn.Target, err)
	}

	to := "to room " + opts.Room
	if opts.Room == "" {
		to = "to every client"
	}
	switch {
	case streams:
		fmt.Fprintf(opts.IO.ErrOut, "appended %q %s of namespace %s to stream %s on %s (entry %s): %s read it\n",
			opts.Event, to, em.Namespace(), em.Stream(), conn.Target.URL, entry, plural.Count(n, "server", "servers"))
	case !counted:
		fmt.Fprintf(opts.IO.ErrOut, "sent %q %s of namespace %s on %s (Redis Cluster does not count the servers a PUBLISH reaches)\n",
			opts.Event, to, em.Namespace(), conn.Target.URL)
	default:
		fmt.Fprintf(opts.IO.ErrOut, "sent %q %s of namespace %s on %s: %s received it\n",
			opts.Event, to, em.Namespace(), conn.Target.URL, plural.Count(n, "server", "servers"))
	}
	switch {
	case n == 0 && streams:
		fmt.Fprintf(opts.IO.ErrOut, "warning: no Socket.IO server reads stream %s now: it is kept there (up to redis.streams.max_len entries) for the workers to come; are they running on this Redis with the streams adapter, redis.key %q and redis.streams.name %q?\n",
			em.Stream(), cfg.Redis.Key, cfg.Redis.Streams.Name)
	case n == 0 && counted:
		protocol := "classic"
		if cfg.Redis.Sharded {
			protocol = "sharded (redis.sharded is on)"
		}
		fmt.Fprintf(opts.IO.ErrOut, "warning: no Socket.IO server received it: nothing subscribes to %s; are the workers running on this Redis, with redis.key %q and the %s protocol?\n",
			em.Channel(), cfg.Redis.Key, protocol)
	}
	if opts.JSON {
		return printIndentedJSON(opts.IO, emitJSON{URL: conn.Target.URL, Channel: em.Channel(), Namespace: em.Namespace(),
			Rooms: rooms, Event: opts.Event, Payload: raw, Receivers: n, Stream: em.Stream(), Entry: entry})
	}
	return nil
}

// payload reads the JSON payload (argument, --data JSON, --data @file or
// --data -) and checks it: size first (limits.max_payload), then syntax.
// It returns the compacted JSON and the decoded value, or nil when the
// event has no argument.
func (o *emitOptions) payload(cfg *configs.Config) (json.RawMessage, any, error) {
	limit := int64(cfg.Limits.MaxPayload)
	var (
		data []byte
		from = "the payload"
	)
	switch {
	case o.Arg != nil && o.DataSet:
		return nil, nil, badPayload("give the payload once: as the [json] argument or with --data, not both")
	case o.Arg != nil:
		data = []byte(*o.Arg)
	case !o.DataSet:
		return nil, nil, nil
	case o.Data == "-":
		from = "the payload on stdin"
		b, err := readLimited(o.IO.In, limit)
		if err != nil {
			return nil, nil, withCode(exitFailure, fmt.Errorf("read the payload from stdin: %w", err), "")
		}
		data = b
	case strings.HasPrefix(o.Data, "@"):
		name := o.Data[1:]
		from = "the payload in " + name
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, badPayload("read the payload: %v", err)
		}
		defer f.Close()
		b, err := readLimited(f, limit)
		if err != nil {
			return nil, nil, badPayload("read the payload from %s: %v", name, err)
		}
		data = b
	default:
		data = []byte(o.Data)
	}
	if int64(len(data)) > limit {
		return nil, nil, withCode(exitUsage, fmt.Errorf("%s is larger than limits.max_payload (%s)", from, cfg.Limits.MaxPayload),
			"send a reference (an id or a URL) instead of the data, or raise limits.max_payload in the configuration")
	}
	value, err := decodePayload(data)
	if err != nil {
		return nil, nil, badPayload("%s is not valid JSON: %v", from, err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, data); err != nil {
		return nil, nil, badPayload("%s is not valid JSON: %v", from, err)
	}
	return compact.Bytes(), value, nil
}

// badPayload is a refused payload: exit 2 with a reminder of the form.
func badPayload(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...),
		`the payload is one JSON value, quoted for the shell: '{"evidenciaId": 7}' (or --data @file.json, --data -)`)
}

// readLimited reads r up to limit+1 bytes: enough to tell it is too large.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	if r == nil {
		return nil, errors.New("no input")
	}
	return io.ReadAll(io.LimitReader(r, limit+1))
}

// decodePayload parses exactly one JSON value, keeping numbers exact
// (json.Number: integers travel as msgpack integers, as from Node). Errors
// give the position: byte offset, line and column, counted from 1.
func decodePayload(data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("it is empty (omit it to send the event without an argument)")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			// Offset counts the bytes read, the bad one included.
			return nil, fmt.Errorf("%s %s%s", strings.TrimPrefix(se.Error(), "json: "), jsonPosition(data, se.Offset), quoteHint(data))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, fmt.Errorf("it ends too early, after byte %d (an unclosed { [ or \")", len(data))
		default:
			return nil, err
		}
	}
	end := dec.InputOffset() // just after the value
	rest := data[end:]
	if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
		at := end + int64(len(rest)-len(trimmed)) + 1
		return nil, fmt.Errorf("unexpected data after the JSON value %s (send several values as one array)", jsonPosition(data, at))
	}
	if err := redisctl.CheckNumbers(v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonPosition describes the 1-based byte pos of data as "at byte N (line L,
// column C)".
func jsonPosition(data []byte, pos int64) string {
	pos = min(max(pos, 1), int64(len(data))+1)
	before := data[:pos-1]
	line := 1 + bytes.Count(before, []byte("\n"))
	col := pos - int64(bytes.LastIndexByte(before, '\n')+1)
	return fmt.Sprintf("at byte %d (line %d, column %d)", pos, line, col)
}

// quoteHint helps with the usual slip: a bare word where a JSON string
// needs quotes (or a shell that ate them).
func quoteHint(data []byte) string {
	s := strings.TrimSpace(string(data))
	if s == "" || strings.ContainsAny(s[:1], `{["-0123456789tfn`) {
		return ""
	}
	if strings.HasPrefix(s, "'") {
		return "; JSON strings use double quotes"
	}
	return fmt.Sprintf("; a string payload needs JSON quotes: '%q'", s)
}
