package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

// monit's hosts view reads the registry from the Redis that status
// --all-hosts would use, and says why when there is none.
func TestMonitFleetReader(t *testing.T) {
	srv := redistest.Start(t)
	home := t.TempDir()
	env := map[string]string{"FRUTOS_HOME": home}
	f := newFactory(&IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}, func(k string) string { return env[k] })
	r := &fleetReader{f: f}
	defer r.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if _, err := r.read(ctx); err == nil || !strings.Contains(err.Error(), "no Redis URL is configured") {
		t.Fatalf("without Redis: %v", err)
	}
	env["REDIS_URL"] = srv.URL()
	fleet, err := r.read(ctx)
	if err != nil || fleet.Key != "socket.io-frutos:hosts" || fleet.Redis != srv.URL() || len(fleet.Hosts) != 0 {
		t.Fatalf("with REDIS_URL: %+v, %v", fleet, err)
	}
	srv.Stop()
	if _, err := r.read(ctx); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Redis stopped: %v", err)
	}
}
