package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// What `frutos emit` publishes reaches real socket.io-client sockets through
// a real Node Socket.IO server with @socket.io/redis-adapter, JSON intact;
// and a token from `frutos token` is accepted by that server.
func TestEmitReachesNodeSocketIOClients(t *testing.T) {
	nodefix.Require(t)
	r := redistest.Start(t)
	srv := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: r.URL()})
	env := map[string]string{"FRUTOS_HOME": t.TempDir(), "FRUTOS_AUTH_SECRET": nodefix.DefaultSecret}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	code, token, stderr := runCLI(t, env, "", "token", "42")
	if code != 0 {
		t.Fatalf("frutos token: exit %d: %s", code, stderr)
	}
	student := nodefix.StartClient(t, nodefix.ClientOptions{URL: srv.URL(), Token: strings.TrimSpace(token)})
	mentor := nodefix.StartClient(t, nodefix.ClientOptions{URL: srv.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "7", "mentor", time.Hour)})
	for _, c := range []*nodefix.Proc{student, mentor} {
		if _, err := c.WaitFor(ctx, nodefix.Has("connect")); err != nil {
			t.Fatalf("client did not connect (was the frutos token refused?): %v", err)
		}
	}
	// The server joins the rooms in its connection handler, before the
	// client hears of it, and subscribed to Redis before it said ready: from
	// here on, events to user:42 and mentor:7 are delivered.
	conn, err := srv.WaitFor(ctx, func(l nodefix.Line) bool {
		c := l.Map("connection")
		return c != nil && c.String("sub") == "42"
	})
	if err != nil || conn.Map("connection").String("role") != "student" {
		t.Fatalf("the server did not see user 42 as a student: %v %v", conn, err)
	}

	emit := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := runCLI(t, map[string]string{"FRUTOS_HOME": env["FRUTOS_HOME"]}, "",
			append(append([]string{"emit"}, args...), "--redis", r.URL())...)
		if code != 0 {
			t.Fatalf("frutos emit %v: exit %d: %s", args, code, stderr)
		}
		if !strings.Contains(stderr, ": 1 server received it") {
			t.Errorf("frutos emit %v: stderr %q, want 1 server (the Node one)", args, stderr)
		}
		return stdout
	}

	// One publisher, one Redis connection, one Node subscriber: messages are
	// handled in order. The mentor event goes first, so when the student has
	// the later one, a wrongly routed mentor event would already be there.
	emit("mentor", "7", "nueva_evidencia", `{"estudiante":"42","evidenciaId":12}`)
	payload := `{"evidenciaId": 7, "nota": 9.5, "negativo": -3, "grande": 12345678901234, "exp": 1e3,
		"texto": "¡Aprobada! ñandú ☃ 😀 \"comillas\" \\ barra \u00e9",
		"anidado": {"lista": [1, "dos", {"tres": [true, false, null]}], "vacío": {}, "nada": []}}`
	out := emit("user", "42", "evidencia_aprobada", payload, "--json")

	got, err := student.WaitEvent(ctx, "evidencia_aprobada")
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal([]byte(payload), &want); err != nil {
		t.Fatal(err)
	}
	if args := got.Args(); len(args) != 1 || !reflect.DeepEqual(args[0], want) {
		gotJSON, _ := json.Marshal(got.Args())
		wantJSON, _ := json.Marshal([]any{want})
		t.Errorf("the student got args\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	if ev := student.Events("nueva_evidencia"); len(ev) != 0 {
		t.Errorf("the student got the mentor's event: %v", ev)
	}
	m, err := mentor.WaitEvent(ctx, "nueva_evidencia")
	if err != nil {
		t.Fatal(err)
	}
	if args := m.Args(); len(args) != 1 || !reflect.DeepEqual(args[0], map[string]any{"estudiante": "42", "evidenciaId": float64(12)}) {
		t.Errorf("the mentor got %v", args)
	}
	if ev := mentor.Events("evidencia_aprobada"); len(ev) != 0 {
		t.Errorf("the mentor got the student's event: %v", ev)
	}

	var sent emitJSON
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if sent.Channel != "socket.io#/#user:42#" || sent.Receivers != 1 || sent.Event != "evidencia_aprobada" {
		t.Errorf("--json output: %+v", sent)
	}

	// all, without a payload: everyone, with no argument.
	emit("all", "sistema_mantenimiento")
	for _, c := range []*nodefix.Proc{student, mentor} {
		l, err := c.WaitEvent(ctx, "sistema_mantenimiento")
		if err != nil {
			t.Fatal(err)
		}
		if args := l.Args(); len(args) != 0 {
			t.Errorf("an event sent without a payload arrived with args %v", args)
		}
	}
}
