package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// compareAdapters runs the emit sweep against frutos on each of its Redis
// adapters (pubsub, streams), on a Redis flushed in between, and writes
// the table the README quotes: delivery latency, losses, the workers' and
// Redis's CPU during the emits, and Redis's memory after each rate (with
// streams: the stream at its MAXLEN and the sessions of the clients).
func compareAdapters(ctx context.Context, h *harness, p plan, out string) error {
	started := time.Now()
	rc := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(h.redisURL, "redis://")})
	defer rc.Close()
	type side struct {
		Adapter string      `json:"adapter"`
		Runs    []runResult `json:"runs"`
	}
	var sides []side
	for _, ad := range []string{"pubsub", "streams"} {
		if err := rc.FlushAll(ctx).Err(); err != nil {
			return err
		}
		srv := newFrutos(h, p.instances)
		srv.adapter = ad
		dir := filepath.Join(h.tmp, "frutos-"+ad)
		srv.home, srv.config = filepath.Join(dir, "home"), filepath.Join(dir, "frutos.yaml")
		if err := h.start(ctx, srv); err != nil {
			return err
		}
		sd := side{Adapter: ad}
		for _, rate := range p.emitRates {
			h.pause(ctx, srv)
			dur := p.emitFor + time.Duration(float64(p.emitConns)/2000*float64(time.Second)) + 3*time.Second
			r := h.measure(ctx, srv, fmt.Sprintf("emit %d/s", rate), "--conns", strconv.Itoa(p.emitConns),
				"--rate", "2000", "--duration", dur.String(), "--emit-rate", strconv.Itoa(rate), "--broadcast=false")
			if mem, err := rc.InfoMap(ctx, "memory").Result(); err == nil {
				v, _ := strconv.ParseFloat(mem["Memory"]["used_memory"], 64)
				r.RedisMemMiB = v / (1 << 20)
			}
			sd.Runs = append(sd.Runs, r)
		}
		srv.Stop()
		sides = append(sides, sd)
	}

	m := describeMachine(h)
	var b strings.Builder
	fmt.Fprintf(&b, "# frutos: pubsub vs streams adapter\n\n%s, %d CPUs (%s), %.1f GiB, Go %s, %s. One run, %s; the load tool, Redis and the workers share the machine.\n\n",
		started.UTC().Format("2006-01-02 15:04 UTC"), m.CPUs, m.CPU, m.MemGiB, m.Go, m.Kernel, time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "%d workers, %d websocket clients (one per user), targeted emits to random users for %s through Redis "+
		"(`frutos bench --emit-rate R`, the emitter speaking the workers' protocol: PUBLISH or XADD MAXLEN ~ 10000).\n\n",
		p.instances, p.emitConns, p.emitFor)
	b.WriteString("| emits/s | adapter | sent | delivered | lost | p50 ms | p99 ms | workers CPU % | Redis CPU % | Redis memory MiB | load avg |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, rate := range p.emitRates {
		for _, sd := range sides {
			if i >= len(sd.Runs) {
				continue
			}
			r := sd.Runs[i]
			if r.Error != "" {
				fmt.Fprintf(&b, "| %d | %s | error: %s |||||||||\n", rate, sd.Adapter, r.Error)
				continue
			}
			e := r.Report.Events
			fmt.Fprintf(&b, "| %d | %s | %d | %d | %d | %.2f | %.1f | %.0f | %.0f | %.1f | %.1f |\n", rate, sd.Adapter,
				e.Sent, e.Delivered, e.Lost, e.LatencyMS.P50, e.LatencyMS.P99, r.WorkersCPUPct, r.RedisCPUPct, r.RedisMemMiB, r.LoadAvg)
		}
	}
	b.WriteString("\nCPU is % of one core over the emit phase; Redis memory is `used_memory` after the run (pubsub keeps nothing; streams keeps the stream, trimmed to about 10,000 entries, and one session key per connected client).\n")
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	raw, _ := json.MarshalIndent(sides, "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(out, ".md")+".json", append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "\nwrote %s\n\n", out)
	fmt.Print(b.String())
	return nil
}
