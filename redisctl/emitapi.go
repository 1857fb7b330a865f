package redisctl

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/configs"
)

// EmitPath is the HTTP emit endpoint's path.
const EmitPath = "/v1/emit"

// EmitRequest is the body of POST /v1/emit: the targets of `frutos emit`.
//
//	{"target": "user",   "id": "42",            "event": "evidencia_aprobada", "data": {...}}
//	{"target": "mentor", "id": "7",             "event": "nueva_evidencia",    "data": {...}}
//	{"target": "room",   "id": "curso:algebra", "event": "nueva_tarea",        "data": {...}}
//	{"target": "all",                           "event": "sistema_mantenimiento"}
//
// data is the event's one argument (absent: none); namespace is "/" when
// empty.
type EmitRequest struct {
	Target    string          `json:"target"`
	ID        string          `json:"id,omitempty"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data,omitempty"`
	Namespace string          `json:"namespace,omitempty"`
}

// EmitResponse is the answer to an accepted emit.
type EmitResponse struct {
	OK        bool     `json:"ok"`
	Adapter   string   `json:"adapter"` // pubsub or streams
	Namespace string   `json:"namespace"`
	Rooms     []string `json:"rooms"` // [] for all
	Event     string   `json:"event"`
	// Receivers: pubsub, the servers PUBLISH reached (not counted across
	// a Redis Cluster's nodes with the classic protocol); streams, the
	// servers reading the namespace.
	Receivers int64 `json:"receivers"`
	// Entry is the stream entry id (streams): the clients' offset.
	Entry string `json:"entry,omitempty"`
}

// EmitError is the body of every refusal.
type EmitError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// EmitAPI serves POST /v1/emit: an emit through Redis, for backends that
// speak neither Redis protocol, authenticated by a bearer key. It is never
// open: New refuses an empty key.
type EmitAPI struct {
	client     redis.UniversalClient
	cfg        configs.Redis
	keyHash    [32]byte
	maxPayload int64
	timeout    time.Duration
	log        *slog.Logger
}

// NewEmitAPI returns the endpoint for the workers of cfg, on client.
func NewEmitAPI(client redis.UniversalClient, cfg *configs.Config, log *slog.Logger) (*EmitAPI, error) {
	if len(cfg.Emit.Key) < configs.MinEmitKey {
		return nil, fmt.Errorf("the emit endpoint needs a key of %d characters or more in %s", configs.MinEmitKey, cfg.Emit.KeyEnv)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EmitAPI{client: client, cfg: cfg.Redis, keyHash: sha256.Sum256([]byte(cfg.Emit.Key)),
		maxPayload: int64(cfg.Limits.MaxPayload), timeout: cfg.Redis.RequestTimeout.Duration(), log: log}, nil
}

func (h *EmitAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != EmitPath {
		emitFail(w, http.StatusNotFound, "not_found", "no such endpoint; POST "+EmitPath)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		emitFail(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST "+EmitPath)
		return
	}
	if !h.authorized(r) {
		h.log.Warn("emit refused: missing or wrong bearer key", "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="frutos-emit"`)
		emitFail(w, http.StatusUnauthorized, "unauthorized", "missing or wrong key; send Authorization: Bearer <the key in emit.key_env>")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		emitFail(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)")
		return
	}
	// the payload plus room for the envelope
	body, err := io.ReadAll(io.LimitReader(r.Body, h.maxPayload+4096+1))
	if err != nil {
		emitFail(w, http.StatusBadRequest, "bad_request", "read the body: "+err.Error())
		return
	}
	if int64(len(body)) > h.maxPayload+4096 {
		emitFail(w, http.StatusRequestEntityTooLarge, "payload_too_large",
			fmt.Sprintf("the body is larger than limits.max_payload (%s); send a reference (an id or a URL) instead of the data", configs.ByteSize(h.maxPayload)))
		return
	}
	req, args, err := h.parse(body)
	if err != nil {
		var tooLarge payloadTooLarge
		if errors.As(err, &tooLarge) {
			emitFail(w, http.StatusRequestEntityTooLarge, "payload_too_large", err.Error())
			return
		}
		emitFail(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	resp, err := h.emit(r.Context(), req, args)
	if err != nil {
		h.log.Warn("emit failed: redis refused it", "err", err)
		emitFail(w, http.StatusServiceUnavailable, "redis_unavailable", "Redis did not take the event (nothing was sent): "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// authorized compares the bearer key in constant time (hashes, so the
// length does not leak either).
func (h *EmitAPI) authorized(r *http.Request) bool {
	scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(key)))
	return subtle.ConstantTimeCompare(sum[:], h.keyHash[:]) == 1
}

type payloadTooLarge struct{ error }

// parse checks a request as `frutos emit` checks its arguments.
func (h *EmitAPI) parse(body []byte) (EmitRequest, []any, error) {
	var req EmitRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, nil, fmt.Errorf("the body is not an emit request: %v; send {\"target\": \"user\", \"id\": \"42\", \"event\": \"...\", \"data\": {...}}", err)
	}
	if dec.More() {
		return req, nil, errors.New("the body holds more than one JSON value")
	}
	switch req.Target {
	case "user", "mentor", "room":
		if strings.TrimSpace(req.ID) == "" {
			return req, nil, fmt.Errorf("target %s needs an id (the %s)", req.Target, map[string]string{"user": "user id", "mentor": "mentor id", "room": "room name"}[req.Target])
		}
	case "all":
		if req.ID != "" {
			return req, nil, errors.New("target all takes no id")
		}
	case "":
		return req, nil, errors.New("target is missing; use user, mentor, room or all")
	default:
		return req, nil, fmt.Errorf("unknown target %q; use user, mentor, room or all", req.Target)
	}
	switch {
	case strings.TrimSpace(req.Event) == "":
		return req, nil, errors.New("the event name is empty")
	case redisadapter.IsReservedEvent(req.Event):
		return req, nil, fmt.Errorf("%q is a reserved Socket.IO event name (connect, connect_error, disconnect, disconnecting, newListener, removeListener); pick another", req.Event)
	}
	if req.Namespace == "" {
		req.Namespace = "/"
	}
	if len(req.Data) == 0 {
		return req, nil, nil
	}
	if int64(len(req.Data)) > h.maxPayload {
		return req, nil, payloadTooLarge{fmt.Errorf("data is larger than limits.max_payload (%s); send a reference (an id or a URL) instead", configs.ByteSize(h.maxPayload))}
	}
	d := json.NewDecoder(bytes.NewReader(req.Data))
	d.UseNumber() // integers travel as integers, as from Node
	var v any
	if err := d.Decode(&v); err != nil {
		return req, nil, fmt.Errorf("data: %v", err)
	}
	if err := CheckNumbers(v); err != nil {
		return req, nil, fmt.Errorf("data: %w", err)
	}
	return req, []any{v}, nil
}

// CheckNumbers refuses a number too large for a double in a decoded JSON
// value (json.Number): JavaScript would read it as Infinity, which JSON
// cannot carry on to the clients, and the message encoder cannot write it.
func CheckNumbers(v any) error {
	switch x := v.(type) {
	case json.Number:
		if _, err := x.Int64(); err == nil {
			return nil
		}
		if _, err := x.Float64(); err != nil {
			return fmt.Errorf("the number %s is out of range (the largest is about 1.8e308)", x)
		}
	case []any:
		for _, e := range x {
			if err := CheckNumbers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range x {
			if err := CheckNumbers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *EmitAPI) emit(ctx context.Context, req EmitRequest, args []any) (EmitResponse, error) {
	em := NewEmitter(h.client, h.cfg).Of(req.Namespace)
	resp := EmitResponse{OK: true, Adapter: configs.AdapterPubSub, Namespace: em.Namespace(), Rooms: []string{}, Event: req.Event}
	switch req.Target {
	case "user":
		resp.Rooms = []string{rooms.User(req.ID)}
	case "mentor":
		resp.Rooms = []string{rooms.Mentor(req.ID)}
	case "room":
		resp.Rooms = []string{req.ID}
	}
	em = em.To(resp.Rooms...)
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if Streams(h.cfg) {
		resp.Adapter = configs.AdapterStreams
	}
	var err error
	resp.Receivers, resp.Entry, err = Emit(ctx, em, h.cfg, req.Event, args...)
	return resp, err
}

func emitFail(w http.ResponseWriter, status int, code, msg string) {
	var e EmitError
	e.Error.Code, e.Error.Message = code, msg
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}
