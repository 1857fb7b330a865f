package daemon

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/redisctl"
)

// The HTTP emit endpoint (POST /v1/emit, redisctl.EmitAPI) is served by
// the daemon, on its own listener (emit.listen), and only with a key:
//   - one per host, up while workers restart or reload (an emit is
//     Redis's business, not a worker's);
//   - off the public port, which faces browsers, and off the control
//     socket, which is the operator's: backends reach it on a private
//     address, with a bearer key of their own.

// emitServer is the running endpoint.
type emitServer struct {
	srv  *http.Server
	l    net.Listener
	addr net.Addr
	done chan struct{}
	hand handover
}

// startEmitAPI serves on cfg.Emit.Listen, if set: on inherited (the
// listener an updated daemon handed over) when given, else on a new one.
// inherited is closed when the endpoint is off or cannot start.
func startEmitAPI(cfg *configs.Config, client redis.UniversalClient, log *slog.Logger, inherited net.Listener) (*emitServer, error) {
	if cfg.Emit.Listen == "" {
		if inherited != nil {
			inherited.Close()
		}
		return nil, nil
	}
	log = log.With("component", "emit-api")
	api, err := redisctl.NewEmitAPI(client, cfg, log)
	if err != nil {
		if inherited != nil {
			inherited.Close()
		}
		return nil, err
	}
	l := inherited
	if l == nil {
		if l, err = net.Listen("tcp", cfg.Emit.Listen); err != nil {
			return nil, listenError(emitListen, cfg.Emit.Listen, err)
		}
	}
	s := &emitServer{l: l, addr: l.Addr(), done: make(chan struct{}),
		srv: &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	s.hand.serve(s.srv)
	go func() {
		defer close(s.done)
		if err := serveErr(s.srv.Serve(l)); err != nil {
			log.Error("the emit endpoint stopped", "err", err)
		}
	}()
	log.Info("emit endpoint listening", "address", l.Addr().String(), "adapter", cfg.Redis.Adapter)
	return s, nil
}

// file duplicates the listener's descriptor, for the daemon an update
// starts (nil when the endpoint is off).
func (s *emitServer) file() (*os.File, error) {
	if s == nil {
		return nil, nil
	}
	return dupListener(s.l)
}

// close stops the endpoint, letting requests in flight finish (briefly).
func (s *emitServer) close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
}

// leave is close for a daemon that handed the endpoint over (handover).
func (s *emitServer) leave(ctx context.Context) {
	if s == nil {
		return
	}
	s.hand.leave(ctx, s.srv, s.l)
	<-s.done
}
