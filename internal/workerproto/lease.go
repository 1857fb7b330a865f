package workerproto

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The lease: the liveness signal of a daemon that is not the worker's
// parent (see the package doc, Liveness).
const (
	// LeasePath is where a daemon asks a worker for a lease, on its
	// private socket.
	LeasePath = AdminPrefix + "/lease"
	// LeaseProtocol is the Upgrade token of a lease request.
	LeaseProtocol = "frutos-lease/1"
	// daemonHeader carries the leasing daemon's pid, for the worker's log.
	daemonHeader = "X-Frutos-Daemon"
)

// Messages a daemon sends on a lease after the worker's identity, one byte
// each, read one at a time.
const (
	// msgLogs carries two descriptors (SCM_RIGHTS): the worker's new
	// stdout and stderr.
	msgLogs = 'L'
)

// maxIdentity bounds a worker's identity line.
const maxIdentity = 64 << 10

// Identity is what a worker answers a lease with: who it says it is. The
// daemon checks it against the process (CheckProcess) before it trusts it.
type Identity struct {
	PID     int       `json:"pid"`
	ID      int       `json:"id"`
	Tag     string    `json:"tag"`
	Socket  string    `json:"socket"`
	Handoff string    `json:"handoff"`
	Started time.Time `json:"started"`
	// Draining is set once the worker drains (SIGTERM, or its orphan
	// grace ran out): it takes no new session and exits soon.
	Draining bool `json:"draining"`
	// Orphaned is set when no daemon held the worker as this lease came.
	Orphaned bool `json:"orphaned"`
}

// Generation is the generation in the identity's tag, 0 when the tag is
// not one of Tag's.
func (id Identity) Generation() int {
	i, gen, ok := ParseTag(id.Tag)
	if !ok || i != id.ID {
		return 0
	}
	return gen
}

// ParseTag reads a tag made by Tag back into its worker id and generation.
func ParseTag(tag string) (id, gen int, ok bool) {
	rest, found := strings.CutPrefix(tag, "w")
	if !found {
		return 0, 0, false
	}
	ids, gens, found := strings.Cut(rest, "g")
	if !found {
		return 0, 0, false
	}
	var err1, err2 error
	id, err1 = strconv.Atoi(ids)
	gen, err2 = strconv.Atoi(gens)
	if err1 != nil || err2 != nil || id < 0 || gen < 1 || Tag(id, gen) != tag {
		return 0, 0, false
	}
	return id, gen, true
}

// Lease is a daemon's hold on a worker: the connection whose end tells the
// worker that this daemon is gone. The daemon keeps it for as long as it
// supervises the worker and never writes to it but to send logs.
type Lease struct {
	conn     *net.UnixConn
	peer     int
	identity Identity
}

// DialLease asks the worker serving socket for a lease. onPeer, when not
// nil, gets the pid of the process that serves the socket (the kernel's
// SO_PEERCRED) before anything is asked: the daemon opens its pidfd there,
// so that the worker's answer, which comes after, proves that the pidfd
// names the live worker and not a later process that reused its pid. A
// socket that nobody serves fails with an error that wraps
// syscall.ECONNREFUSED (or ENOENT): a stale file.
func DialLease(ctx context.Context, socket string, onPeer func(pid int) error) (*Lease, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UnixConn)
	l := &Lease{conn: uc}
	fail := func(err error) (*Lease, error) {
		uc.Close()
		return nil, fmt.Errorf("lease %s: %w", socket, err)
	}
	cred, err := peerCred(uc)
	if err != nil {
		return fail(err)
	}
	if int(cred.Uid) != os.Getuid() {
		return fail(fmt.Errorf("served by uid %d, not ours (%d)", cred.Uid, os.Getuid()))
	}
	l.peer = int(cred.Pid)
	if onPeer != nil {
		if err := onPeer(l.peer); err != nil {
			return fail(err)
		}
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = uc.SetDeadline(deadline)
	}
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: worker\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s: %d\r\n\r\n",
		LeasePath, LeaseProtocol, daemonHeader, os.Getpid())
	if _, err := uc.Write([]byte(req)); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(uc, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fail(fmt.Errorf("read the answer: %w", err))
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fail(fmt.Errorf("answered %s, not a lease (an older worker?)", resp.Status))
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return fail(fmt.Errorf("read the identity: %w", err))
	}
	if err := json.Unmarshal(line, &l.identity); err != nil {
		return fail(fmt.Errorf("identity: %w", err))
	}
	if br.Buffered() > 0 {
		return fail(errors.New("the worker sent more than its identity"))
	}
	if l.identity.PID != l.peer {
		return fail(fmt.Errorf("the worker says it is pid %d, the socket is served by pid %d", l.identity.PID, l.peer))
	}
	_ = uc.SetDeadline(time.Time{})
	return l, nil
}

// Identity is what the worker answered.
func (l *Lease) Identity() Identity { return l.identity }

// PeerPID is the pid of the process serving the socket, from the kernel.
func (l *Lease) PeerPID() int { return l.peer }

// SendLogs points the worker's stdout and stderr at out and errw (the
// write ends of pipes the daemon reads): the worker puts them on its
// descriptors 1 and 2, so everything it writes, a crash's trace included,
// reaches them. The caller closes its copies afterwards.
func (l *Lease) SendLogs(out, errw *os.File) error {
	// Fd puts the descriptors in blocking mode, which the worker's
	// os.Stdout and os.Stderr expect.
	rights := unix.UnixRights(int(out.Fd()), int(errw.Fd()))
	_ = l.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	defer l.conn.SetWriteDeadline(time.Time{})
	_, _, err := l.conn.WriteMsgUnix([]byte{msgLogs}, rights, nil)
	return err
}

// Close lets go of the worker: it is orphaned unless another daemon (or
// its parent's pipe) holds it.
func (l *Lease) Close() error { return l.conn.Close() }

// HeldLease is the worker's end of a lease.
type HeldLease struct {
	// DaemonPID is the pid the leasing daemon gave (for the log).
	DaemonPID int
	conn      *net.UnixConn
}

// AcceptLease answers a lease request on the worker's private socket: it
// takes the connection over, answers self, and returns the lease, which
// lasts until the daemon's end of the connection closes (Hold). A request
// that is not a lease is answered 400 and returns an error.
func AcceptLease(w http.ResponseWriter, r *http.Request, self Identity) (*HeldLease, error) {
	if !slices.ContainsFunc(strings.Split(r.Header.Get("Upgrade"), ","), func(p string) bool {
		return strings.EqualFold(strings.TrimSpace(p), LeaseProtocol)
	}) {
		http.Error(w, "lease: Upgrade: "+LeaseProtocol+" expected", http.StatusBadRequest)
		return nil, errors.New("lease request without its Upgrade header")
	}
	daemon, _ := strconv.Atoi(r.Header.Get(daemonHeader))
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "lease: cannot take the connection over", http.StatusInternalServerError)
		return nil, errors.New("lease: the response cannot be hijacked")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok || brw.Reader.Buffered() > 0 {
		c.Close()
		return nil, errors.New("lease: not a unix socket, or bytes sent before the answer")
	}
	b, err := json.Marshal(self)
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = uc.SetDeadline(time.Now().Add(5 * time.Second))
	answer := fmt.Sprintf("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n\r\n%s\n", LeaseProtocol, b)
	if _, err := uc.Write([]byte(answer)); err != nil {
		c.Close()
		return nil, fmt.Errorf("lease: answer: %w", err)
	}
	_ = uc.SetDeadline(time.Time{})
	return &HeldLease{DaemonPID: daemon, conn: uc}, nil
}

// Hold reads the daemon's messages until its end closes (it exited, was
// killed, or let go) or Close: logs gets the worker's new stdout and
// stderr, which it then owns. Unknown messages and their descriptors are
// dropped, so a newer daemon may send more.
func (h *HeldLease) Hold(logs func(out, errw *os.File)) {
	buf := make([]byte, 1) // one message per read: descriptors never straddle two
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := h.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
		}
		files := receivedFiles(oob[:oobn])
		if buf[0] == msgLogs && len(files) == 2 && logs != nil {
			logs(files[0], files[1])
			continue
		}
		for _, f := range files {
			f.Close()
		}
	}
}

// Close ends the lease from the worker's side.
func (h *HeldLease) Close() error { return h.conn.Close() }

func receivedFiles(oob []byte) []*os.File {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "lease"))
		}
	}
	return files
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// CheckProcess verifies that process pid is the worker id says it is: its
// command line, read from /proc, is a worker's (Command and a Spec) with
// the same id, tag and sockets. The identity is the worker's word; this
// is the kernel's, so a stale socket file, or a process that is not a
// frutos worker, is never adopted.
func CheckProcess(pid int, id Identity) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	i := slices.Index(args, Command)
	if i < 1 {
		return fmt.Errorf("process %d is not a frutos worker (%q)", pid, strings.Join(args, " "))
	}
	spec, err := ParseArgs(args[i+1:])
	if err != nil {
		return fmt.Errorf("process %d: its command line: %w", pid, err)
	}
	if spec.ID != id.ID || spec.Tag != id.Tag || spec.Socket != id.Socket || spec.Handoff != id.Handoff {
		return fmt.Errorf("process %d runs worker %d (%s on %s), not worker %d (%s on %s)",
			pid, spec.ID, spec.Tag, spec.Socket, id.ID, id.Tag, id.Socket)
	}
	return nil
}
