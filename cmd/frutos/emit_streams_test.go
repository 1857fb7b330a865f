package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// With redis.adapter: streams, `frutos emit` appends to the stream of
// @socket.io/redis-streams-adapter: a Node server with the real package
// delivers it to its socket.io-client sockets, JSON intact, and the entry
// id printed is the offset the client gets.
func TestEmitStreamsReachesNodeStreamsAdapter(t *testing.T) {
	nodefix.Require(t)
	r := redistest.Start(t)
	srv := nodefix.StartServer(t, nodefix.ServerOptions{RedisURL: r.URL(), Streams: true, Recovery: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	student := nodefix.StartClient(t, nodefix.ClientOptions{URL: srv.URL(), Token: nodefix.MintToken(nodefix.DefaultSecret, "42", "student", time.Hour)})
	if _, err := student.WaitFor(ctx, nodefix.Has("connect")); err != nil {
		t.Fatal(err)
	}
	// The Node adapter reads the stream from "$" once its first XREAD
	// runs: probe until it delivers.
	rc := redis.NewClient(&redis.Options{Addr: r.Addr()})
	defer rc.Close()
	probe := redisadapter.NewEmitter(rc, "").Streams(redisadapter.StreamOptions{}).To("user:42")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := probe.Emit(ctx, "probe"); err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := student.WaitEvent(pctx, "probe")
		pcancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Node server never read the stream")
		}
	}

	env := map[string]string{"FRUTOS_HOME": t.TempDir(), "FRUTOS_REDIS_ADAPTER": "streams"}
	payload := `{"evidenciaId": 7, "nota": 9.5, "texto": "¡Aprobada! ñandú 😀", "anidado": {"lista": [1, "dos", null]}}`
	code, out, stderr := runCLI(t, env, "", "emit", "user", "42", "evidencia_aprobada", payload, "--json", "--redis", r.URL())
	if code != 0 {
		t.Fatalf("frutos emit: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "to stream socket.io") || !strings.Contains(stderr, ": 1 server read it") {
		t.Errorf("stderr %q", stderr)
	}
	var sent emitJSON
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if sent.Stream != "socket.io" || sent.Entry == "" || sent.Receivers != 1 || sent.Channel != "" {
		t.Errorf("--json output: %+v", sent)
	}
	got, err := student.WaitEvent(ctx, "evidencia_aprobada")
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal([]byte(payload), &want); err != nil {
		t.Fatal(err)
	}
	args := got.Args()
	if len(args) != 2 || !reflect.DeepEqual(args[0], want) || args[1] != sent.Entry {
		t.Errorf("the student got %v, want the payload and the offset %s", args, sent.Entry)
	}

	// Nothing reads the stream of another name: a warning, not a failure.
	env["FRUTOS_REDIS_ADAPTER"] = "streams"
	code, _, stderr = runCLI(t, env, "", "emit", "all", "x", "--redis", r.URL(), "--namespace", "/nadie")
	if code != 0 || !strings.Contains(stderr, "warning: no Socket.IO server reads stream socket.io now") {
		t.Errorf("emit to a namespace nobody serves: exit %d, stderr %q", code, stderr)
	}
	// A bad adapter name is a configuration error (exit 3).
	env["FRUTOS_REDIS_ADAPTER"] = "kafka"
	if code, _, stderr = runCLI(t, env, "", "emit", "all", "x", "--redis", r.URL()); code != exitConfig || !strings.Contains(stderr, `redis.adapter: "kafka" is not an adapter`) {
		t.Errorf("FRUTOS_REDIS_ADAPTER=kafka: exit %d, stderr %q", code, stderr)
	}
}
