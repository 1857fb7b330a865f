package cluster

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
)

// releasingWriter wraps the ResponseWriter of a websocket upgrade and
// forgets it once the connection is hijacked. The engine keeps the writer
// of the upgrade request for the life of the connection; through it,
// net/http's per-connection state (a 4 KB bufio.Reader, a 4 KB
// bufio.Writer, the parsed request) would stay reachable, about 10 KB per
// websocket for nothing (shared/notes/go-ws-memory-floor.md).
type releasingWriter struct {
	rw atomic.Pointer[http.ResponseWriter]
}

func newReleasingWriter(rw http.ResponseWriter) *releasingWriter {
	w := &releasingWriter{}
	w.rw.Store(&rw)
	return w
}

var errHijacked = errors.New("connection hijacked")

func (w *releasingWriter) Header() http.Header {
	if rw := w.rw.Load(); rw != nil {
		return (*rw).Header()
	}
	return http.Header{}
}

func (w *releasingWriter) Write(b []byte) (int, error) {
	if rw := w.rw.Load(); rw != nil {
		return (*rw).Write(b)
	}
	return 0, errHijacked
}

func (w *releasingWriter) WriteHeader(code int) {
	if rw := w.rw.Load(); rw != nil {
		(*rw).WriteHeader(code)
	}
}

func (w *releasingWriter) Flush() {
	if rw := w.rw.Load(); rw != nil {
		if f, ok := (*rw).(http.Flusher); ok {
			f.Flush()
		}
	}
}

func (w *releasingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	rw := w.rw.Load()
	if rw == nil {
		return nil, nil, errHijacked
	}
	hj, ok := (*rw).(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot hijack")
	}
	c, brw, err := hj.Hijack()
	if err == nil {
		w.rw.Store(nil)
	}
	return c, brw, err
}
