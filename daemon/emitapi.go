package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
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
	addr net.Addr
	done chan struct{}
}

// startEmitAPI listens on cfg.Emit.Listen, if set.
func startEmitAPI(cfg *configs.Config, client redis.UniversalClient, log *slog.Logger) (*emitServer, error) {
	if cfg.Emit.Listen == "" {
		return nil, nil
	}
	log = log.With("component", "emit-api")
	api, err := redisctl.NewEmitAPI(client, cfg, log)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", cfg.Emit.Listen)
	if err != nil {
		return nil, fmt.Errorf("emit.listen: %w", err)
	}
	s := &emitServer{addr: l.Addr(), done: make(chan struct{}),
		srv: &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("the emit endpoint stopped", "err", err)
		}
	}()
	log.Info("emit endpoint listening", "address", l.Addr().String(), "adapter", cfg.Redis.Adapter)
	return s, nil
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
