package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
	"github.com/frutos/frutos/internal/testutil/eventlog"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// The nginx configuration of docs/multi-host.md, as written (only the
// addresses become loopback ones), in front of two frutos daemons on one
// Redis: long-polling clients (a new connection per request) and websocket
// clients from many client addresses all connect, never see "Session ID
// unknown", land on both hosts, and receive an emit made on one host.
func TestNginxInFrontOfTwoHosts(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not installed (apt-get install -y nginx): the documented configuration is not checked")
	}
	const clients = 40 // of each transport
	srv := redistest.Start(t)
	hosts := []*cli{newCLI(t, srv.URL()), newCLI(t, srv.URL())}
	for i, h := range hosts {
		h.env = append(h.env, fmt.Sprintf("FRUTOS_NODE_NAME=web-%d", i+1))
	}
	portA, portB := redistest.FreePort(t), redistest.FreePort(t)
	hosts[0].ok("start", "--instances", "2", "--port", strconv.Itoa(portA))
	hosts[1].ok("start", "--instances", "2", "--port", strconv.Itoa(portB))
	front := startNginx(t, nginx, map[string]string{
		"10.0.0.11:3000": fmt.Sprintf("127.0.0.1:%d", portA),
		"10.0.0.12:3000": fmt.Sprintf("127.0.0.1:%d", portB),
	})

	events := make([]*eventlog.Recorder, 2*clients)
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i := range 2 * clients {
		events[i] = eventlog.New()
		transport, src := sioclient.Polling, net.IPv4(127, 0, 1, byte(10+i))
		if i >= clients {
			transport, src = sioclient.Websocket, net.IPv4(127, 0, 2, byte(10+i))
		}
		tok, err := jwtauth.Mint("lifecycle-secret", "u"+strconv.Itoa(i), "student", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, err := sioclient.Dial(ctx, sioclient.Options{URL: front, Transport: transport, Auth: map[string]any{"token": tok},
				NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}, OnEvent: events[i].On})
			if err != nil {
				errs <- fmt.Errorf("%s client from %s: %w", transport, src, err)
				return
			}
			t.Cleanup(func() { c.Close() })
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	conns := func(h *cli) int {
		n := 0
		for _, w := range h.status().Workers {
			n += w.Connections
		}
		return n
	}
	var a, b int
	eventlog.WaitFor(t, 20*time.Second, "every client counted by its host", func() bool {
		a, b = conns(hosts[0]), conns(hosts[1])
		return a+b == 2*clients
	})
	if a == 0 || b == 0 {
		t.Errorf("nginx sent every client to one host: %d and %d", a, b)
	}
	t.Logf("clients per host: %d and %d", a, b)

	hosts[1].ok("emit", "all", "sistema_mantenimiento", `{"minutos": 10}`)
	for i, ev := range events {
		if got := ev.WaitN(t, "sistema_mantenimiento", 1, 20*time.Second); len(got) != 1 {
			t.Errorf("client %d got %d events", i, len(got))
		}
	}

	// The fleet view sees both hosts through the same Redis.
	var fleet control.Fleet
	if err := json.Unmarshal([]byte(hosts[0].ok("status", "--all-hosts", "--json")), &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet.Hosts) != 2 || fleet.Hosts[0].Name != "web-1" || fleet.Hosts[1].Name != "web-2" ||
		fleet.Hosts[0].State != control.HostUp || fleet.Hosts[1].State != control.HostUp {
		t.Errorf("fleet: %+v", fleet.Hosts)
	}
	t.Logf("status --all-hosts:\n%s", hosts[0].ok("status", "--all-hosts"))
}

// startNginx runs nginx in the foreground with the server block of
// docs/multi-host.md, its addresses replaced, on a free loopback port, and
// returns its URL.
func startNginx(t *testing.T, nginx string, replace map[string]string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/multi-host.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```nginx\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("no ```nginx block in docs/multi-host.md")
	}
	port := redistest.FreePort(t)
	replace["listen 80;"] = fmt.Sprintf("listen 127.0.0.1:%d;", port)
	for from, to := range replace {
		if !strings.Contains(block, from) {
			t.Fatalf("the documented nginx configuration no longer has %q", from)
		}
		block = strings.ReplaceAll(block, from, to)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s}
`, dir, block)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(nginx, "-t", "-p", dir, "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, "-p", dir, "-c", path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM: the master stops its worker, then exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("nginx (pid %d) did not stop on SIGTERM", cmd.Process.Pid)
			_ = cmd.Process.Kill()
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventlog.WaitFor(t, 10*time.Second, "nginx answering /healthz", func() bool {
		resp, err := http.Get(url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return url
}
