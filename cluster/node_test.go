package cluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// The official socket.io-client, with default transports (polling then
// upgrade) and websocket only: it connects, authenticates, gets events with
// their JSON intact and acks for ping; a bad token gets "Unauthorized".
func TestOfficialNodeClient(t *testing.T) {
	nodefix.Require(t)
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	payload := map[string]any{"evidenciaId": 7.0, "mensaje": "Tu evidencia fue aprobada ✓ ñ 日本", "meta": map[string]any{"n": []any{1.0, 2.5, nil}}}
	for _, tc := range []struct {
		name       string
		transports []string
		upgrade    bool
	}{{"default transports", nil, true}, {"websocket only", []string{"websocket"}, false}, {"polling only", []string{"polling"}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c := nodefix.StartClient(t, nodefix.ClientOptions{URL: w.URL, Token: tok("42", "student"), Transports: tc.transports})
			if _, err := c.WaitFor(ctx, nodefix.Has("connect")); err != nil {
				t.Fatal(err)
			}
			if tc.upgrade {
				if _, err := c.WaitFor(ctx, nodefix.Has("upgrade")); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.EmitToUser("42", "evidencia_aprobada", payload); err != nil {
				t.Fatal(err)
			}
			l, err := c.WaitEvent(ctx, "evidencia_aprobada")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mustJSON(l.Args()[0]), mustJSON(payload); got != want {
				t.Errorf("payload: got %s want %s", got, want)
			}
			ack, err := c.Do(ctx, map[string]any{"op": "emitWithAck", "event": "ping", "args": []any{}, "timeoutMs": 5000})
			if err != nil {
				t.Fatalf("ping ack: %v", err)
			}
			if list, _ := ack.([]any); len(list) != 1 || list[0].(map[string]any)["pong"] != true {
				t.Errorf("ping ack = %v", ack)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c := nodefix.StartClient(t, nodefix.ClientOptions{URL: w.URL, Token: "not-a-token"})
		l, err := c.WaitFor(ctx, nodefix.Has("connect_error"))
		if err != nil {
			t.Fatal(err)
		}
		if msg := l.Map("connect_error").String("message"); msg != "Unauthorized" {
			t.Errorf("connect_error message = %q", msg)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	var n any
	_ = json.Unmarshal(b, &n)
	b, _ = json.Marshal(n)
	return string(b)
}
