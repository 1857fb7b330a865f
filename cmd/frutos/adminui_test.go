package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/testutil/nodefix"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// EnvAdminUIScreenshot, when set, is where TestAdminUIInABrowser saves its
// screenshot of the dashboard (docs/images/admin-ui.png for the README).
const EnvAdminUIScreenshot = "FRUTOS_ADMINUI_SCREENSHOT"

const adminUIPassword = "correct horse battery staple"

// adminUICluster starts a daemon with 2 workers and the Admin UI on, and
// four official socket.io-client processes (two polling-then-upgrade, two
// websocket only), which the front door spreads over both workers.
func adminUICluster(t *testing.T) (c *cli, url string, clients []*nodefix.Proc, ids []string) {
	t.Helper()
	nodefix.Require(t)
	rs := redistest.Start(t)
	c = newCLI(t, rs.URL())
	hash, err := bcrypt.GenerateFromPassword([]byte(adminUIPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "FRUTOS_ADMIN_UI=1", "FRUTOS_ADMIN_UI_PASSWORD_HASH="+string(hash))
	port := strconv.Itoa(redistest.FreePort(t))
	c.ok("start", "--instances", "2", "--port", port)
	c.waitStatus("2 workers online", 30*time.Second, online(2))
	url = "http://127.0.0.1:" + port

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		tok, err := jwtauth.Mint("lifecycle-secret", strconv.Itoa(41+i), []string{"student", "mentor"}[i%2], time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		o := nodefix.ClientOptions{URL: url, Token: tok, NoReconnect: true}
		if i >= 2 {
			o.Transports = []string{"websocket"}
		}
		p := nodefix.StartClient(t, o)
		l, err := p.WaitFor(ctx, nodefix.Has("connect"))
		if err != nil {
			t.Fatal(err)
		}
		if o.Transports == nil { // wait for the upgrade: the dashboard shows it
			if _, err := p.WaitFor(ctx, nodefix.Has("upgrade")); err != nil {
				t.Fatal(err)
			}
		}
		clients = append(clients, p)
		ids = append(ids, l.Map("connect").String("id"))
	}
	return c, url, clients, ids
}

// The protocol, with the official socket.io-client speaking what the
// dashboard speaks, against a 2-worker cluster: a wrong password is
// refused; config, all_sockets (every socket of both workers, its rooms
// and transport) and server_stats from each worker within one interval;
// an emit to one socket of the other worker reaches it.
func TestAdminUIProtocolWithTheNodeClient(t *testing.T) {
	_, url, clients, ids := adminUICluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, auth := range []map[string]any{
		{"username": "admin", "password": "wrong"},
		{"token": "not-the-admin"},
	} {
		bad := nodefix.StartClient(t, nodefix.ClientOptions{URL: url, Namespace: "/admin", Auth: auth, NoReconnect: true})
		l, err := bad.WaitFor(ctx, nodefix.Has("connect_error"))
		if err != nil {
			t.Fatal(err)
		}
		if msg := l.Map("connect_error").String("message"); msg != "invalid credentials" {
			t.Errorf("auth %v: connect_error %q, want invalid credentials", auth, msg)
		}
	}

	dash := nodefix.StartClient(t, nodefix.ClientOptions{URL: url, Namespace: "/admin", NoReconnect: true,
		Auth: map[string]any{"username": "admin", "password": adminUIPassword}})
	cfg, err := dash.WaitEvent(ctx, "config")
	if err != nil {
		t.Fatal(err)
	}
	features, _ := cfg.Args()[0].(map[string]any)["supportedFeatures"].([]any)
	for _, f := range []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"} {
		if !slices.Contains(features, any(f)) {
			t.Errorf("supportedFeatures %v lack %s", features, f)
		}
	}
	all, err := dash.WaitEvent(ctx, "all_sockets")
	if err != nil {
		t.Fatal(err)
	}
	sockets := map[string]map[string]any{}
	for _, s := range all.Args()[0].([]any) {
		m := s.(map[string]any)
		sockets[m["id"].(string)] = m
	}
	for i, id := range ids {
		s, ok := sockets[id]
		if !ok {
			t.Fatalf("all_sockets lacks client %d (%s): %v", i, id, sockets)
		}
		rooms, _ := s["rooms"].([]any)
		if s["nsp"] != "/" || s["transport"] != "websocket" || !slices.Contains(rooms, any("user:"+strconv.Itoa(41+i))) {
			t.Errorf("client %d in all_sockets: %v", i, s)
		}
		if strings.Contains(fmt.Sprint(s["handshake"]), "token") {
			t.Errorf("client %d: the handshake shows its token: %v", i, s["handshake"])
		}
	}

	// server_stats from both workers, within one interval (2 s) of the
	// dashboard's connection; each worker holds some of the clients
	start := time.Now()
	stats := map[string]map[string]any{}
	if _, err := dash.WaitFor(ctx, func(l nodefix.Line) bool {
		if l.String("event") == "server_stats" {
			st := l.Args()[0].(map[string]any)
			stats[st["serverId"].(string)] = st
		}
		return len(stats) == 2
	}); err != nil {
		t.Fatalf("server_stats from %d server(s): %v", len(stats), err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("server_stats of both workers took %v", d)
	}
	for id, st := range stats {
		if n, _ := st["clientsCount"].(float64); n < 2 {
			t.Errorf("server %s has %v clients: the front door did not spread them", id, st["clientsCount"])
		}
	}

	// emit, to one socket, through whichever worker the dashboard is on
	if _, err := dash.Do(ctx, map[string]any{"op": "emit", "event": "emit",
		"args": []any{"/", ids[3], "nueva_tarea", map[string]any{"tareaId": 9}}}); err != nil {
		t.Fatal(err)
	}
	got, err := clients[3].WaitEvent(ctx, "nueva_tarea")
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.Args()[0].(map[string]any); m["tareaId"] != float64(9) {
		t.Errorf("the client got %v", got.Args())
	}
	for i := range 3 {
		if n := len(clients[i].Events("nueva_tarea")); n != 0 {
			t.Errorf("client %d got the event meant for client 3", i)
		}
	}
}

// The official dashboard, from the npm package, in headless Chromium,
// against a 2-worker cluster: it logs in, shows both workers as servers
// and every socket with its transport and rooms, joins a socket to a room,
// and disconnects a socket, whose client sees "io server disconnect".
func TestAdminUIInABrowser(t *testing.T) {
	nodefix.RequireAdminUI(t)
	c, url, clients, ids := adminUICluster(t)
	browser := nodefix.StartAdminUIBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	do := func(cmd map[string]any) any {
		t.Helper()
		v, err := browser.Do(ctx, cmd)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	if _, err := browser.Do(ctx, map[string]any{"op": "login", "serverUrl": url, "username": "admin", "password": "wrong"}); err == nil ||
		!strings.Contains(err.Error(), "Invalid credentials") {
		t.Errorf("a wrong password: %v, want the form's Invalid credentials", err)
	}
	do(map[string]any{"op": "login", "serverUrl": url, "username": "admin", "password": adminUIPassword})

	// both workers, as servers
	rows := toRows(do(map[string]any{"op": "servers", "count": 2}))
	for _, w := range c.status().Workers {
		if !slices.ContainsFunc(rows, func(r []string) bool {
			return slices.ContainsFunc(r, func(cell string) bool { return strings.HasSuffix(cell, "#"+strconv.Itoa(w.PID)) })
		}) {
			t.Errorf("the Servers page lacks worker %d (pid %d): %v", w.ID, w.PID, rows)
		}
	}

	// every socket, with its transport
	rows = toRows(do(map[string]any{"op": "sockets", "nsp": "/"}))
	for i, id := range ids {
		if !slices.ContainsFunc(rows, func(r []string) bool { return len(r) > 2 && r[0] == id && strings.EqualFold(r[2], "websocket") }) {
			t.Errorf("the Sockets page lacks client %d (%s) on websocket: %v", i, id, rows)
		}
	}
	// a socket's page shows its rooms; the dashboard joins it to another
	page := do(map[string]any{"op": "socket", "nsp": "/", "socket": ids[1], "room": "mentor:42"}).(map[string]any)
	if rooms := fmt.Sprint(page["rooms"]); !strings.Contains(rooms, "user:42") || !strings.Contains(rooms, "mentor:42") {
		t.Errorf("socket %s's rooms on its page: %v", ids[1], rooms)
	}
	do(map[string]any{"op": "join", "nsp": "/", "socket": ids[1], "room": "cohorte-7"})
	c.ok("emit", "room", "cohorte-7", "sesion_solicitada", `{"sala": 7}`)
	if _, err := clients[1].WaitEvent(ctx, "sesion_solicitada"); err != nil {
		t.Fatalf("the socket the dashboard put in cohorte-7 did not get an emit to it: %v", err)
	}

	shot := filepath.Join(t.TempDir(), "admin-ui.png")
	if p := os.Getenv(EnvAdminUIScreenshot); p != "" {
		shot, _ = filepath.Abs(p)
	}
	do(map[string]any{"op": "screenshot", "path": shot, "route": "/sockets/", "waitText": ids[0]})
	if fi, err := os.Stat(shot); err != nil || fi.Size() < 10_000 {
		t.Errorf("screenshot %s: %v", shot, err)
	}

	// disconnect a socket from the dashboard: its client is told so
	do(map[string]any{"op": "disconnect", "nsp": "/", "socket": ids[2]})
	l, err := clients[2].WaitFor(ctx, nodefix.Has("disconnect"))
	if err != nil {
		t.Fatal(err)
	}
	if r := l.String("disconnect"); r != "io server disconnect" {
		t.Errorf("the disconnected client saw %q", r)
	}
	for _, e := range browser.Lines() {
		if msg := e.String("console"); msg != "" {
			t.Logf("browser console: %s", msg)
		}
	}
}

func toRows(v any) [][]string {
	var out [][]string
	rows, _ := v.([]any)
	for _, r := range rows {
		var cells []string
		for _, c := range r.([]any) {
			cells = append(cells, fmt.Sprint(c))
		}
		out = append(out, cells)
	}
	return out
}

// `frutos admin-ui` prints the page and the form's fields, says what is in
// the way on stderr, never prints the hash; `admin-ui hash` hashes stdin.
func TestAdminUICommand(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte(adminUIPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	on := map[string]string{"FRUTOS_HOME": t.TempDir(), "PORT": "4123", "FRUTOS_NODE_NAME": "web-1",
		"FRUTOS_ADMIN_UI": "1", "FRUTOS_ADMIN_UI_PASSWORD_HASH": string(hash)}
	code, out, errOut := runCLI(t, on, "", "admin-ui")
	if code != 0 || !strings.Contains(out, "https://admin.socket.io") || !strings.Contains(out, "Server URL  http://web-1:4123") ||
		!strings.Contains(out, "Username    admin") || !strings.Contains(out, "npm pack @socket.io/admin-ui@0.5.1") {
		t.Errorf("exit %d, stdout:\n%s", code, out)
	}
	if errOut != "" {
		t.Errorf("stderr with everything set: %q", errOut)
	}
	code, out, _ = runCLI(t, on, "", "admin-ui", "--json", "--url", "https://rt.example.com")
	var info adminUIInfo
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if !info.Enabled || !info.HasPassword || info.ServerURL != "https://rt.example.com" || info.Namespace != "/admin" || !info.PageOriginOK {
		t.Errorf("--json: %+v", info)
	}
	if strings.Contains(out, string(hash)) {
		t.Error("admin-ui printed the password hash")
	}

	off := map[string]string{"FRUTOS_HOME": t.TempDir(), "FRUTOS_CORS_ORIGINS": "https://app.example.com"}
	code, _, errOut = runCLI(t, off, "", "admin-ui")
	if code != 0 || !strings.Contains(errOut, "the Admin UI is off") || !strings.Contains(errOut, "cors.origins does not allow https://admin.socket.io") {
		t.Errorf("off: exit %d, stderr %q", code, errOut)
	}

	code, out, errOut = runCLI(t, nil, "s3cret\n", "admin-ui", "hash")
	if code != 0 || bcrypt.CompareHashAndPassword([]byte(strings.TrimSpace(out)), []byte("s3cret")) != nil {
		t.Errorf("hash: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, nil, "", "admin-ui", "hash"); code != 2 || !strings.Contains(errOut, "no password on stdin") {
		t.Errorf("hash of nothing: exit %d, %q", code, errOut)
	}
}
