// Package protocoltest is the server the official protocol test suites
// (testdata/protocol: socketio/engine.io-protocol and
// socketio/socket.io-protocol, test-suite/) expect, built on the Engine.IO
// server that newEngine returns; protocol_test.go runs the suites against
// it.
//
// The engine is the only thing under test that is not fixed: newEngine is
// the one function to change when frutos' own Engine.IO server replaces the
// library's, and the suites then say whether it speaks the same protocol.
//
// The handlers are the suites' reference servers, from their READMEs:
//
//   - /engine.io/: a bare Engine.IO server that sends every message back
//     (engine.io's listen(3000, ...) with socket.on("data", send));
//   - /socket.io/: a Socket.IO server on another engine from newEngine: on
//     the main namespace it emits "auth" with the handshake's auth payload,
//     answers "message" with "message-back" and the same arguments, and
//     acks "message-with-ack" with its arguments; /custom only emits
//     "auth". Other namespaces do not exist.
//
// Both suites expect pingInterval 300 ms, pingTimeout 200 ms, maxPayload
// 1,000,000 and CORS for any origin; the Socket.IO suite also a 1 s connect
// timeout. Neither tests Engine.IO v3 (EIO=3), which stays refused, as in
// the library's and Node's defaults.
package protocoltest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"

	frutosengine "github.com/frutos/frutos/cluster/engine"
)

// The settings of the suites' reference servers.
const (
	PingInterval   = 300 * time.Millisecond
	PingTimeout    = 200 * time.Millisecond
	MaxPayload     = 1_000_000
	ConnectTimeout = time.Second
)

// EngineOptions are the Engine.IO settings the suites check.
type EngineOptions struct {
	PingInterval time.Duration
	PingTimeout  time.Duration
	MaxPayload   int
}

// Engine is what the server needs of an Engine.IO server: the library's
// Socket.IO layer binds to it (socket.Server.Bind), and it serves HTTP
// (polling and websocket upgrades) on the path it is mounted at.
type Engine interface {
	engine.BaseServer
	http.Handler
}

// newEngine builds the Engine.IO server under test: frutos's own
// (cluster/engine), configured as the suites expect, with CORS for any
// origin.
func newEngine(o EngineOptions) (Engine, error) {
	return frutosengine.NewServer(frutosengine.Options{
		PingInterval: o.PingInterval,
		PingTimeout:  o.PingTimeout,
		MaxPayload:   o.MaxPayload,
		CORS:         frutosengine.CORS{Allowed: func(string) bool { return true }},
	})
}

// Server serves both suites: /engine.io/ and /socket.io/.
type Server struct {
	http *http.Server
	eio  Engine         // the bare engine of /engine.io/
	sio  *socket.Server // on its own engine, at /socket.io/
	done chan error     // Serve's result
}

// Start serves the suites on ln until Close.
func Start(ln net.Listener) (*Server, error) {
	opts := EngineOptions{PingInterval: PingInterval, PingTimeout: PingTimeout, MaxPayload: MaxPayload}
	eio, err := newEngine(opts)
	if err != nil {
		return nil, fmt.Errorf("engine for /engine.io/: %w", err)
	}
	_ = eio.On("connection", func(args ...any) { echo(args[0].(engine.Socket)) })

	sioEngine, err := newEngine(opts)
	if err != nil {
		eio.Close()
		return nil, fmt.Errorf("engine for /socket.io/: %w", err)
	}
	so := socket.DefaultServerOptions()
	so.SetServeClient(false)
	so.SetConnectTimeout(ConnectTimeout)
	sio := socket.NewServer(nil, so)
	sio.Bind(sioEngine)
	sio.On("connection", func(args ...any) { onMain(args[0].(*socket.Socket)) })
	sio.Of("/custom", func(args ...any) { emitAuth(args[0].(*socket.Socket)) })

	mux := http.NewServeMux()
	mux.Handle("/engine.io/", eio)
	mux.Handle("/socket.io/", sioEngine)
	s := &Server{
		http: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		eio:  eio,
		sio:  sio,
		done: make(chan error, 1),
	}
	go func() { s.done <- s.http.Serve(ln) }()
	return s, nil
}

// echo sends every message of an Engine.IO session back, text as text and
// binary as binary.
func echo(s engine.Socket) {
	_ = s.On("data", func(args ...any) {
		switch b := args[0].(type) {
		case *types.StringBuffer:
			s.Write(types.NewStringBuffer(bytes.Clone(b.Bytes())), nil, nil)
		case types.BufferInterface:
			s.Write(types.NewBytesBuffer(bytes.Clone(b.Bytes())), nil, nil)
		}
	})
}

// onMain is the main namespace of the Socket.IO suite's reference server.
func onMain(s *socket.Socket) {
	emitAuth(s)
	_ = s.On("message", func(args ...any) {
		_ = s.Emit("message-back", args...)
	})
	_ = s.On("message-with-ack", func(args ...any) {
		if len(args) == 0 {
			return
		}
		if ack, ok := args[len(args)-1].(socket.Ack); ok {
			ack(args[:len(args)-1], nil)
		}
	})
}

// emitAuth sends the client its own CONNECT payload ({} when it sent none).
func emitAuth(s *socket.Socket) {
	auth := s.Handshake().Auth
	if auth == nil {
		auth = map[string]any{}
	}
	_ = s.Emit("auth", auth)
}

// Close closes every session and the listener, and waits for Serve to
// return. Handlers still running (long-polling requests the engines are
// ending) are not waited for.
func (s *Server) Close() error {
	s.sio.Close(nil) // closes its engine too
	s.eio.Close()
	err := s.http.Close()
	if serr := <-s.done; serr != nil && serr != http.ErrServerClosed {
		return serr
	}
	return err
}
