package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
)

// FuzzEmitPayload runs `frutos emit`'s argument and payload checks on
// arbitrary input (target kind, id, event, namespace, JSON payload given as
// the argument, --data or stdin) and encodes what they accept exactly as
// runEmit publishes it. Properties: no panic; a refusal is a usage error
// (exit 2); an accepted payload fits limits.max_payload and its message
// decodes (with an independent msgpack decoder) to the same namespace,
// room, event and argument.
//
//	go test -run '^$' -fuzz '^FuzzEmitPayload$' -fuzztime 60s -parallel 1 ./cmd/frutos/
func FuzzEmitPayload(f *testing.F) {
	for _, s := range []struct {
		kind, id, event, ns, payload string
		from                         uint8
	}{
		{"user", "42", "evidencia_aprobada", "/", `{"evidenciaId": 7, "nota": 9.5}`, 0},
		{"mentor", "7", "nueva_evidencia", "/", `{"estudiante": "Ana", "evidenciaId": 12}`, 1},
		{"all", "", "sistema_mantenimiento", "/admin", `{"minutos": 10}`, 2},
		{"room", "curso:algebra", "nueva_tarea", "chat", `{"titulo": "Ecuaciones"}`, 0},
		{"all", "", "actualizacion_disponible", "/", `{"version": "2.4.0"}`, 0},
		{"user", "42", "ping", "/", `[1, -2, 3.25, 9007199254740993, 1e300, -0, "ñ", null, true, {"a": []}]`, 0},
		{"user", "42", "big", "/", `123456789012345678901234567890`, 0},
		{"user", "42", "huge", "/", `1e400`, 0},
		{"user", "42", "text", "/", `"\ud83c\udf4a \u0000"`, 1},
		{"user", " ", "x", "/", `1`, 0},
		{"user", "42", "connect", "/", `1`, 0},
		{"user", "42", "", "/", `1`, 0},
		{"user", "42", "x", " ", `1`, 0},
		{"user", "42", "x", "/", ``, 1},
		{"user", "42", "x", "/", `{"a":1} {"b":2}`, 0},
		{"user", "42", "x", "/", `{"a":`, 2},
		{"user", "42", "x", "/", `hola`, 0},
		{"user", "42", "x", "/", `'{"a":1}'`, 0},
		{"user", "42", "x", "/", strings.Repeat(`"abcdefgh",`, 50), 0},
	} {
		f.Add(s.kind, s.id, s.event, s.ns, []byte(s.payload), s.from)
	}
	cfg := configs.Default()
	cfg.Limits.MaxPayload = 512 // small, so the fuzzer meets the limit
	f.Fuzz(func(t *testing.T, kind, id, event, ns string, payload []byte, from uint8) {
		nargs := 2
		switch kind {
		case "user", "mentor", "room":
		case "all":
			nargs = 1
		default:
			return
		}
		args := []string{id, event}[2-nargs:]
		opts := &emitOptions{IO: &IOStreams{In: bytes.NewReader(payload)}, Namespace: ns}
		switch from % 3 {
		case 0:
			args = append(args, string(payload))
		case 1:
			opts.Data, opts.DataSet = string(payload), true
		case 2:
			opts.Data, opts.DataSet = "-", true
		}
		if err := opts.fromArgs(kind, args, nargs); err != nil {
			return // refused before anything is read: a flagError (exit 2) in the command
		}
		raw, value, err := opts.payload(cfg)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("payload %q refused with %v (%T), want a usage error", payload, err, err)
			}
			return
		}
		if len(payload) > int(cfg.Limits.MaxPayload) {
			t.Fatalf("accepted a %d-byte payload over the %d-byte limit", len(payload), cfg.Limits.MaxPayload)
		}
		em := redisadapter.NewEmitter(nil, cfg.Redis.Key).Of(opts.Namespace)
		if opts.Room != "" {
			em = em.To(opts.Room)
		}
		var eargs []any
		if raw != nil {
			eargs = append(eargs, value)
		}
		msg, err := em.Encode(opts.Event, eargs...)
		if err != nil {
			t.Fatalf("accepted payload %q does not encode: %v", payload, err)
		}
		checkPublished(t, msg, em.Namespace(), opts.Room, opts.Event, raw)
	})
}

// checkPublished decodes what @socket.io/redis-emitter publishes,
// [uid, {type, data: [event, ...args], nsp}, {rooms, except, flags}], and
// compares it with what was asked.
func checkPublished(t *testing.T, msg []byte, nsp, room, event string, raw json.RawMessage) {
	t.Helper()
	var m []any
	if err := msgpack.Unmarshal(msg, &m); err != nil || len(m) != 3 {
		t.Fatalf("published %x, not a 3-element msgpack array: %v", msg, err)
	}
	packet, _ := m[1].(map[string]any)
	opts, _ := m[2].(map[string]any)
	data, _ := packet["data"].([]any)
	if packet["nsp"] != nsp || len(data) == 0 || data[0] != event {
		t.Fatalf("published %#v for event %q of namespace %q", m, event, nsp)
	}
	rooms, _ := opts["rooms"].([]any)
	if want := []any{}; room != "" && !reflect.DeepEqual(rooms, append(want, room)) || room == "" && len(rooms) != 0 {
		t.Fatalf("published rooms %#v, want %q", opts["rooms"], room)
	}
	if raw == nil {
		if len(data) != 1 {
			t.Fatalf("published args %#v for an event without payload", data[1:])
		}
		return
	}
	var want any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("the compacted payload %q is not JSON: %v", raw, err)
	}
	if len(data) != 2 || !sameJSON(data[1], want) {
		t.Fatalf("published argument %#v, want %s", data[1:], raw)
	}
}

// sameJSON compares a msgpack-decoded value with a JSON-decoded one:
// numbers by value (msgpack keeps integers exact, JSON makes them
// float64, so both are compared as float64).
func sameJSON(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || !sameJSON(gv, v) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !sameJSON(g[i], w[i]) {
				return false
			}
		}
		return true
	case float64:
		g, ok := asFloat(got)
		return ok && (g == w || math.IsNaN(g) && math.IsNaN(w))
	}
	return got == want
}

func asFloat(v any) (float64, bool) {
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int()), true
	case rv.CanUint():
		return float64(rv.Uint()), true
	case rv.CanFloat():
		return rv.Float(), true
	}
	return 0, false
}

// Found by FuzzEmitPayload: 1e400 is valid JSON but no double; it passed
// the payload check, then failed to encode and was reported as a Redis
// failure (exit 4). It is a bad payload (exit 2), refused before Redis.
func TestEmitRefusesNumberOutOfRange(t *testing.T) {
	env := map[string]string{"FRUTOS_HOME": t.TempDir()}
	code, _, stderr := runCLI(t, env, "", "emit", "user", "42", "nota", `{"nota": [1, 1e400]}`, "--redis", "redis://127.0.0.1:1")
	if code != exitUsage || !strings.Contains(stderr, "the number 1e400 is out of range") {
		t.Fatalf("exit %d, stderr %q; want exit %d naming the number", code, stderr, exitUsage)
	}
}
