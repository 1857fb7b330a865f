package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/plural"
)

// maxRequestBody bounds control requests (a resolved config is a few KB).
const maxRequestBody = 1 << 20

// routes is the control API: HTTP+JSON on the owner-only unix socket.
func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(string(control.RoutePing), func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]any{"pid": d.Status().Daemon.PID})
	})
	mux.HandleFunc(string(control.RouteStatus), func(w http.ResponseWriter, r *http.Request) {
		reply(w, d.Status())
	})
	mux.HandleFunc(string(control.RouteRedis), func(w http.ResponseWriter, r *http.Request) {
		a := d.currentApp()
		if a == nil {
			failErr(w, notFoundf("no app started: its Redis is not known"))
			return
		}
		d.mu.Lock()
		u := control.RedisURL{URL: a.cfg.Redis.URL, Embedded: a.rstat.Embedded}
		d.mu.Unlock()
		reply(w, u)
	})
	mux.HandleFunc(string(control.RouteToken), func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			failErr(w, badRequestf("read request: %v", err))
			return
		}
		var req control.TokenRequest
		if err := decode(body, &req); err != nil {
			failErr(w, err)
			return
		}
		tok, err := d.Token(req)
		if err != nil {
			failErr(w, err)
			return
		}
		reply(w, tok)
	})
	mux.HandleFunc(string(control.RouteStart), d.op(func(ctx context.Context, body []byte) (string, error) {
		var req control.StartRequest
		if err := decode(body, &req); err != nil {
			return "", err
		}
		cfg, err := configFrom(req.Config)
		if err != nil {
			return "", err
		}
		if msg, resumed, err := d.resumeStopped(ctx); resumed || err != nil {
			return msg, err
		}
		if err := d.StartApp(ctx, cfg, req.Load); err != nil {
			return "", err
		}
		return "started " + plural.Count(cfg.Instances.Count(), "worker", "workers"), nil
	}))
	mux.HandleFunc(string(control.RouteStartCheck), func(w http.ResponseWriter, r *http.Request) {
		plan, err := d.checkStartRequest(w, r)
		if err != nil {
			failErr(w, err)
			return
		}
		reply(w, plan)
	})
	mux.HandleFunc(string(control.RouteStop), d.targetOp(d.sup.Stop))
	mux.HandleFunc(string(control.RouteRestart), d.targetOp(d.sup.Restart))
	mux.HandleFunc(string(control.RouteReload), d.op(func(ctx context.Context, body []byte) (string, error) {
		var req control.ReloadRequest
		if err := decode(body, &req); err != nil {
			return "", err
		}
		var cfg *configs.Config
		if len(req.Config) > 0 {
			var err error
			if cfg, err = configFrom(req.Config); err != nil {
				return "", err
			}
		}
		return d.Reload(ctx, cfg, req.Load)
	}))
	mux.HandleFunc(string(control.RouteScale), d.op(func(ctx context.Context, body []byte) (string, error) {
		var req control.ScaleRequest
		if err := decode(body, &req); err != nil {
			return "", err
		}
		if d.currentApp() == nil {
			return "", notFoundf("nothing to scale: start the app with `frutos start`")
		}
		return d.sup.Scale(ctx, req)
	}))
	mux.HandleFunc(string(control.RouteDelete), d.op(func(ctx context.Context, _ []byte) (string, error) {
		return d.Delete(ctx)
	}))
	mux.HandleFunc(string(control.RouteFlush), func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			failErr(w, badRequestf("read request: %v", err))
			return
		}
		var t control.Target
		if err := decode(body, &t); err != nil {
			failErr(w, err)
			return
		}
		files, err := d.Flush(t)
		if err != nil {
			failErr(w, err)
			return
		}
		reply(w, control.Result{Message: fmt.Sprintf("emptied %d log files", len(files)), Files: files, Status: d.Status()})
	})
	mux.HandleFunc(string(control.RouteSave), d.op(func(ctx context.Context, _ []byte) (string, error) {
		return d.Save()
	}))
	mux.HandleFunc(string(control.RouteKill), d.op(func(ctx context.Context, _ []byte) (string, error) {
		n := d.sup.Count()
		d.shutdownApp()
		d.Kill()
		return "stopped " + plural.Count(n, "worker", "workers") + "; the daemon exits", nil
	}))
	mux.HandleFunc(string(control.RouteUpdate), func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody)); err != nil {
			failErr(w, badRequestf("read request: %v", err))
			return
		}
		// as every operation: to its end even if the client goes away
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), updateTimeout+time.Minute)
		defer cancel()
		res, err := d.Update(ctx)
		if err != nil {
			failErr(w, err)
			return
		}
		reply(w, res)
	})
	return recoverer(d, jsonMisses(mux))
}

// jsonMisses answers the requests the mux has no route for (it would answer
// 404 or 405 in plain text, or redirect an unclean path) with a
// control.Error, as every other answer of the API.
func jsonMisses(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Clean(r.URL.Path) != r.URL.Path {
			fail(w, http.StatusNotFound, &control.Error{Code: control.CodeNotFound,
				Message: fmt.Sprintf("no control request at %q", r.URL.Path)})
			return
		}
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		var allowed []string
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			other := r.Clone(r.Context())
			other.Method = m
			if _, pattern := mux.Handler(other); pattern != "" {
				allowed = append(allowed, m)
			}
		}
		if len(allowed) == 0 {
			fail(w, http.StatusNotFound, &control.Error{Code: control.CodeNotFound,
				Message: fmt.Sprintf("no control request at %q", r.URL.Path)})
			return
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		fail(w, http.StatusMethodNotAllowed, &control.Error{Code: control.CodeBadRequest,
			Message: fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))})
	})
}

// op wraps an operation: bounded body, JSON answer with the status after.
func (d *Daemon) op(fn func(ctx context.Context, body []byte) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(w, http.StatusRequestEntityTooLarge, &control.Error{Code: control.CodeBadRequest,
					Message: fmt.Sprintf("request larger than %d bytes", maxRequestBody)})
				return
			}
			failErr(w, badRequestf("read request: %v", err))
			return
		}
		// An operation runs to its end even if the client goes away
		// (Ctrl-C on frutos reload must not leave a reload half done).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Minute)
		defer cancel()
		msg, err := fn(ctx, body)
		if err != nil {
			failErr(w, err)
			return
		}
		reply(w, control.Result{Message: msg, Status: d.Status()})
	}
}

func (d *Daemon) targetOp(fn func(context.Context, control.Target) (string, error)) http.HandlerFunc {
	return d.op(func(ctx context.Context, body []byte) (string, error) {
		var t control.Target
		if err := decode(body, &t); err != nil {
			return "", err
		}
		return fn(ctx, t)
	})
}

// decode reads a JSON request strictly: one object, known fields only.
func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return badRequestf("empty request body; expected a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequestf("bad request: %v", err)
	}
	if dec.More() {
		return badRequestf("bad request: more than one JSON value")
	}
	return nil
}

// configFrom validates a resolved configuration sent by the CLI.
// checkStartRequest reads a StartRequest and answers what the start would
// do (RouteStartCheck).
func (d *Daemon) checkStartRequest(w http.ResponseWriter, r *http.Request) (control.StartPlan, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		return control.StartPlan{}, badRequestf("read request: %v", err)
	}
	var req control.StartRequest
	if err := decode(body, &req); err != nil {
		return control.StartPlan{}, err
	}
	cfg, err := configFrom(req.Config)
	if err != nil {
		return control.StartPlan{}, err
	}
	return d.CheckStart(cfg)
}

func configFrom(raw json.RawMessage) (*configs.Config, error) {
	if len(raw) == 0 {
		return nil, badRequestf("no configuration in the request")
	}
	cfg, err := configs.FromChildEnv(func(k string) string {
		if k == configs.ChildConfigEnv {
			return string(raw)
		}
		return ""
	})
	if err != nil {
		return nil, badRequestf("configuration: %v", err)
	}
	return cfg, nil
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func failErr(w http.ResponseWriter, err error) {
	var ce *control.Error
	if !errors.As(err, &ce) {
		ce = &control.Error{Code: control.CodeFailed, Message: err.Error()}
	}
	status := map[string]int{
		control.CodeBadRequest: http.StatusBadRequest, control.CodeNotFound: http.StatusNotFound,
		control.CodeConflict: http.StatusConflict, control.CodeRedisUnavailable: http.StatusServiceUnavailable,
	}[ce.Code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	fail(w, status, ce)
}

func fail(w http.ResponseWriter, status int, e *control.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// recoverer keeps the daemon alive through a bug in one request.
func recoverer(d *Daemon, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				d.log.Error("control request panicked", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				fail(w, http.StatusInternalServerError, &control.Error{Code: control.CodeFailed, Message: "internal error (logged by the daemon)"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}
