package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/control"
)

// FuzzControlAPI sends arbitrary requests (method, path, body) to the
// control API's handler of a real daemon on a temporary home, with no app
// running. Properties: the handler never panics (its recoverer would answer
// 500) and always answers: a 2xx with a JSON object, or a JSON
// control.Error with a known code; garbage gets a 4xx, never a 5xx.
//
// A start request whose configuration is valid is pointed at a closed
// loopback Redis port and the loopback host first, so no input starts
// Redis or opens a public port: it ends as a 503 (redis_unavailable).
//
//	go test -run '^$' -fuzz '^FuzzControlAPI$' -fuzztime 60s -parallel 1 ./daemon/
func FuzzControlAPI(f *testing.F) {
	cfg := configs.Default()
	cfg.Host, cfg.Port, cfg.Auth.Secret = "127.0.0.1", 3000, "fuzz-secret"
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		f.Fatal(err)
	}
	start, _ := json.Marshal(control.StartRequest{Config: rawCfg, Load: control.LoadOptions{File: "frutos.yaml", Instances: "2"}})
	reload, _ := json.Marshal(control.ReloadRequest{Config: rawCfg})
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/v1/ping", ""},
		{"GET", "/v1/status", ""},
		{"POST", "/v1/start", string(start)},
		{"POST", "/v1/start", `{"config":{"port":70000},"load":{}}`},
		{"POST", "/v1/start", `{"config":null}`},
		{"POST", "/v1/reload", string(reload)},
		{"POST", "/v1/reload", `{}`},
		{"POST", "/v1/stop", `{"all":true}`},
		{"POST", "/v1/stop", `{"id":3}`},
		{"POST", "/v1/restart", `{"id":-1}`},
		{"POST", "/v1/scale", `{"mode":"add","n":2}`},
		{"POST", "/v1/scale", `{"mode":"set","n":1e99}`},
		{"POST", "/v1/delete", `{}`},
		{"POST", "/v1/flush", `{"all":true}`},
		{"POST", "/v1/flush", `{"id":"1"}`},
		{"POST", "/v1/save", `{}`},
		{"POST", "/v1/stop", `{"all":true,"extra":1}`},
		{"POST", "/v1/stop", `{"all":true}{"all":false}`},
		{"POST", "/v1/stop", ""},
		{"POST", "/v1/stop", "[1,2]"},
		{"GET", "/v1/stop", ""},
		{"POST", "/v1/ping", ""},
		{"DELETE", "/v1/nothing", ""},
		{"GET", "/", ""},
		{"GET", "/v1//status", ""},
		{"PUT", "/v1/start", "{"},
	} {
		f.Add(s.method, s.path, []byte(s.body))
	}

	d, err := New(Options{Home: f.TempDir(), Version: "fuzz",
		Executable: func() (string, error) { return "", errors.New("fuzzing starts no worker") }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		d.shutdownApp()
		d.lock.release()
	})
	h := d.routes()
	f.Fuzz(func(t *testing.T, method, path string, body []byte) {
		req, err := http.NewRequest(method, "http://daemon"+path, bytes.NewReader(defuse(path, body)))
		if err != nil || req.URL.Host != "daemon" {
			return // no HTTP client can send it
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		checkAnswer(t, req, w)
	})
}

// defuse makes a start request with a valid configuration harmless: Redis
// on a closed loopback port, the public port on loopback.
func defuse(path string, body []byte) []byte {
	if !strings.HasPrefix(path, "/v1/start") {
		return body
	}
	var req control.StartRequest
	if decode(body, &req) != nil {
		return body
	}
	cfg, err := configFrom(req.Config)
	if err != nil {
		return body
	}
	cfg.Redis.URL, cfg.Host = "redis://127.0.0.1:1", "127.0.0.1"
	req.Config, _ = json.Marshal(cfg)
	out, _ := json.Marshal(req)
	return out
}

func checkAnswer(t *testing.T, req *http.Request, w *httptest.ResponseRecorder) {
	t.Helper()
	what := req.Method + " " + req.URL.String()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: answered %d with Content-Type %q: %q", what, w.Code, ct, w.Body)
	}
	if w.Code >= 200 && w.Code < 300 {
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("%s: answered %d with %q, not a JSON object", what, w.Code, w.Body)
		}
		return
	}
	var e control.Error
	dec := json.NewDecoder(w.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil || e.Message == "" {
		t.Fatalf("%s: answered %d with %q, not a control.Error", what, w.Code, w.Body)
	}
	want := map[string]int{control.CodeBadRequest: 400, control.CodeNotFound: 404, control.CodeConflict: 409,
		control.CodeRedisUnavailable: 503}[e.Code]
	if e.Code == control.CodeBadRequest && (w.Code == http.StatusRequestEntityTooLarge || w.Code == http.StatusMethodNotAllowed) {
		want = w.Code
	}
	if w.Code != want {
		t.Fatalf("%s: answered %d with code %q: %s", what, w.Code, e.Code, e.Message)
	}
}

// controlAPI is the control API's handler of a daemon with no app.
func controlAPI(t *testing.T) http.Handler {
	t.Helper()
	d, err := New(Options{Home: t.TempDir(), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.lock.release)
	return d.routes()
}

// Found by FuzzControlAPI: a request with no route got the mux's plain-text
// 404 or 405, or a redirect for an unclean path; clients expect a
// control.Error in every answer.
func TestControlAPIMissesAnswerJSON(t *testing.T) {
	h := controlAPI(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"GET", "/v1/nothing", 404, control.CodeNotFound, ""},
		{"POST", "/v1/ping", 405, control.CodeBadRequest, "GET"},
		{"GET", "/v1/stop", 405, control.CodeBadRequest, "POST"},
		{"GET", "/v1//status", 404, control.CodeNotFound, ""},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		var e control.Error
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != tc.status || e.Code != tc.code ||
			w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q (Allow %q); want %d %s", tc.method, tc.path, w.Code, w.Body, w.Header().Get("Allow"), tc.status, tc.code)
		}
	}
}

// The daemon serves every route of the control API at the method and path
// its clients use (with no app, most answer an error, but never that the
// request does not exist).
func TestEveryControlRouteIsServed(t *testing.T) {
	h := controlAPI(t)
	for _, r := range control.Routes() {
		var body io.Reader
		if r.Method() == http.MethodPost {
			body = strings.NewReader("{}")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(r.Method(), r.Path(), body))
		var e control.Error
		_ = json.Unmarshal(w.Body.Bytes(), &e)
		if w.Code == http.StatusMethodNotAllowed || strings.HasPrefix(e.Message, "no control request") {
			t.Errorf("%s: %d %s", r, w.Code, w.Body)
		}
	}
}
