package engine

import (
	"io"
	"net/http"

	eiopacket "github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/parsers/engine/v3/parser"
	eio "github.com/zishang520/socket.io/servers/engine/v3"
	"github.com/zishang520/socket.io/servers/engine/v3/config"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// This file makes Server an eio.BaseServer and Socket an eio.Socket, the
// interfaces the library's Socket.IO layer is written against
// (socket.Server.Bind). The layer uses a small part of them:
//
//   - of the server: On("connection"), and Close;
//   - of a socket: On, Once and RemoveListener ("data", "error",
//     "close"), Id, Protocol, ReadyState, Request, RemoteAddress,
//     Transport().Writable() (volatile packets), Write and Close.
//
// Those are implemented in server.go and socket.go. The rest belongs to
// the library's own engine (prototypes, middlewares, transports built
// from HTTP contexts) and has no meaning here: the methods below answer
// with zero values and do nothing.

var (
	_ eio.BaseServer       = (*Server)(nil)
	_ eio.Socket           = (*Socket)(nil)
	_ transports.Transport = transportView{}
)

// Server: the library engine's internals.

func (s *Server) Prototype(eio.BaseServer)                {}
func (s *Server) Proto() eio.BaseServer                   { return s }
func (s *Server) Opts() config.ServerOptionsInterface     { return nil }
func (s *Server) Clients() *types.Map[string, eio.Socket] { return &types.Map[string, eio.Socket]{} }
func (s *Server) ClientsCount() uint64                    { return uint64(s.Count()) }
func (s *Server) Middlewares() []eio.Middleware           { return nil }
func (s *Server) Transports() *types.Set[string]          { return types.NewSet("polling", "websocket") }
func (s *Server) TransportsByName() map[string]transports.TransportCtor {
	return nil
}
func (s *Server) Construct(any)                                    {}
func (s *Server) Init()                                            {}
func (s *Server) ComputePath(config.AttachOptionsInterface) string { return "/socket.io/" }
func (s *Server) Upgrades(name string) []string {
	if name == transports.POLLING && !s.opts.NoUpgrades {
		return []string{transports.WEBSOCKET}
	}
	return nil
}
func (s *Server) Verify(*types.HttpContext, bool) (*types.CodeMessage, map[string]any) {
	return nil, nil
}
func (s *Server) Use(eio.Middleware)                                      {}
func (s *Server) ApplyMiddlewares(_ *types.HttpContext, next func(error)) { next(nil) }
func (s *Server) Cleanup()                                                {}
func (s *Server) GenerateId(*types.HttpContext) string                    { return s.opts.NewID() }
func (s *Server) Handshake(string, *types.HttpContext) (*types.CodeMessage, transports.Transport) {
	return &types.CodeMessage{Code: CodeBadRequest, Message: codeMessages[CodeBadRequest]}, nil
}
func (s *Server) CreateTransport(string, *types.HttpContext) (transports.Transport, error) {
	return nil, errNotSupported
}

// Socket: the library engine's internals.

func (s *Socket) SetReadyState(string)                                                            {}
func (s *Socket) Upgraded() bool                                                                  { return s.isUpgraded() }
func (s *Socket) Upgrading() bool                                                                 { return s.isUpgrading() }
func (s *Socket) Construct(string, eio.BaseServer, transports.Transport, *types.HttpContext, int) {}
func (s *Socket) MaybeUpgrade(transports.Transport)                                               {}

// Send is Write (the library's alias).
func (s *Socket) Send(data io.Reader, opts *eiopacket.Options, fn eio.SendCallback) eio.Socket {
	return s.Write(data, opts, fn)
}

// transportView answers the questions the Socket.IO layer and the stats
// ask of a session's transport: its name and whether a packet written now
// would go out at once (volatile packets are dropped otherwise).
type transportView struct {
	name     string
	writable bool
	sid      string
}

func (t transportView) Name() string                                              { return t.name }
func (t transportView) Writable() bool                                            { return t.writable }
func (t transportView) Sid() string                                               { return t.sid }
func (t transportView) Protocol() int                                             { return 4 }
func (t transportView) HandlesUpgrades() bool                                     { return t.name == transports.WEBSOCKET }
func (t transportView) ReadyState() string                                        { return "open" }
func (t transportView) SupportsBinary() bool                                      { return true }
func (t transportView) Discarded() bool                                           { return false }
func (t transportView) MaxHttpBufferSize() int64                                  { return 0 }
func (t transportView) Parser() parser.Parser                                     { return nil }
func (t transportView) HttpCompression() *types.HttpCompression                   { return nil }
func (t transportView) PerMessageDeflate() *types.PerMessageDeflate               { return nil }
func (t transportView) Prototype(transports.Transport)                            {}
func (t transportView) Proto() transports.Transport                               { return t }
func (t transportView) SetSid(string)                                             {}
func (t transportView) SetWritable(bool)                                          {}
func (t transportView) SetSupportsBinary(bool)                                    {}
func (t transportView) SetReadyState(string)                                      {}
func (t transportView) SetHttpCompression(*types.HttpCompression)                 {}
func (t transportView) SetPerMessageDeflate(*types.PerMessageDeflate)             {}
func (t transportView) SetMaxHttpBufferSize(int64)                                {}
func (t transportView) Construct(*types.HttpContext)                              {}
func (t transportView) Discard()                                                  {}
func (t transportView) OnRequest(*types.HttpContext)                              {}
func (t transportView) Close(...types.Callable)                                   {}
func (t transportView) OnError(string, error)                                     {}
func (t transportView) OnPacket(*eiopacket.Packet)                                {}
func (t transportView) OnData(types.BufferInterface)                              {}
func (t transportView) OnClose()                                                  {}
func (t transportView) Send([]*eiopacket.Packet)                                  {}
func (t transportView) DoClose(types.Callable)                                    {}
func (t transportView) AddListener(types.EventName, ...types.EventListener) error { return nil }
func (t transportView) Emit(types.EventName, ...any)                              {}
func (t transportView) EventNames() []types.EventName                             { return nil }
func (t transportView) ListenerCount(types.EventName) int                         { return 0 }
func (t transportView) Listeners(types.EventName) []types.EventListener           { return nil }
func (t transportView) On(types.EventName, ...types.EventListener) error          { return nil }
func (t transportView) Once(types.EventName, ...types.EventListener) error        { return nil }
func (t transportView) RemoveAllListeners(types.EventName) bool                   { return false }
func (t transportView) RemoveListener(types.EventName, types.EventListener) bool  { return false }
func (t transportView) Clear()                                                    {}
func (t transportView) Len() int                                                  { return 0 }

// nopResponse is the response writer of the HTTP context the Socket.IO
// layer reads a session's first request from: it never answers anything.
type nopResponse struct{}

func (nopResponse) Header() http.Header         { return http.Header{} }
func (nopResponse) Write(b []byte) (int, error) { return len(b), nil }
func (nopResponse) WriteHeader(int)             {}
