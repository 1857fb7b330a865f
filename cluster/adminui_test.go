package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/crypto/bcrypt"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/frutos/frutos/internal/testutil/workertest"
)

const adminPassword = "correct horse battery staple"

// adminHash is a bcrypt hash of adminPassword (the cheapest cost: tests
// log in often).
var adminHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

// startAdminWorker runs a worker with the Admin UI on; tag tells the
// workers of one test apart (their server ids share this process's pid).
func startAdminWorker(t testing.TB, redisURL, tag string, tweak func(*configs.Config)) *workertest.Worker {
	t.Helper()
	return workertest.Start(t, workertest.Options{RedisURL: redisURL, Authenticate: testAuth, SessionPrefix: tag,
		Tweak: func(c *configs.Config) {
			c.AdminUI = configs.AdminUI{Enabled: true, Username: "admin", PasswordHash: adminHash}
			if tweak != nil {
				tweak(c)
			}
		}})
}

func dialAdmin(t testing.TB, url string, auth map[string]any) (*sioclient.Client, *eventlog.Recorder, error) {
	t.Helper()
	rec := eventlog.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := sioclient.Dial(ctx, sioclient.Options{URL: url, Namespace: "/admin", Auth: auth, OnEvent: rec.On})
	if err == nil {
		t.Cleanup(func() { _ = c.Close() })
	}
	return c, rec, err
}

// number reads a JSON number as sioclient decodes it.
func number(v any) float64 {
	n, _ := v.(json.Number)
	f, _ := n.Float64()
	return f
}

func adminLogin() map[string]any {
	return map[string]any{"username": "admin", "password": adminPassword}
}

// socketsByID reads all_sockets (or a list of socket_connected payloads).
func socketsByID(list []any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			id, _ := m["id"].(string)
			out[id] = m
		}
	}
	return out
}

// One dashboard on worker A sees and acts on worker B's sockets.
func TestAdminUISeesAndActsOnTheWholeCluster(t *testing.T) {
	rs := redistest.Start(t)
	a := startAdminWorker(t, rs.URL(), "wa", nil)
	b := startAdminWorker(t, rs.URL(), "wb", nil)
	onA, _ := mustDial(t, a.URL, tok("41", "student"))
	onB, userB := mustDial(t, b.URL, tok("42", "mentor"))

	admin, dash, err := dialAdmin(t, a.URL, adminLogin())
	if err != nil {
		t.Fatal(err)
	}
	if s := dash.WaitN(t, "session", 1, 5*time.Second)[0]; len(fmt.Sprint(s.Args[0])) != 32 {
		t.Errorf("session = %v", s.Args)
	}
	features := dash.WaitN(t, "config", 1, 5*time.Second)[0].Args[0].(map[string]any)["supportedFeatures"]
	for _, f := range []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"} {
		if !slices.Contains(features.([]any), any(f)) {
			t.Errorf("features %v lack %s", features, f)
		}
	}

	all := socketsByID(dash.WaitN(t, "all_sockets", 1, 10*time.Second)[0].Args[0].([]any))
	for _, c := range []struct {
		id, nsp, sub, room string
	}{{onA.ID, "/", "41", "user:41"}, {onB.ID, "/", "42", "mentor:42"}, {admin.ID, "/admin", "", ""}} {
		s, ok := all[c.id]
		if !ok {
			t.Fatalf("all_sockets lacks %s (%s): %v", c.id, c.nsp, all)
		}
		if s["nsp"] != c.nsp || s["transport"] != "websocket" || len(fmt.Sprint(s["clientId"])) != 12 {
			t.Errorf("socket %s: nsp %v, transport %v, clientId %v", c.id, s["nsp"], s["transport"], s["clientId"])
		}
		data, _ := s["data"].(map[string]any)
		if c.sub != "" && data["sub"] != c.sub {
			t.Errorf("socket %s: data %v", c.id, data)
		}
		if _, ok := data["_admin"]; ok {
			t.Errorf("socket %s: data shows _admin: %v", c.id, data)
		}
		rooms, _ := s["rooms"].([]any)
		if c.room != "" && (!slices.Contains(rooms, any(c.room)) || !slices.Contains(rooms, any(c.id))) {
			t.Errorf("socket %s: rooms %v", c.id, rooms)
		}
		hs, _ := s["handshake"].(map[string]any)
		if strings.Contains(fmt.Sprint(hs), "token") || strings.Contains(fmt.Sprint(hs), adminPassword) || hs["auth"] != nil {
			t.Errorf("socket %s: the handshake shows credentials: %v", c.id, hs)
		}
	}

	// server_stats from both workers, within one interval of each other
	servers := map[string]map[string]any{}
	eventlog.WaitFor(t, 5*time.Second, "server_stats of both workers", func() bool {
		for _, e := range dash.Named("server_stats") {
			st := e.Args[0].(map[string]any)
			servers[st["serverId"].(string)] = st
		}
		return len(servers) == 2
	})
	for id, st := range servers {
		if !strings.Contains(id, "/wa#") && !strings.Contains(id, "/wb#") {
			t.Errorf("server id %q names no worker", id)
		}
		if number(st["clientsCount"]) < 1 || number(st["pid"]) <= 0 {
			t.Errorf("stats %v", st)
		}
	}

	// a socket that connects on B, and its rooms, are reported to A's dashboard
	late, _ := mustDial(t, b.URL, tok("43", "student"))
	eventlog.WaitFor(t, 5*time.Second, "socket_connected of the late socket", func() bool {
		for _, e := range dash.Named("socket_connected") {
			if e.Args[0].(map[string]any)["id"] == late.ID {
				return true
			}
		}
		return false
	})

	// actions on B's sockets, from A's dashboard
	if err := admin.Emit("emit", "/", onB.ID, "mentor_mensaje", map[string]any{"texto": "hola"}); err != nil {
		t.Fatal(err)
	}
	got := userB.WaitN(t, "mentor_mensaje", 1, 5*time.Second)[0]
	if m, _ := got.Args[0].(map[string]any); m["texto"] != "hola" {
		t.Errorf("the client got %v", got.Args)
	}
	if err := admin.Emit("join", "/", "cohorte:7", onB.ID); err != nil {
		t.Fatal(err)
	}
	eventlog.WaitFor(t, 5*time.Second, "room_joined cohorte:7", func() bool {
		for _, e := range dash.Named("room_joined") {
			if e.Args[0] == "/" && e.Args[1] == "cohorte:7" && e.Args[2] == onB.ID {
				return true
			}
		}
		return false
	})
	if err := admin.Emit("_disconnect", "/", false, late.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case <-late.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the late socket was not disconnected")
	}
	eventlog.WaitFor(t, 5*time.Second, "socket_disconnected", func() bool {
		for _, e := range dash.Named("socket_disconnected") {
			if e.Args[1] == late.ID && e.Args[2] == "server namespace disconnect" {
				return true
			}
		}
		return false
	})
	// an unknown namespace is never created by an action
	_ = admin.Emit("emit", "/nope", "", "x")
	_ = admin.Emit("emit", "/", "", "sistema_mantenimiento", "22:00")
	userB.WaitN(t, "sistema_mantenimiento", 1, 5*time.Second)
	for _, w := range []*workertest.Worker{a, b} {
		if n := w.Stats().Sockets; n > 3 {
			t.Errorf("%d sockets on a worker", n)
		}
	}
}

// The dashboard's login is its own: no JWT opens /admin, the admin's
// login does not open "/", a wrong password is refused, and a session
// from one worker is good on another.
func TestAdminUILogin(t *testing.T) {
	rs := redistest.Start(t)
	a := startAdminWorker(t, rs.URL(), "wa", nil)
	b := startAdminWorker(t, rs.URL(), "wb", nil)
	refused := []map[string]any{
		{"username": "admin", "password": "wrong"},
		{"username": "root", "password": adminPassword},
		{"token": tok("1", "student")},
		{"token": tok("1", "admin")},
		{"sessionId": "0123456789abcdef0123456789abcdef"},
		{},
	}
	for _, auth := range refused {
		_, _, err := dialAdmin(t, a.URL, auth)
		var ce *sioclient.ConnectError
		if !errorsAs(err, &ce) || ce.Message != "invalid credentials" {
			t.Errorf("auth %v: err = %v, want connect_error invalid credentials", auth, err)
		}
	}
	_, _, err := dial(t, a.URL, "", nil)
	c, err2 := sioclient.Dial(context.Background(), sioclient.Options{URL: a.URL, Auth: adminLogin()})
	if err2 == nil {
		_ = c.Close()
	}
	var ce *sioclient.ConnectError
	if !errorsAs(err, &ce) || !errorsAs(err2, &ce) || ce.Message != "Unauthorized" {
		t.Errorf("the admin's login on \"/\": %v, %v", err, err2)
	}

	_, dash, err := dialAdmin(t, a.URL, adminLogin())
	if err != nil {
		t.Fatal(err)
	}
	session := dash.WaitN(t, "session", 1, 5*time.Second)[0].Args[0].(string)
	_, dashB, err := dialAdmin(t, b.URL, map[string]any{"sessionId": session})
	if err != nil {
		t.Fatalf("the session from worker A on worker B: %v", err)
	}
	dashB.WaitN(t, "config", 1, 5*time.Second)
	if n := len(dashB.Named("session")); n != 0 {
		t.Errorf("a session login got %d new sessions", n)
	}
}

// Read-only: no feature announced, and the actions do nothing.
func TestAdminUIReadOnly(t *testing.T) {
	rs := redistest.Start(t)
	w := startAdminWorker(t, rs.URL(), "wa", func(c *configs.Config) { c.AdminUI.ReadOnly = true })
	user, rec := mustDial(t, w.URL, tok("41", "student"))
	admin, dash, err := dialAdmin(t, w.URL, adminLogin())
	if err != nil {
		t.Fatal(err)
	}
	if f := dash.WaitN(t, "config", 1, 5*time.Second)[0].Args[0].(map[string]any)["supportedFeatures"]; len(f.([]any)) != 0 {
		t.Errorf("read-only features %v", f)
	}
	_ = admin.Emit("emit", "/", user.ID, "nueva_tarea", 1)
	_ = admin.Emit("_disconnect", "/", true, user.ID)
	// then an event the worker sends itself: the dashboard's would be before it
	if err := w.EmitToUser("41", "evidencia_aprobada", 1); err != nil {
		t.Fatal(err)
	}
	rec.WaitN(t, "evidencia_aprobada", 1, 5*time.Second)
	if n := len(rec.Named("nueva_tarea")); n != 0 {
		t.Errorf("a read-only dashboard emitted (%d)", n)
	}
	select {
	case <-user.Done():
		t.Error("a read-only dashboard disconnected a socket")
	default:
	}
}

// Off (the default), the worker has no /admin namespace and listens to
// nothing for it.
func TestAdminUIOffRegistersNothing(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), nil)
	mustDial(t, w.URL, tok("41", "student"))
	_, _, err := dialAdmin(t, w.URL, adminLogin())
	var ce *sioclient.ConnectError
	if !errorsAs(err, &ce) || ce.Message != "Invalid namespace" {
		t.Errorf("/admin with the Admin UI off: %v", err)
	}
	ad := w.IO().Sockets().Adapter()
	for _, ev := range []types.EventName{"join-room", "leave-room"} {
		if n := ad.ListenerCount(ev); n != 0 {
			t.Errorf("%d listeners of %s", n, ev)
		}
	}
}

// Bug: a worker closing just after a dashboard went away hung for ever.
// Its sockets leave their rooms, the Admin UI broadcast room_left from
// inside that callback, the write to the gone dashboard failed, and the
// engine ended that session at once, still under the Socket.IO client's
// lock: the dashboard's socket left its own room, whose room_left went to
// the same client, and waited for that lock. Node defers room_left; the
// events now go through a queue and a sender.
func TestAdminUIBugCloseAfterADashboardLeftDeadlocked(t *testing.T) {
	rs := redistest.Start(t)
	w := startAdminWorker(t, rs.URL(), "wa", nil)
	mustDial(t, w.URL, tok("41", "student"))
	admin, dash, err := dialAdmin(t, w.URL, adminLogin())
	if err != nil {
		t.Fatal(err)
	}
	dash.WaitN(t, "all_sockets", 1, 5*time.Second)
	_ = admin.Close()
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- w.Close(ctx)
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker did not close (deadlock)")
	}
}
