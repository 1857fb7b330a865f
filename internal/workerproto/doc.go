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
// A supervised worker has a daemon while at least one of these holds it:
//   - its parent's pipe. The daemon that starts a worker gives it a pipe on
//     stdin, holds the write end for as long as it lives, and never writes
//     to it. The worker reads its stdin until EOF (UntilEOF): EOF, or a read
//     error, means its parent is gone, even killed with SIGKILL, which no
//     signal reports.
//   - a lease. A daemon that did not start the worker (it adopts the
//     workers of a daemon that died, or takes over from one in `frutos
//     update`) asks for one on the private socket: GET LeasePath with
//     Upgrade: LeaseProtocol (DialLease, AcceptLease). The worker answers
//     101 and its Identity, one JSON line. The daemon holds the connection
//     for as long as it supervises the worker and writes on it only to
//     give the worker new stdout and stderr (Lease.SendLogs: one byte and
//     two descriptors, SCM_RIGHTS; the worker puts them on its descriptors
//     1 and 2). Its end closing, for whatever reason, ends the lease.
//
// When the last one goes, the worker is orphaned. With restart.orphan_grace
// 0 it drains and exits at once, as on SIGTERM. Otherwise it keeps serving
// the connections it holds (their websockets are its own: nothing of them
// passes through the daemon), takes no new session (Stats.Orphaned, Ready
// false), writes its log to its own log files, since the daemon's pipes are
// gone, and waits. A lease within the grace adopts it: it takes new
// sessions again and logs to the new daemon's pipes. When the grace ends
// it drains and exits, so that nothing is left orphaned forever. A lease
// that comes later finds it draining (Identity.Draining): the daemon routes
// its sessions until it is gone, and nothing more.
//
// The worker must ignore SIGPIPE (a Go program that writes to a broken pipe
// on descriptor 1 or 2 is killed otherwise: its dead daemon's log pipes),
// and must not ask for a parent-death signal, which would end it with the
// daemon, `frutos update` included.
//
// The daemon must:
//   - adopt only the workers of its own home: the sockets in the run
//     directories under RunRoot, other than its own. A socket nobody
//     serves is stale: remove it. Trust no file: a worker is the process
//     serving its socket, with our uid (the socket's peer credentials), that
//     answers a lease with its own pid and whose command line says the same
//     (CheckProcess);
//   - watch an adopted worker with a pidfd opened in DialLease's onPeer
//     (it is not its child: no wait(2), no exit status), signal it through
//     that pidfd, and hold its lease until it exits or the daemon does;
//   - continue each adopted id's generations from the highest it found, so
//     that its own tags stay new (see Tag).
//
// A standalone worker has no daemon and watches neither.
//
// # Stopping
//
// SIGTERM (or SIGINT) asks a worker to drain: it stops taking new sessions
// (its stats say Draining, and Ready false), closes its clients' transports
// so they reconnect through the front door to the other workers, and exits
// 0. The daemon sends SIGKILL after the configured kill_timeout; a worker
// budgets its drain to finish before that.
package workerproto
