package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"sort"
	"sync/atomic"

	"github.com/frutos/frutos/cluster/engine"
	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/workerproto"
)

// Reasons a new session is refused.
const (
	reasonUnauthorized = "unauthorized"
	reasonOrigin       = "origin"
	reasonFull         = "full"
	reasonDraining     = "draining"
	reasonOrphaned     = "orphaned"
)

var refuseReasons = []string{reasonUnauthorized, reasonOrigin, reasonFull, reasonDraining, reasonOrphaned}

type metrics struct {
	accepted      atomic.Uint64
	refusedBy     [5]atomic.Uint64 // indexed like refuseReasons
	delivered     atomic.Uint64
	clientHandled atomic.Uint64
	clientIgnored atomic.Uint64
	disconnects   [len(engine.Reasons)]atomic.Uint64
	authFailures  [5]atomic.Uint64 // indexed like jwtauth.Codes
}

func (m *metrics) authFailed(code string) {
	for i, c := range jwtauth.Codes {
		if c == code {
			m.authFailures[i].Add(1)
		}
	}
}

func (m *metrics) disconnected(r engine.Reason) {
	for i, known := range engine.Reasons {
		if known == r {
			m.disconnects[i].Add(1)
		}
	}
}

func (m *metrics) refused(reason string) {
	for i, r := range refuseReasons {
		if r == reason {
			m.refusedBy[i].Add(1)
		}
	}
}

// Stats is a worker's state for the daemon, `frutos status` and monit: the
// contract's Stats, with the adapter's whole status.
type Stats = workerproto.Stats[redisadapter.Status]

// Stats takes a snapshot.
func (w *Worker) Stats() Stats {
	st := Stats{
		PID:        os.Getpid(),
		Ready:      w.Ready(),
		Draining:   w.draining.Load(),
		Orphaned:   w.orphaned.Load(),
		UptimeSec:  w.Uptime().Seconds(),
		Transports: map[string]int{"polling": 0, "websocket": 0},
		Accepted:   w.m.accepted.Load(),
		Refused:    map[string]uint64{},
		Delivered:  w.m.delivered.Load(),
		ClientIn:   w.m.clientHandled.Load(),
		ClientIgn:  w.m.clientIgnored.Load(),
		Goroutines: runtime.NumGoroutine(),
		Redis:      w.adapter.Status(),
	}
	st.Connections = w.engine.Count()
	st.Transports["websocket"] = w.engine.CountWebsocket()
	st.Transports["polling"] = max(st.Connections-st.Transports["websocket"], 0)
	st.AuthFailures = map[string]uint64{}
	for i, c := range jwtauth.Codes {
		st.AuthFailures[c] = w.m.authFailures[i].Load()
	}
	st.Disconnects = map[string]uint64{}
	for i, r := range engine.Reasons {
		st.Disconnects[string(r)] = w.m.disconnects[i].Load()
	}
	st.Sockets = w.io.Sockets().Sockets().Len()
	for i, r := range refuseReasons {
		st.Refused[r] = w.m.refusedBy[i].Load()
	}
	st.HeapBytes = heapInUse()
	return st
}

// AdminHandler serves the private endpoints: GET /health (200 when ready,
// 503 otherwise, with the stats as JSON), /stats (JSON), /metrics
// (Prometheus text format) and /debug/pprof/. Serve it on loopback or a
// unix socket only.
func (w *Worker) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(rw http.ResponseWriter, _ *http.Request) {
		st := w.Stats()
		code := http.StatusOK
		if !st.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(rw, code, st)
	})
	mux.HandleFunc("GET "+workerproto.StatsRoute, func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, http.StatusOK, w.Stats())
	})
	// profiles, for operators chasing CPU or memory (private like the rest)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /metrics", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writePrometheus(rw, w.Stats())
	})
	return mux
}

// heapInUse reads the heap's in-use spans from runtime/metrics, which,
// unlike runtime.ReadMemStats, does not stop the world: the daemon asks for
// stats every second.
func heapInUse() uint64 {
	samples := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	rtmetrics.Read(samples)
	var n uint64
	for _, s := range samples {
		if s.Value.Kind() == rtmetrics.KindUint64 {
			n += s.Value.Uint64()
		}
	}
	return n
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_ = json.NewEncoder(rw).Encode(v)
}

// writePrometheus writes the stats in the Prometheus text format.
func writePrometheus(out io.Writer, st Stats) {
	metric := func(name, typ, help string) {
		fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	b2f := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	metric("frutos_worker_ready", "gauge", "1 when the worker takes new sessions.")
	fmt.Fprintf(out, "frutos_worker_ready %d\n", b2f(st.Ready))
	metric("frutos_worker_draining", "gauge", "1 while the worker drains its clients.")
	fmt.Fprintf(out, "frutos_worker_draining %d\n", b2f(st.Draining))
	metric("frutos_worker_orphaned", "gauge", "1 while no daemon holds the worker (it waits out restart.orphan_grace to be adopted).")
	fmt.Fprintf(out, "frutos_worker_orphaned %d\n", b2f(st.Orphaned))
	metric("frutos_connections", "gauge", "Engine.IO sessions by transport.")
	for _, t := range sortedKeys(st.Transports) {
		fmt.Fprintf(out, "frutos_connections{transport=%q} %d\n", t, st.Transports[t])
	}
	metric("frutos_sockets", "gauge", "Connected Socket.IO sockets.")
	fmt.Fprintf(out, "frutos_sockets %d\n", st.Sockets)
	metric("frutos_handshakes_accepted_total", "counter", "Sockets accepted.")
	fmt.Fprintf(out, "frutos_handshakes_accepted_total %d\n", st.Accepted)
	metric("frutos_handshakes_refused_total", "counter", "New sessions refused, by reason.")
	for _, r := range refuseReasons {
		fmt.Fprintf(out, "frutos_handshakes_refused_total{reason=%q} %d\n", r, st.Refused[r])
	}
	metric("frutos_auth_failures_total", "counter", "Handshakes refused as Unauthorized, by the code sent to the client.")
	for _, c := range jwtauth.Codes {
		fmt.Fprintf(out, "frutos_auth_failures_total{code=%q} %d\n", c, st.AuthFailures[c])
	}
	metric("frutos_disconnects_total", "counter", "Sessions ended, by reason.")
	for _, r := range engine.Reasons {
		fmt.Fprintf(out, "frutos_disconnects_total{reason=%q} %d\n", r, st.Disconnects[string(r)])
	}
	metric("frutos_events_delivered_total", "counter", "Events written to clients.")
	fmt.Fprintf(out, "frutos_events_delivered_total %d\n", st.Delivered)
	metric("frutos_client_events_total", "counter", "Events sent by clients, handled or ignored (not on the allow-list).")
	fmt.Fprintf(out, "frutos_client_events_total{result=\"handled\"} %d\n", st.ClientIn)
	fmt.Fprintf(out, "frutos_client_events_total{result=\"ignored\"} %d\n", st.ClientIgn)
	metric("frutos_redis_up", "gauge", "Redis adapter state (1 for the current one).")
	for _, s := range []redisadapter.State{redisadapter.StateConnecting, redisadapter.StateConnected, redisadapter.StateReconnecting, redisadapter.StateDegraded} {
		fmt.Fprintf(out, "frutos_redis_up{state=%q} %d\n", s, b2f(st.Redis.State == s))
	}
	r := st.Redis
	for _, c := range []struct {
		name, help string
		v          uint64
	}{
		{"frutos_redis_published_total", "Messages published to Redis.", r.Published},
		{"frutos_redis_publish_errors_total", "Messages lost to Redis publish errors.", r.PublishErrors},
		{"frutos_redis_dropped_total", "Messages dropped because the publish queue was full.", r.Dropped},
		{"frutos_redis_received_total", "Messages received from Redis.", r.Received},
		{"frutos_redis_malformed_total", "Received messages that could not be decoded.", r.Malformed},
		{"frutos_redis_reconnects_total", "Times the Redis link came back.", r.Reconnects},
		{"frutos_redis_requests_timed_out_total", "Cluster requests that timed out.", r.TimedOut},
		{"frutos_redis_stream_appended_total", "Entries added to the Redis stream (streams adapter).", r.Appended},
		{"frutos_redis_stream_reads_total", "XREAD calls on the stream (streams adapter).", r.StreamReads},
		{"frutos_redis_stream_ranges_total", "Range reads of the stream for restores older than what was read (streams adapter).", r.StreamRanges},
		{"frutos_redis_stream_skipped_total", "Times Redis trimmed stream entries before this worker read them (streams adapter).", r.StreamSkipped},
		{"frutos_sessions_restored_total", "Sessions restored from Redis (streams adapter).", r.Restored},
		{"frutos_sessions_restore_misses_total", "Sessions asked for and not restored (streams adapter).", r.RestoreMisses},
	} {
		metric(c.name, "counter", c.help)
		fmt.Fprintf(out, "%s %d\n", c.name, c.v)
	}
	metric("go_goroutines", "gauge", "Goroutines.")
	fmt.Fprintf(out, "go_goroutines %d\n", st.Goroutines)
	metric("go_memstats_heap_inuse_bytes", "gauge", "Heap in use.")
	fmt.Fprintf(out, "go_memstats_heap_inuse_bytes %d\n", st.HeapBytes)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
