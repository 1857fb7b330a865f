// Package workerproto is the contract between the daemon and its workers:
// everything the two processes must agree on, in one place both import, so
// that the compiler (and this package's tests) check both sides. The daemon
// (package daemon) is the supervising side; the worker (package cluster, run
// by `frutos worker`) is the supervised side. Neither imports the other.
//
// A worker is one process. The daemon starts it, watches it, routes its
// sessions to it and stops it; nothing else passes between them than what
// this package names, plus the configuration, which travels in the
// environment (configs.ChildEnv on the daemon's side, configs.FromChildEnv
// on the worker's).
//
// # The command line (Spec)
//
// The daemon runs `<frutos binary> worker` (Command) with the flags of a
// Spec, built with Spec.Args. The worker reads them back with Spec.Bind (or
// ParseArgs). A supervised worker's Spec has an id, a tag and the two
// sockets (Supervised builds it); a standalone worker (systemd, Kubernetes)
// has Listen and Admin instead. The daemon must:
//   - give every process a tag that no other live process of it has, and a
//     new tag for every generation of a worker id (Tag(id, generation)):
//     session ids carry the tag, so a reused tag would route a session to a
//     stranger;
//   - put the sockets in a run directory of its own (RunDir), one that no
//     other daemon's workers use, since the file names repeat across
//     daemons (generations start again at 1).
//
// The worker must:
//   - refuse a tag that CheckTag refuses, before it serves anything;
//   - serve Socket.IO (EnginePath) and its admin handler (under AdminPrefix)
//     on Socket, an owner-only unix socket it creates, replacing a stale
//     file;
//   - accept handed-over websocket connections on Handoff (internal/handoff);
//   - report ready in its stats only when it takes new sessions.
//
// # Session ids
//
// Every Engine.IO session id a supervised worker makes is
// SessionID(tag, id): its tag, a dot, and an id of the engine's that has no
// dot. The front door finds a session's worker with TagOf(sid) alone: no
// table, no lookup in Redis. A request whose sid names no live tag is
// answered "Session ID unknown" by the front door, and the client starts a
// new session. A worker with no tag (standalone) makes plain ids.
//
// # Stats
//
// The worker answers GET StatsPath on its private socket (and GET
// StatsRoute on its admin handler) with a Stats as JSON, quickly and without
// stopping the world: the daemon asks every worker every second, and while
// a worker starts, every 50 ms until Ready. The daemon reads Ready (route
// new sessions here or not), Draining, Connections (with the sessions it
// routed since, the load for least-loaded routing), Transports, Delivered
// and Redis.State; status, monit and the chaos suite read the rest. A stats
// request that fails or times out (the daemon waits one second) counts as
// not ready. Fields may be added; none may change meaning or type.
//
// # Liveness
//
// The daemon starts every worker with a pipe on its stdin, holds the write
// end for as long as it lives, and never writes to it. The worker reads its
// stdin until EOF (UntilEOF): EOF, or a read error, means the daemon is gone
// (even killed with SIGKILL, which no signal reports), and the worker then
// drains and exits as it does on SIGTERM, instead of lingering as an orphan
// nobody routes to. A standalone worker does not watch its stdin. On Linux
// the daemon also sets the worker's parent-death signal to SIGTERM, which
// ends the same way; the pipe is the rule that holds on every platform, and
// the one a test can drive.
//
// # Stopping
//
// SIGTERM (or SIGINT) asks a worker to drain: it stops taking new sessions
// (its stats say Draining, and Ready false), closes its clients' transports
// so they reconnect through the front door to the other workers, and exits
// 0. The daemon sends SIGKILL after the configured kill_timeout; a worker
// budgets its drain to finish before that.
package workerproto
