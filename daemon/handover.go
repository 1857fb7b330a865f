package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// handoverGrace is how long a daemon that handed its listeners over keeps
// the connections it accepted, answering each request with "Connection:
// close" so its client opens the next one to the new daemon.
const handoverGrace = 3 * time.Second

// handover lets an HTTP server give its listening socket to another
// process without failing a request. Closing a keep-alive connection
// races with a client that picks it for its next request at that moment
// (and a POST is not retried: the client sees EOF), which is what
// http.Server.Shutdown does to idle connections at once. So the server
// first stops accepting (the other process accepts on the same socket),
// then answers each request on its open connections with "Connection:
// close" until none is left or handoverGrace has passed, and only then
// shuts down.
type handover struct {
	closing atomic.Bool
	conns   atomic.Int64
}

// serve wires h into srv; call it before srv serves.
func (h *handover) serve(srv *http.Server) {
	next := srv.Handler
	srv.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			h.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			h.conns.Add(-1)
		}
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.closing.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// serveErr is srv.Serve's error, nil for the ends handover and Shutdown
// cause.
func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// leave stops accepting on ln, lets the connections of srv close after
// their next answer (up to handoverGrace), then shuts srv down within ctx.
func (h *handover) leave(ctx context.Context, srv *http.Server, ln net.Listener) {
	h.closing.Store(true)
	_ = ln.Close() // the successor accepts on its own copy of the socket
	grace := time.NewTimer(handoverGrace)
	defer grace.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
wait:
	for h.conns.Load() > 0 {
		select {
		case <-grace.C:
			break wait
		case <-ctx.Done():
			break wait
		case <-tick.C:
		}
	}
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}
