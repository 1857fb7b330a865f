package cluster

import (
	"errors"
	"fmt"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/internal/jwtauth"
)

// Roles a token may carry.
const (
	RoleStudent = "student"
	RoleMentor  = "mentor"
	RoleAdmin   = "admin"
)

// clientEvents are the events a client may send; everything else is
// ignored and counted.
var clientEvents = map[string]func(w *Worker, s *socket.Socket, args []any){
	// ping answers with the server time, for round-trip measurements.
	"ping": func(w *Worker, s *socket.Socket, args []any) {
		if len(args) == 0 {
			return
		}
		if ack, ok := args[len(args)-1].(socket.Ack); ok {
			ack([]any{map[string]any{"pong": true, "t": time.Now().UnixMilli()}}, nil)
		}
	},
}

// authenticate is the namespace middleware: a valid token or
// connect_error "Unauthorized" (the Node original's message) with data
// {code: missing_token | malformed | bad_signature | expired | bad_claims}
// (jwtauth.Codes), so that a developer knows what to fix, and nothing else
// happens. The code says nothing of the secret or the claims' values.
func (w *Worker) authenticate(s *socket.Socket, next func(*socket.ExtendedError)) {
	token, _ := s.Handshake().Auth["token"].(string)
	id, err := w.opts.Authenticate(token)
	if err == nil && (id.Sub == "" || !validRole(id.Role)) {
		err = fmt.Errorf("%w: token without a subject or with an unknown role", jwtauth.ErrClaims)
	}
	if err != nil {
		code := jwtauth.Code(err)
		if token == "" {
			code = jwtauth.CodeMissingToken
		}
		w.m.refused(reasonUnauthorized)
		w.m.authFailed(code)
		w.log.Debug("handshake refused", "reason", "unauthorized", "code", code, "err", err.Error(), "address", s.Handshake().Address)
		next(socket.NewExtendedError("Unauthorized", map[string]any{"code": code}))
		return
	}
	// The token is not kept once verified: nor in memory (a few hundred
	// bytes per connection), nor in what fetchSockets and the Admin UI show
	// of the handshake, which other servers receive through Redis.
	delete(s.Handshake().Auth, "token")
	s.SetData(SocketData{Sub: id.Sub, Role: id.Role})
	w.setUp(s, id)
	next(nil)
}

// SocketData is a socket's data (socket.data in Node): who the token
// says it is. fetchSockets and the Admin UI see it as {"sub", "role"}. A
// struct, not a map: a map of two keys costs about 300 bytes per
// connection.
type SocketData struct {
	Sub  string `json:"sub" msgpack:"sub"`
	Role string `json:"role" msgpack:"role"`
}

func validRole(r string) bool { return r == RoleStudent || r == RoleMentor || r == RoleAdmin }

// setUp puts a socket in its rooms and installs its handlers before the
// library answers CONNECT: in Node this happens in the same tick as the
// answer, but here an emit (or a client's first event) could otherwise
// run between the answer and a "connection" handler and find the room
// empty (a test's EmitToUser right after connecting was lost about once in
// thirty under -race). A recovered socket skips the middleware: it gets
// its rooms back from its session, and its handlers in onConnection.
func (w *Worker) setUp(s *socket.Socket, id Identity) {
	w.m.accepted.Add(1) // here, not in onConnection: the client may see CONNECT before "connection" runs
	s.Join(socket.Room(rooms.User(id.Sub)))
	if id.Role == RoleMentor {
		s.Join(socket.Room(rooms.Mentor(id.Sub)))
	}
	w.handle(s)
}

// handle installs a socket's handlers: the client events it may send, and
// the delivery counter.
func (w *Worker) handle(s *socket.Socket) {
	s.OnAny(func(args ...any) {
		name, _ := firstArg(args).(string)
		handle, ok := clientEvents[name]
		if !ok {
			w.m.clientIgnored.Add(1)
			return
		}
		w.m.clientHandled.Add(1)
		handle(w, s, args[1:])
	})
	s.OnAnyOutgoing(func(...any) { w.m.delivered.Add(1) })
}

func (w *Worker) onConnection(s *socket.Socket) {
	if s.Recovered() {
		w.m.accepted.Add(1)
		delete(s.Handshake().Auth, "token") // as authenticate does
		w.handle(s)
	}
}

func firstArg(args []any) any {
	if len(args) == 0 {
		return nil
	}
	return args[0]
}

// EmitToUser sends an event to every socket of a user, on any worker.
func (w *Worker) EmitToUser(userID, event string, args ...any) error {
	return w.EmitToRoom(rooms.User(userID), event, args...)
}

// EmitToMentor sends an event to a mentor's sockets, on any worker.
func (w *Worker) EmitToMentor(mentorID, event string, args ...any) error {
	return w.EmitToRoom(rooms.Mentor(mentorID), event, args...)
}

// EmitToRoom sends an event to a room, on any worker.
func (w *Worker) EmitToRoom(room, event string, args ...any) error {
	if event == "" {
		return errors.New("event name is empty")
	}
	return w.io.To(socket.Room(room)).Emit(event, args...)
}

// Broadcast sends an event to every connected client of every worker.
func (w *Worker) Broadcast(event string, args ...any) error {
	if event == "" {
		return errors.New("event name is empty")
	}
	return w.io.Sockets().Emit(event, args...)
}
