// Package stats serves the /stats endpoint shared by the probe servers and
// a few process helpers (rlimit, getrusage, VmRSS).
package stats

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Snapshot is what GET /stats returns.
type Snapshot struct {
	Conns      int    `json:"conns"`
	Goroutines int    `json:"goroutines"`
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
	RSS        uint64 `json:"rss"` // VmRSS, bytes
	ForcedGC   bool   `json:"forced_gc"`
	CPUUser    int64  `json:"cpu_user_us"`
	CPUSys     int64  `json:"cpu_sys_us"`
}

// Take reads the runtime and /proc values; gc forces a GC first.
func Take(conns int, gc bool) Snapshot {
	if gc {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	u, s := CPU()
	return Snapshot{
		Conns:      conns,
		Goroutines: runtime.NumGoroutine(),
		HeapInuse:  ms.HeapInuse,
		HeapAlloc:  ms.HeapAlloc,
		StackInuse: ms.StackInuse,
		Sys:        ms.Sys,
		NumGC:      ms.NumGC,
		RSS:        VmRSS(),
		ForcedGC:   gc,
		CPUUser:    u,
		CPUSys:     s,
	}
}

// VmRSS returns the resident set size of this process in bytes.
func VmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "VmRSS:") {
			fs := strings.Fields(line)
			if len(fs) >= 2 {
				kb, _ := strconv.ParseUint(fs[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// CPU returns user and system CPU time of the process in microseconds.
func CPU() (user, sys int64) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	return ru.Utime.Sec*1e6 + ru.Utime.Usec, ru.Stime.Sec*1e6 + ru.Stime.Usec
}

// RaiseNofile raises the soft RLIMIT_NOFILE to the hard limit.
func RaiseNofile() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	rl.Cur = rl.Max
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// BroadcastResult is what POST /broadcast returns.
type BroadcastResult struct {
	Size        int   `json:"frame_bytes"` // whole frame, header included
	Payload     int   `json:"payload_bytes"`
	Conns       int   `json:"conns"`
	Written     int64 `json:"bytes_written"` // accepted by write (direct or queued)
	Queued      int   `json:"queued"`        // writes that did not complete in the syscall
	Errors      int   `json:"errors"`
	LoopNanos   int64 `json:"loop_ns"`
	CPUMicros   int64 `json:"cpu_us"`
	UserMicros  int64 `json:"cpu_user_us"`
	StartUnixNs int64 `json:"start_unix_ns"`
}

// EmitsResult is what POST /emits returns.
type EmitsResult struct {
	Count         int     `json:"count"`
	Written       int64   `json:"bytes_written"`
	Errors        int     `json:"errors"`
	Nanos         int64   `json:"elapsed_ns"`
	CPUMicros     int64   `json:"cpu_us"` // user+sys, getrusage before/after
	UserMicros    int64   `json:"cpu_user_us"`
	PerEmitUs     float64 `json:"cpu_us_per_emit"`
	UserPerEmitUs float64 `json:"cpu_user_us_per_emit"`
	PerSecond     float64 `json:"emits_per_s"`
}

// Hooks are the engine-specific parts of the control endpoint.
type Hooks struct {
	Conns     func() int
	Broadcast func(payloadBytes int) BroadcastResult
	Emits     func(count int) EmitsResult
}

// Serve starts the control HTTP server (std net/http) on addr.
func Serve(addr string, h Hooks) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, Take(h.Conns(), r.URL.Query().Get("gc") == "1"))
	})
	mux.HandleFunc("GET /goroutines", func(w http.ResponseWriter, r *http.Request) {
		_ = pprof.Lookup("goroutine").WriteTo(w, 1)
	})
	mux.HandleFunc("GET /heap", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		_ = pprof.Lookup("heap").WriteTo(w, 0)
	})
	mux.HandleFunc("POST /broadcast", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if n < 2 || n > 1<<20 {
			http.Error(w, "n must be 2..1048576", 400)
			return
		}
		writeJSON(w, h.Broadcast(n))
	})
	mux.HandleFunc("POST /emits", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("count"))
		if n < 1 || n > 10_000_000 {
			http.Error(w, "count must be 1..1e7", 400)
			return
		}
		writeJSON(w, h.Emits(n))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil {
			panic(err)
		}
	}()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Engine.IO helpers shared by the servers.

// OpenPacket is the Engine.IO v4 open packet sent after the upgrade.
const OpenPacket = `0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

// BroadcastPayload builds an Engine.IO message packet of exactly n bytes:
// "4B" + 'x' padding (the client recognises it by the prefix and length).
func BroadcastPayload(n int) []byte {
	p := make([]byte, n)
	p[0], p[1] = '4', 'B'
	for i := 2; i < n; i++ {
		p[i] = 'x'
	}
	return p
}

// EmitPayload is the payload of one targeted emit.
var EmitPayload = []byte(`42["msg","hello from the probe"]`)

// CPUNow returns user+sys CPU microseconds.
func CPUNow() int64 { u, s := CPU(); return u + s }

// CPUUserNow returns user CPU microseconds.
func CPUUserNow() int64 { u, _ := CPU(); return u }

// TextFrame builds an unmasked server text frame (FIN set) without any
// websocket library, so the binary-size comparison stays fair.
func TextFrame(p []byte) []byte {
	var h []byte
	switch n := len(p); {
	case n < 126:
		h = []byte{0x81, byte(n)}
	case n <= 0xffff:
		h = []byte{0x81, 126, byte(n >> 8), byte(n)}
	default:
		h = []byte{0x81, 127, 0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(h, p...)
}
