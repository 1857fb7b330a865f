package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/frutos/frutos/control"
)

// server is one side of the comparison.
type server interface {
	Name() string
	Start(ctx context.Context) error
	URL() string
	// PIDs are the worker processes and the process in front of them
	// (the frutos daemon, PM2's God daemon: it accepts the connections in
	// cluster mode).
	PIDs(ctx context.Context) (workers []int, master int, err error)
	Stop()
}

// frutosServer is `frutos start --instances N` with its own state home.
type frutosServer struct {
	h         *harness
	adapter   string // redis.adapter; "" for the default
	instances int
	port      int
	home      string
	config    string
}

func newFrutos(h *harness, instances int) *frutosServer {
	dir := filepath.Join(h.tmp, fmt.Sprintf("frutos-%d", instances))
	return &frutosServer{h: h, instances: instances, port: freePort(), home: filepath.Join(dir, "home"),
		config: filepath.Join(dir, "frutos.yaml")}
}

func (s *frutosServer) Name() string {
	name := "frutos"
	if s.adapter != "" {
		name += " " + s.adapter
	}
	if s.h.noRecovery {
		name += ", recovery off"
	}
	return fmt.Sprintf("%s (%d workers)", name, s.instances)
}
func (s *frutosServer) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

func (s *frutosServer) env() []string {
	env := append(os.Environ(), "FRUTOS_HOME="+s.home, "FRUTOS_AUTH_SECRET="+s.h.secret, "REDIS_URL="+s.h.redisURL)
	if s.adapter != "" {
		env = append(env, "FRUTOS_REDIS_ADAPTER="+s.adapter)
	}
	return env
}

func (s *frutosServer) Start(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(s.config), 0o700); err != nil {
		return err
	}
	// The default ceiling of 10,000 connections per worker would stop a
	// 15,000-connection run on one worker: lift it, as an operator sizing
	// a box would.
	cfg := "host: 127.0.0.1\nlimits:\n  max_connections: 0\n"
	if s.h.noRecovery {
		cfg += "recovery:\n  enabled: false\n"
	}
	if err := os.WriteFile(s.config, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, s.h.frutos, "start", "--config", s.config, "--instances", strconv.Itoa(s.instances),
		"--port", strconv.Itoa(s.port))
	cmd.Env = s.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("frutos start: %v: %s", err, out)
	}
	return waitHTTP(ctx, s.URL())
}

func (s *frutosServer) PIDs(ctx context.Context) ([]int, int, error) {
	cmd := exec.CommandContext(ctx, s.h.frutos, "status", "--json")
	cmd.Env = s.env()
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("frutos status: %w", err)
	}
	var st control.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, 0, err
	}
	var pids []int
	for _, w := range st.Workers {
		if w.PID > 0 {
			pids = append(pids, w.PID)
		}
	}
	return pids, st.Daemon.PID, nil
}

func (s *frutosServer) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.h.frutos, "kill")
	cmd.Env = s.env()
	_ = cmd.Run()
}

// statusCommand is the CLI round trip measured against `pm2 jlist`.
func (s *frutosServer) statusCommand(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.h.frutos, "status", "--json")
	cmd.Env = s.env()
	return cmd
}

// nodeServer is bench/node/server.js under PM2 cluster mode, with its own
// PM2_HOME.
type nodeServer struct {
	h         *harness
	instances int
	port      int
	pm2Home   string
}

func newNode(h *harness, instances int) *nodeServer {
	return &nodeServer{h: h, instances: instances, port: freePort(),
		pm2Home: filepath.Join(h.tmp, fmt.Sprintf("pm2-%d", instances))}
}

func (s *nodeServer) Name() string {
	return fmt.Sprintf("Node original (PM2 cluster, %d instances)", s.instances)
}
func (s *nodeServer) URL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

func (s *nodeServer) pm2(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.h.nodeDir, "node_modules", ".bin", "pm2"), args...)
	cmd.Dir = s.h.nodeDir
	cmd.Env = append(os.Environ(), "PM2_HOME="+s.pm2Home, "INSTANCES="+strconv.Itoa(s.instances),
		"PORT="+strconv.Itoa(s.port), "HOST=127.0.0.1", "REDIS_URL="+s.h.redisURL, "FRUTOS_AUTH_SECRET="+s.h.secret)
	return cmd
}

func (s *nodeServer) Start(ctx context.Context) error {
	if out, err := s.pm2(ctx, "start", "ecosystem.config.js").CombinedOutput(); err != nil {
		return fmt.Errorf("pm2 start: %v: %s", err, out)
	}
	return waitHTTP(ctx, s.URL())
}

type pm2Proc struct {
	PID    int `json:"pid"`
	PM2Env struct {
		Status string `json:"status"`
	} `json:"pm2_env"`
}

func (s *nodeServer) PIDs(ctx context.Context) ([]int, int, error) {
	out, err := s.pm2(ctx, "jlist").Output()
	if err != nil {
		return nil, 0, fmt.Errorf("pm2 jlist: %w", err)
	}
	// pm2 may print notices before the JSON.
	if i := bytes.IndexByte(out, '['); i > 0 {
		out = out[i:]
	}
	var procs []pm2Proc
	if err := json.Unmarshal(out, &procs); err != nil {
		return nil, 0, fmt.Errorf("pm2 jlist: %w", err)
	}
	var pids []int
	for _, p := range procs {
		if p.PID > 0 {
			pids = append(pids, p.PID)
		}
	}
	b, _ := os.ReadFile(filepath.Join(s.pm2Home, "pm2.pid"))
	god, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pids, god, nil
}

func (s *nodeServer) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.pm2(ctx, "kill").Run()
}

func (s *nodeServer) statusCommand(ctx context.Context) *exec.Cmd { return s.pm2(ctx, "jlist") }

// waitHTTP waits until the server answers an Engine.IO handshake.
func waitHTTP(ctx context.Context, base string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/socket.io/?EIO=4&transport=polling", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New(base + " did not answer a handshake within 30s")
}
