package cluster_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Two workers on one Redis: a student on A gets what is emitted for them on
// B and through the emitter; a mentor gets mentor: events, a student not.
func TestEmitsReachUsersOnAnyWorker(t *testing.T) {
	rs := redistest.Start(t)
	a := startWorker(t, rs.URL(), nil)
	b := startWorker(t, rs.URL(), nil)
	_, student := mustDial(t, a.URL, tok("42", "student"))
	_, mentor := mustDial(t, a.URL, tok("7", "mentor"))
	_, other := mustDial(t, b.URL, tok("43", "student"))

	if err := b.EmitToUser("42", "evidencia_aprobada", map[string]any{"evidenciaId": 1.0}); err != nil {
		t.Fatal(err)
	}
	if err := b.EmitToMentor("7", "nueva_evidencia", "x"); err != nil {
		t.Fatal(err)
	}
	if err := b.EmitToMentor("42", "nueva_evidencia", "not for a student"); err != nil {
		t.Fatal(err)
	}
	if err := b.Broadcast("sistema_mantenimiento", "22:00"); err != nil {
		t.Fatal(err)
	}
	em := redisadapter.NewEmitter(rs.Client(t), "")
	if _, err := em.To("user:42").Emit(context.Background(), "nueva_tarea", map[string]any{"t": "ñ"}); err != nil {
		t.Fatal(err)
	}

	student.WaitN(t, "evidencia_aprobada", 1, 5*time.Second)
	student.WaitN(t, "nueva_tarea", 1, 5*time.Second)
	mentor.WaitN(t, "nueva_evidencia", 1, 5*time.Second)
	for _, r := range []*eventlog.Recorder{student, mentor, other} {
		r.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)
	}
	if n := len(student.Named("nueva_evidencia")); n != 0 {
		t.Errorf("a student got %d mentor events", n)
	}
	if n := len(other.Named("evidencia_aprobada")); n != 0 {
		t.Errorf("user 43 got user 42's event")
	}
	if err := b.EmitToUser("42", "connect"); err == nil {
		t.Error("a reserved event name was accepted")
	}
}

// A client may only ping (with an ack); anything else is ignored and
// counted, and it cannot join rooms or reach other users.
func TestClientEventsAllowList(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	c, _ := mustDial(t, w.URL, tok("1", "student"))
	_, victim := mustDial(t, w.URL, tok("2", "student"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := c.EmitWithAck(ctx, "ping")
	if err != nil {
		t.Fatalf("ping ack: %v", err)
	}
	if m, ok := ack[0].(map[string]any); !ok || m["pong"] != true {
		t.Errorf("ping ack = %v", ack)
	}
	for _, ev := range []string{"join", "subscribe", "emit", "evidencia_aprobada"} {
		if err := c.Emit(ev, "user:2", map[string]any{"to": "user:2"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "4 ignored events", func() bool { return w.Stats().ClientIgn == 4 })
	st := w.Stats()
	if st.ClientIn != 1 {
		t.Errorf("handled = %d, want 1 (the ping)", st.ClientIn)
	}
	if got := len(victim.Named("evidencia_aprobada")); got != 0 {
		t.Errorf("a client reached another user (%d events)", got)
	}
	if rooms, ok := w.IO().Sockets().Adapter().Rooms().Load("user:2"); !ok || rooms.Len() != 1 {
		t.Errorf("room user:2 changed: %v", rooms)
	}
}

// Bad tokens get connect_error "Unauthorized" with data {code} and change
// nothing; the worker counts each code.
func TestUnauthorized(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	for _, tc := range []struct{ token, code string }{
		{"", "missing_token"}, {"garbage", "bad_claims"}, {tok("", "student"), "bad_claims"}, {tok("5", "superuser"), "bad_claims"},
	} {
		_, _, err := dial(t, w.URL, tc.token, nil)
		var ce *sioclient.ConnectError
		if !errorsAs(err, &ce) || ce.Message != "Unauthorized" {
			t.Errorf("token %q: err = %v, want connect_error Unauthorized", tc.token, err)
			continue
		}
		if data, _ := ce.Data.(map[string]any); data["code"] != tc.code || len(data) != 1 {
			t.Errorf("token %q: data = %v, want {code: %s}", tc.token, ce.Data, tc.code)
		}
	}
	st := w.Stats()
	if st.Refused["unauthorized"] != 4 || st.Sockets != 0 {
		t.Errorf("refused = %v, sockets = %d", st.Refused, st.Sockets)
	}
	if st.AuthFailures["missing_token"] != 1 || st.AuthFailures["bad_claims"] != 3 || st.AuthFailures["expired"] != 0 {
		t.Errorf("auth failures = %v", st.AuthFailures)
	}
	if rooms := w.IO().Sockets().Adapter().Rooms().Len(); rooms != 0 {
		t.Errorf("%d rooms exist after refused handshakes", rooms)
	}
}

// CORS is enforced for websocket upgrades and polling handshakes alike.
func TestForeignOriginRefused(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), func(c *configs.Config) { c.CORS.Origins = []string{"https://app.example.com"} })
	_, _, err := dial(t, w.URL, tok("1", "student"), http.Header{"Origin": {"https://evil.example"}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("foreign-origin websocket: err = %v, want HTTP 403", err)
	}
	if _, _, err := dial(t, w.URL, tok("1", "student"), http.Header{"Origin": {"https://app.example.com"}}); err != nil {
		t.Errorf("allowed origin refused: %v", err)
	}
	req, _ := http.NewRequest("GET", w.URL+"/socket.io/?EIO=4&transport=polling", nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign-origin polling handshake: HTTP %d", resp.StatusCode)
	}
	if got := w.Stats().Refused["origin"]; got != 2 {
		t.Errorf("refused[origin] = %d, want 2", got)
	}
}

// Beyond max_connections new sessions are refused; existing ones stay.
func TestMaxConnections(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), func(c *configs.Config) { c.Limits.MaxConnections = 2 })
	c1, r1 := mustDial(t, w.URL, tok("1", "student"))
	mustDial(t, w.URL, tok("2", "student"))
	if _, _, err := dial(t, w.URL, tok("3", "student"), nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("third connection: err = %v, want refused", err)
	}
	if got := w.Stats().Refused["full"]; got != 1 {
		t.Errorf("refused[full] = %d", got)
	}
	if err := w.EmitToUser("1", "still-here"); err != nil {
		t.Fatal(err)
	}
	r1.WaitN(t, "still-here", 1, 5*time.Second)
	_ = c1
}

// Health and metrics on the admin handler.
func TestHealthAndMetrics(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	mustDial(t, w.URL, tok("1", "student"))
	code, body := httpGet(t, w.AdminURL+"/health")
	if code != 200 || !strings.Contains(body, `"ready":true`) || !strings.Contains(body, `"connections":1`) {
		t.Errorf("/health = %d %s", code, body)
	}
	code, body = httpGet(t, w.AdminURL+"/metrics")
	for _, want := range []string{
		`frutos_worker_ready 1`,
		`frutos_connections{transport="websocket"} 1`,
		`frutos_handshakes_accepted_total 1`,
		`frutos_redis_up{state="connected"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code != 200 {
		t.Errorf("/metrics HTTP %d", code)
	}
	if code, _ := httpGet(t, w.URL+"/health"); code != 404 {
		t.Errorf("the public handler serves /health (HTTP %d): it must stay private", code)
	}
}

// Drain closes transports so clients reconnect (not a Socket.IO
// disconnect), refuses new sessions and reports not ready.
func TestDrain(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	c, _ := mustDial(t, w.URL, tok("1", "student"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Drain(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := c.Err(); err == nil || strings.Contains(err.Error(), "disconnected by the server") {
		t.Errorf("client ended with %v; want a closed transport, not a DISCONNECT packet", err)
	}
	if w.Ready() {
		t.Error("a draining worker reports ready")
	}
	if _, _, err := dial(t, w.URL, tok("2", "student"), nil); err == nil {
		t.Error("a draining worker accepted a new session")
	}
	if code, _ := httpGet(t, w.AdminURL+"/health"); code != 503 {
		t.Errorf("/health while draining = %d, want 503", code)
	}
}

func errorsAs(err error, target any) bool { return err != nil && errors.As(err, target) }

// Bug: redis.sharded never reached the adapter (the worker built its
// options without it), so workers always spoke the classic protocol.
// Sharded workers subscribe shard channels and deliver across workers.
func TestShardedSettingReachesTheAdapter(t *testing.T) {
	rs := redistest.Start(t)
	sharded := func(c *configs.Config) { c.Redis.Sharded = true }
	a := startWorker(t, rs.URL(), sharded)
	b := startWorker(t, rs.URL(), sharded)
	_, student := mustDial(t, a.URL, tok("42", "student"))
	rc := rs.Client(t)
	waitFor(t, 5*time.Second, "shard channels subscribed", func() bool {
		chans, err := rc.PubSubShardChannels(context.Background(), "*").Result()
		return err == nil && len(chans) > 0
	})
	if chans, _ := rc.PubSubChannels(context.Background(), "*").Result(); len(chans) > 0 {
		t.Errorf("sharded workers subscribed classic channels: %v", chans)
	}
	if err := b.EmitToUser("42", "evidencia_aprobada", 1); err != nil {
		t.Fatal(err)
	}
	student.WaitN(t, "evidencia_aprobada", 1, 5*time.Second)
}
