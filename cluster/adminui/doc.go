// Package adminui is the server side of the official Socket.IO Admin UI
// (@socket.io/admin-ui, the hosted page https://admin.socket.io or the
// same files from the npm package's ui/dist): what Node's
// instrument(io, opts) of 0.5.x does, on the library's Socket.IO server
// (github.com/zishang520/socket.io servers/socket/v3). The worker calls
// Instrument when admin_ui.enabled is set; with it off, nothing here runs
// and nothing is registered anywhere.
//
// # The protocol
//
// The dashboard connects to the /admin namespace with
// auth {username, password}, or {sessionId} after a login. It receives:
//
//   - session (a new session id, after a login with the password);
//   - config {supportedFeatures}: EMIT, JOIN, LEAVE, DISCONNECT and their
//     cluster-wide forms MJOIN, MLEAVE, MDISCONNECT; none in read-only mode;
//   - all_sockets: every socket of every namespace ("/" and "/admin"),
//     each {id, clientId, transport, nsp, data, handshake, rooms};
//   - server_stats from every server every 2 s: {serverId, hostname, pid,
//     uptime, clientsCount, pollingClientsCount, namespaces};
//   - socket_connected, socket_updated (the upgrade to websocket),
//     socket_disconnected, room_joined, room_left, as they happen.
//
// It sends the actions emit (nsp, filter, event, ...args), join and leave
// (nsp, room, filter) and _disconnect (nsp, close, filter), where filter
// is a room or a socket id (a socket's own room), or nothing for every
// socket of the namespace.
//
// # The whole cluster
//
// Everything goes through the server's adapter, so with the Redis adapter
// it is cluster-wide, and a mixed fleet of frutos workers and Node servers
// instrumented with the package behaves as one:
//
//   - every event for the dashboards is a broadcast to /admin: the server
//     that holds a socket reports it, and every server's dashboards get it
//     (the dashboards connected to a Node server too);
//   - all_sockets is fetchSockets on each namespace: every server answers
//     with its sockets, whose data carries _admin {clientId, transport} as
//     Node's does, so each side shows the other's transports;
//   - the actions are broadcasts and the adapter's socketsJoin,
//     socketsLeave and disconnectSockets requests, applied by every server;
//   - login sessions are kept in Redis under the keys of Node's RedisStore
//     (socket.io-admin#<id>, a day), so a dashboard that reconnects to
//     another worker, or is reloaded, stays logged in.
//
// # Security
//
// The /admin namespace has its own middleware: the username and a bcrypt
// password (both always checked, so a wrong username takes as long as a
// wrong password; at most two checks at a time per server), or a live
// session. A user's JWT, whatever its role, does not open /admin, and the
// admin's login does not open "/", whose middleware wants a JWT. The
// password and session id are removed from the handshake once read, and
// the dashboard never shows the handshake's auth, cookies or
// authorization headers (the worker removes the JWT itself). A client id
// is the first 12 characters of the Engine.IO session id, as in Node: the
// whole id would let a viewer hijack a long-polling session. Logins,
// refusals and actions are logged with the client's address, never with
// a password, hash or session id.
//
// # What is not implemented, and why
//
// Node also announces AGGREGATED_EVENTS (counts of packets and bytes in
// server_stats) and, in development, ALL_EVENTS (event_received and
// event_sent for every event of every socket). The dashboard hides its
// sockets, rooms and clients pages when it gets AGGREGATED_EVENTS without
// ALL_EVENTS (its "production mode"), and ALL_EVENTS costs a broadcast
// through Redis for every event delivered to any client: at 5,000 emits/s
// it would double what Redis carries. So neither is announced: the
// dashboard shows sockets, rooms, clients, connection and room events and
// servers, and the cost per event delivered stays zero (see the
// benchmark in cluster/adminui_bench_test.go). The official dashboard of
// 0.5.1 has no form to emit an event (its handler is an empty stub); the
// emit action works for any client of the protocol.
package adminui
