// Package engine is the worker's Engine.IO v4 server: the transports
// (long-polling and websocket, with the upgrade between them), the
// heartbeat, and the write path, under the library's Socket.IO layer
// (github.com/zishang520/socket.io servers/socket/v3), which it is bound
// into with socket.Server.Bind. Namespaces, rooms, acks, connection state
// recovery and the Redis adapter are the Socket.IO layer's and stay as
// they were; only the engine underneath is ours.
//
// # Why our own
//
// The library's engine cost about 43 KB and two goroutines per idle
// websocket (a reader, and a goroutine per timer), kept net/http's
// buffers reachable after the upgrade, built a gorilla PreparedMessage per
// packet per recipient (twice), and armed the pong deadline after the
// ping was written, in another goroutine: a quick pong could clear the
// previous deadline instead, and the session ended one pingTimeout after
// a ping it had answered (the "EOF drops"; TestQuickPongsNeverTimeOut).
// See shared/notes/engine-layer-findings.md.
//
// # Design
//
//   - Websockets are served by one epoll instance (poller_linux.go) with
//     gobwas/ws for the handshake checks, frame headers and unmasking. A
//     connection is a descriptor, a 176-byte struct and a timer: no
//     goroutine and no buffer while it is idle. When it becomes readable a
//     goroutine reads it until it is empty (wsConn.readable), with a
//     pooled buffer. Writes go straight to the socket from the sender; what
//     the socket does not take is queued and written with writev when the
//     poller says it is writable again, so packets that pile up for a slow
//     client go out together. Past Options.MaxBuffered bytes queued the
//     session ends (ReasonWriteCap).
//   - A broadcast's packet is encoded once by the Socket.IO layer
//     (WsPreEncodedFrame); its websocket frame is built once too
//     (frameCache) and every recipient is written the same bytes.
//   - One time.AfterFunc timer per session serves the heartbeat: it fires
//     at the next ping, or at the pong deadline, which is armed before the
//     ping is written, under the lock the pong is handled with.
//   - Long-polling runs on net/http (a waiting GET holds its request's
//     goroutine, as it must). A session keeps its first request as the
//     bytes of its head, parsed again when the Socket.IO layer asks.
//   - Websocket upgrades arrive two ways: through ServeHTTP (net/http
//     hijack; the descriptor is duplicated out of Go's poller) or through
//     ServeHandoff, as a descriptor and the bytes already read, handed over
//     by the daemon's front door (internal/handoff). Both refuse what
//     Node's engine refuses (verify), and Options.Allow runs before any
//     work (origins, a full or draining worker).
//   - Sessions end for a Reason (ping timeout, transport close or error,
//     parse error, server disconnect, write cap, drain, server close),
//     reported to Options.OnClose: the worker counts them
//     (frutos_disconnects_total{reason}).
//
// # Why gobwas/ws and our own epoll, not nbio
//
// Probed on 10,000 idle Engine.IO websockets (bench/engine-probe, its
// README has the commands; 2026-12-04, 2 CPUs): gobwas/ws with our own
// epoll held them at 0.51-0.54 KB of RSS each and no goroutine; nbio
// v1.6.8 (nbhttp and its Upgrader) at 1.69-1.77 KB and no goroutine. Both
// spent about 9 µs per frame written, nearly all of it write(2). Our own
// loop adopts a raw descriptor and the bytes read before it (the front
// door's hand-off) natively; nbio has no API for that (net.FileConn, then
// an internal call that reports errors only to its log). gobwas/ws adds
// 185 KB to the binary, nbio 1.85 MB (a second HTTP engine and TLS stack
// the worker does not need: TLS ends before the front door).
//
// # Wire compatibility
//
// Proved by the official suites, socketio/engine.io-protocol and
// socketio/socket.io-protocol (make protocol), and by the official Node
// client with default, polling-only and websocket-only transports
// (cluster/node_test.go). Protocol 3 (EIO=3) is refused with the standard
// error (code 5); per-message deflate and HTTP compression are not
// offered.
package engine
