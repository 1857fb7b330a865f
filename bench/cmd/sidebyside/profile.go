package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/frutos/frutos/control"
	"github.com/frutos/frutos/internal/workerproto"
)

// probe is what a run learns from inside a frutos worker (Node's workers
// have no such endpoint): its goroutines and sessions at a moment, and a
// profile saved for RESULTS.md's readers.
type probe struct {
	Goroutines  int `json:"goroutines"`
	Connections int `json:"connections"`
}

// workerSocket is the private socket of frutos's first worker.
func (s *frutosServer) workerSocket(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, s.h.frutos, "status", "--json")
	cmd.Env = s.env()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("frutos status: %w", err)
	}
	var st control.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return "", err
	}
	if len(st.Workers) == 0 {
		return "", fmt.Errorf("no worker")
	}
	w := st.Workers[0]
	return workerproto.SocketPath(workerproto.RunDir(s.home, st.Daemon.PID), workerproto.Tag(w.ID, w.Generation)), nil
}

// stats reads a worker's goroutines and sessions.
func workerProbe(ctx context.Context, sock string) (probe, error) {
	c := workerproto.NewClient(sock)
	defer c.Close()
	st, err := c.Stats(ctx)
	if err != nil {
		return probe{}, err
	}
	return probe{Goroutines: st.Goroutines, Connections: st.Connections}, nil
}

// saveProfile writes one of a worker's pprof profiles (path and query after
// /debug/pprof/) to file.
func saveProfile(ctx context.Context, sock, profile, file string) error {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://worker"+workerproto.AdminPrefix+"/debug/pprof/"+profile, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof %s: HTTP %d", profile, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// during runs fn after delay, unless ctx ends first; wait waits for it.
func during(ctx context.Context, delay time.Duration, fn func(context.Context)) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		fn(ctx)
	}()
	return func() { <-done }
}
