package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/testutil/controltest"
)

// fakeDaemon serves the control socket of a temporary home with handler,
// and records the requests.
type fakeDaemon struct {
	home string
	mu   sync.Mutex
	got  []request
}

type request struct {
	route string // "POST /v1/stop"
	body  string
}

func (f *fakeDaemon) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

func serveFake(t *testing.T, handler http.HandlerFunc) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{}
	f.home = controltest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, request{route: r.Method + " " + r.URL.Path, body: string(b)})
		f.mu.Unlock()
		handler(w, r)
	}))
	return f
}

// Every typed method sends its route and request, and reads the answer.
func TestClientSendsEachOperationToItsRoute(t *testing.T) {
	f := serveFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == control.RouteStatus.Path() || r.URL.Path == control.RoutePing.Path() {
			_ = json.NewEncoder(w).Encode(control.Status{App: "frutos"})
			return
		}
		_ = json.NewEncoder(w).Encode(control.Result{Message: "did " + r.URL.Path, Files: []string{"a.log"},
			Status: control.Status{App: "frutos"}})
	})
	c := control.NewClient(f.home)
	ctx := context.Background()
	raw := json.RawMessage(`{"app":"frutos"}`)
	load := control.LoadOptions{File: "/etc/frutos.yaml", Env: "production"}
	for _, tc := range []struct {
		route control.Route
		body  string
		call  func() (control.Result, error)
	}{
		{control.RouteStart, `{"config":{"app":"frutos"},"load":{"file":"/etc/frutos.yaml","env":"production"}}`,
			func() (control.Result, error) { return c.Start(ctx, control.StartRequest{Config: raw, Load: load}) }},
		{control.RouteStop, `{"all":true,"id":0}`, func() (control.Result, error) { return c.Stop(ctx, control.Target{All: true}) }},
		{control.RouteRestart, `{"id":2}`, func() (control.Result, error) { return c.Restart(ctx, control.Target{ID: 2}) }},
		{control.RouteReload, `{"config":{"app":"frutos"},"load":{"file":"/etc/frutos.yaml","env":"production"}}`,
			func() (control.Result, error) { return c.Reload(ctx, control.ReloadRequest{Config: raw, Load: &load}) }},
		{control.RouteReload, `{}`, func() (control.Result, error) { return c.Reload(ctx, control.ReloadRequest{}) }},
		{control.RouteScale, `{"mode":"sub","n":1}`, func() (control.Result, error) {
			return c.Scale(ctx, control.ScaleRequest{Mode: "sub", N: 1})
		}},
		{control.RouteDelete, `{}`, func() (control.Result, error) { return c.Delete(ctx) }},
		{control.RouteFlush, `{"id":3}`, func() (control.Result, error) { return c.Flush(ctx, control.Target{ID: 3}) }},
		{control.RouteSave, `{}`, func() (control.Result, error) { return c.Save(ctx) }},
		{control.RouteKill, `{}`, func() (control.Result, error) { return c.Kill(ctx) }},
	} {
		before := len(f.requests())
		res, err := tc.call()
		if err != nil {
			t.Fatalf("%s: %v", tc.route, err)
		}
		got := f.requests()[before:]
		if len(got) != 1 || got[0].route != string(tc.route) || strings.TrimSpace(got[0].body) != tc.body {
			t.Errorf("%s sent %+v, want body %s", tc.route, got, tc.body)
		}
		if res.Message != "did "+tc.route.Path() || res.Status.App != "frutos" || len(res.Files) != 1 {
			t.Errorf("%s: result %+v", tc.route, res)
		}
	}

	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.App != "frutos" {
		t.Fatalf("status %+v, %v", st, err)
	}
	last := f.requests()[len(f.requests())-2:]
	if last[0] != (request{route: string(control.RoutePing)}) || last[1] != (request{route: string(control.RouteStatus)}) {
		t.Fatalf("ping and status sent %+v", last)
	}
}

// A refusal is an *Error with the daemon's code; an answer that is not one
// is an *Error too (code failed), never a decoding error.
func TestClientErrorsAreControlErrors(t *testing.T) {
	f := serveFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case control.RouteStop.Path():
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(control.Error{Code: control.CodeNotFound, Message: "no worker 9 (workers: [0 1])"})
		case control.RouteStart.Path():
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(control.Error{Code: control.CodeRedisUnavailable, Message: "Redis unreachable"})
		default:
			http.Error(w, "plain text", http.StatusBadGateway)
		}
	})
	c := control.NewClient(f.home)
	for _, tc := range []struct {
		call        func() error
		code, reads string
	}{
		{func() error { _, err := c.Stop(context.Background(), control.Target{ID: 9}); return err }, control.CodeNotFound, "no worker 9"},
		{func() error { _, err := c.Start(context.Background(), control.StartRequest{}); return err }, control.CodeRedisUnavailable, "Redis unreachable"},
		{func() error { _, err := c.Save(context.Background()); return err }, control.CodeFailed, "daemon answered HTTP 502"},
	} {
		err := tc.call()
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(err.Error(), tc.reads) {
			t.Errorf("got %v (%T), want a control.Error %s saying %q", err, err, tc.code, tc.reads)
		}
	}
}

// No daemon: no socket, or a socket nobody listens on (a crashed daemon's).
func TestClientSaysTheDaemonIsNotRunning(t *testing.T) {
	home := t.TempDir()
	if err := control.NewClient(home).Ping(context.Background()); !errors.Is(err, control.ErrNotRunning) {
		t.Fatalf("no socket: %v", err)
	}
	dir, err := os.MkdirTemp("", "ct")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("unix", filepath.Join(dir, control.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	_, err = control.NewClient(dir).Status(context.Background())
	if !errors.Is(err, control.ErrNotRunning) {
		t.Fatalf("stale socket: %v", err)
	}
}

// A daemon that does not answer in time: the error names the request.
func TestClientTimeoutNamesTheRequest(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := serveFake(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := control.NewClient(f.home).Reload(ctx, control.ReloadRequest{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "POST /v1/reload") {
		t.Fatalf("got %v; want a timeout naming POST /v1/reload", err)
	}
}

func TestRoutes(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range control.Routes() {
		if m := r.Method(); m != http.MethodGet && m != http.MethodPost {
			t.Errorf("%s: method %q", r, m)
		}
		if p := r.Path(); !strings.HasPrefix(p, "/v1/") || seen[p] {
			t.Errorf("%s: path %q", r, p)
		}
		seen[r.Path()] = true
	}
	if control.RouteStop.Method() != "POST" || control.RouteStop.Path() != "/v1/stop" {
		t.Fatalf("RouteStop = %s %s", control.RouteStop.Method(), control.RouteStop.Path())
	}
}

// CheckStart reads the plan; a refusal stays an *Error; a daemon that has
// no such route (older: a JSON not_found, or older still a plain 404) is
// ErrUnknownRoute, so that the CLI can fall back to starting directly.
func TestClientCheckStart(t *testing.T) {
	var answer func(w http.ResponseWriter)
	f := serveFake(t, func(w http.ResponseWriter, r *http.Request) { answer(w) })
	c := control.NewClient(f.home)
	req := control.StartRequest{Config: json.RawMessage(`{"app":"frutos"}`)}

	answer = func(w http.ResponseWriter) { _ = json.NewEncoder(w).Encode(control.StartPlan{Resume: []int{1, 3}}) }
	plan, err := c.CheckStart(context.Background(), req)
	if err != nil || len(plan.Resume) != 2 || plan.Resume[1] != 3 {
		t.Fatalf("plan %+v, %v", plan, err)
	}
	if got := f.requests(); got[len(got)-1].route != string(control.RouteStartCheck) {
		t.Errorf("sent to %s", got[len(got)-1].route)
	}

	answer = func(w http.ResponseWriter) {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(control.Error{Code: control.CodeConflict, Message: "already running 2 workers"})
	}
	var ce *control.Error
	if _, err := c.CheckStart(context.Background(), req); !errors.As(err, &ce) || ce.Code != control.CodeConflict || errors.Is(err, control.ErrUnknownRoute) {
		t.Errorf("a refusal: %v", err)
	}

	for name, older := range map[string]func(w http.ResponseWriter){
		"json not_found": func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(control.Error{Code: control.CodeNotFound, Message: `no control request at "/v1/start/check"`})
		},
		"plain 404": func(w http.ResponseWriter) { http.NotFound(w, nil) },
	} {
		answer = older
		if _, err := c.CheckStart(context.Background(), req); !errors.Is(err, control.ErrUnknownRoute) {
			t.Errorf("%s: %v, want ErrUnknownRoute", name, err)
		}
	}
}
