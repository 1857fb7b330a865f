package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/frutos/frutos/internal/handoff"
	"github.com/frutos/frutos/internal/workerproto"
)

// FrontDoor serves the public port for every worker. It routes each
// request of a Socket.IO session to the worker that owns the session (the
// worker's tag starts the session id), and a new session to the
// least-loaded ready worker. Long-polling requests are proxied; a
// websocket upgrade is handed to the worker as a file descriptor with the
// request bytes, so the worker serves the connection directly from then on
// and the daemon relays nothing.
//
// TLS must end before the front door (a load balancer or nginx): a TLS
// connection cannot be handed over.
type FrontDoor struct {
	router *router
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	proxy  *httputil.ReverseProxy
	done   chan struct{} // closed when Serve has returned, or by Close if it never ran
	// serving is taken by the first of Serve and Close: a front door closed
	// before it served has no Serve to wait for.
	serving sync.Once
	hand    handover
}

// listenFrontDoor binds addr; Serve starts answering.
func listenFrontDoor(addr string, r *router, log *slog.Logger) (*FrontDoor, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(publicPort, addr, err)
	}
	return frontDoorOn(ln, r, log), nil
}

// bindSetting is a listener the daemon binds, as listenError names it:
// the setting that moves it and whether it faces browsers.
type bindSetting struct {
	name    string // "" for the public port; else the message starts with it
	choose  string // how to pick another address
	example string // a port >= 1024, as the setting is written
	public  bool   // faces browsers: may sit behind a reverse proxy
}

var (
	publicPort = bindSetting{choose: "choose another port with --port", example: "--port 8080", public: true}
	emitListen = bindSetting{name: "emit.listen", choose: "choose another address in emit.listen",
		example: "emit.listen: 127.0.0.1:3001"}
)

// listenError says why a listener (the public port, the emit endpoint)
// could not be bound and what to do: the two an operator meets are a port
// another process holds and a privileged one (below 1024,
// net.ipv4.ip_unprivileged_port_start) for a user other than root.
func listenError(s bindSetting, addr string, err error) error {
	port := portOf(addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		err = fmt.Errorf("port %s is taken by another process (sudo ss -ltnp 'sport = :%s' names it); stop it or %s",
			port, port, s.choose)
	case errors.Is(err, syscall.EACCES):
		instead := fmt.Sprintf("use a port >= 1024 in %s (%s)", s.name, s.example)
		if s.public {
			instead = fmt.Sprintf("serve on a port >= 1024 (%s) behind a reverse proxy or load balancer", s.example)
		}
		err = fmt.Errorf("listen on %s: permission denied: port %s is privileged (below 1024) and this user may not bind it; "+
			"%s, or give frutos CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep $(command -v frutos), "+
			"or AmbientCapabilities=CAP_NET_BIND_SERVICE in its systemd unit)", addr, port, instead)
	default:
		err = fmt.Errorf("listen on %s: %w", addr, err)
	}
	if s.name != "" {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	return err
}

// frontDoorOn is a front door on a bound listener (an inherited one, in
// an update).
func frontDoorOn(ln net.Listener, r *router, log *slog.Logger) *FrontDoor {
	f := &FrontDoor{router: r, log: log, ln: ln, done: make(chan struct{})}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host, _ = pr.In.Context().Value(tagKey{}).(string)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{
			// The request's host is the worker's tag: dial its socket.
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				tag, _, _ := strings.Cut(addr, ":")
				inst := r.byTag(tag)
				if inst == nil {
					return nil, fmt.Errorf("worker %s is gone", tag)
				}
				var d net.Dialer
				return d.DialContext(ctx, "unix", inst.sock)
			},
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			log.Debug("proxy to worker failed", "err", err)
			engineError(w, http.StatusBadGateway, 1, "Session ID unknown")
		},
	}
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	f.hand.serve(f.srv)
	return f
}

// Addr is the bound address.
func (f *FrontDoor) Addr() net.Addr { return f.ln.Addr() }

// Serve answers until Close; after Close, it returns at once.
func (f *FrontDoor) Serve() {
	first := false
	f.serving.Do(func() { first = true })
	if !first {
		return
	}
	defer close(f.done)
	if err := serveErr(f.srv.Serve(f.ln)); err != nil {
		f.log.Error("front door stopped", "err", err)
	}
}

// Shutdown stops accepting, answers the requests still coming on open
// connections with "Connection: close" for a few seconds, and waits
// (until ctx ends) for the requests in flight: the end of a daemon that
// handed over, whose successor accepts on the same socket.
func (f *FrontDoor) Shutdown(ctx context.Context) {
	f.hand.leave(ctx, f.srv, f.ln)
	f.neverServed()
	<-f.done
}

// neverServed ends a front door whose Serve has not run (and now never
// will): nothing else would release its listener or close done.
func (f *FrontDoor) neverServed() {
	f.serving.Do(func() {
		_ = f.ln.Close()
		close(f.done)
	})
}

// file is a duplicate of the listening socket's descriptor, to hand over.
func (f *FrontDoor) file() (*os.File, error) { return dupListener(f.ln) }

// dupListener duplicates a listener's descriptor. Not with its File
// method: that puts the descriptor in blocking mode, and with it the
// listener (one open file), whose Accept then blocks a thread and whose
// Close never returns.
func dupListener(l net.Listener) (*os.File, error) {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil, errors.New("the listener has no descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, fmt.Errorf("dup the listener: %w", dupErr)
	}
	return os.NewFile(uintptr(fd), "listener"), nil
}

// Close stops accepting and closes idle and proxied connections; handed
// over websockets belong to the workers and are not affected.
func (f *FrontDoor) Close() {
	_ = f.srv.Close()
	f.neverServed()
	<-f.done
}

func (f *FrontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, workerproto.EnginePath):
		f.socketIO(w, r)
	case r.URL.Path == "/healthz":
		ready, total := f.router.readyCount()
		code := http.StatusOK
		if ready == 0 {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, "{\"ready_workers\":%d,\"workers\":%d}\n", ready, total)
	default:
		http.NotFound(w, r)
	}
}

func (f *FrontDoor) socketIO(w http.ResponseWriter, r *http.Request) {
	var inst *instance
	if sid := r.URL.Query().Get("sid"); sid != "" {
		if tag, ok := workerproto.TagOf(sid); ok {
			inst = f.router.byTag(tag)
		}
		if inst == nil {
			// the session's worker is gone: the client starts a new one
			engineError(w, http.StatusBadRequest, 1, "Session ID unknown")
			return
		}
	} else {
		inst = f.router.pick()
		if inst == nil {
			engineError(w, http.StatusServiceUnavailable, 4, "No worker is ready")
			return
		}
		inst.routed.Add(1)
	}
	if isWebsocketUpgrade(r) {
		f.handOff(w, r, inst)
		return
	}
	f.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tagKey{}, inst.tag)))
}

// tagKey carries the chosen worker's tag to the proxy's dialer.
type tagKey struct{}

// handOff gives the connection of a websocket upgrade to the worker.
func (f *FrontDoor) handOff(w http.ResponseWriter, r *http.Request, inst *instance) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		engineError(w, http.StatusInternalServerError, 3, "Bad request")
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close() // the worker holds its own descriptor
	head := requestHead(r)
	if n := brw.Reader.Buffered(); n > 0 {
		extra, _ := brw.Reader.Peek(n)
		head = append(head, extra...)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	if err := inst.send(sc, head); err != nil {
		f.log.Warn("websocket handoff failed", "worker", inst.id, "err", err)
		const body = `{"code":4,"message":"Worker busy, try again"}`
		_, _ = fmt.Fprintf(conn, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	}
}

// send hands a connection to the worker, dialling its handoff socket once.
func (inst *instance) send(conn syscall.Conn, head []byte) error {
	inst.senderMu.Lock()
	s := inst.sender
	if s == nil {
		var err error
		if s, err = handoff.Dial(inst.handoff); err != nil {
			inst.senderMu.Unlock()
			return err
		}
		inst.sender = s
	}
	inst.senderMu.Unlock()
	if err := s.Send(conn, head); err != nil {
		inst.closeSender() // dial again next time
		return err
	}
	return nil
}

// requestHead rebuilds the request line and headers as the client sent
// them (net/http has parsed and consumed them).
func requestHead(r *http.Request) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func isWebsocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// engineError answers as Engine.IO does, so clients react as they would
// to a worker (code 1, "Session ID unknown", makes them reconnect).
func engineError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}", code, message)
}

func portOf(addr string) string {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return p
}
