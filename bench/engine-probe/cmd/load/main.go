// load: opens N Engine.IO-v4-like websocket connections (gorilla client)
// at a paced rate with bounded handshakes in flight, spread over several
// source addresses; holds them idle; triggers broadcasts and targeted emits
// through the server's control port and checks every client received them;
// closes everything. Every phase has a deadline: the process always ends.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"probe/internal/stats"
)

var (
	wsAddr   = flag.String("ws", "127.0.0.1:8201", "server websocket address")
	ctlAddr  = flag.String("ctl", "127.0.0.1:9201", "server control address")
	n        = flag.Int("n", 10000, "connections")
	rate     = flag.Int("rate", 2000, "connection attempts per second")
	inflight = flag.Int("inflight", 500, "max handshakes in flight")
	srcs     = flag.String("src", "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5", "source addresses")
	idle     = flag.Duration("idle", 20*time.Second, "idle hold after the ramp")
	sizes    = flag.String("bcast", "100,1024", "broadcast payload sizes (bytes)")
	nEmits   = flag.Int("emits", 20000, "targeted emits")
	label    = flag.String("label", "run", "label for the result file")
	outDir   = flag.String("out", "results", "directory for result JSON")
)

type client struct {
	c *websocket.Conn
}

var (
	opened, pongs, emitsGot, readErrs atomic.Int64
	bMu                               sync.Mutex
	bCount                            = map[int]*atomic.Int64{}
	bLast                             = map[int]*atomic.Int64{}
)

func counterFor(size int) (*atomic.Int64, *atomic.Int64) {
	bMu.Lock()
	defer bMu.Unlock()
	if bCount[size] == nil {
		bCount[size], bLast[size] = new(atomic.Int64), new(atomic.Int64)
	}
	return bCount[size], bLast[size]
}

func atomicMax(a *atomic.Int64, v int64) {
	for {
		o := a.Load()
		if v <= o || a.CompareAndSwap(o, v) {
			return
		}
	}
}

var emitLast atomic.Int64

func reader(c *websocket.Conn) {
	first := true
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			readErrs.Add(1)
			return
		}
		now := time.Now().UnixNano()
		switch {
		case first:
			first = false
			if bytes.HasPrefix(msg, []byte(`0{"sid"`)) {
				opened.Add(1)
				// one Engine.IO ping to check the server's read path
				_ = c.WriteMessage(websocket.TextMessage, []byte("2"))
			}
		case len(msg) == 1 && msg[0] == '3':
			pongs.Add(1)
		case bytes.HasPrefix(msg, []byte("4B")):
			cnt, last := counterFor(len(msg))
			cnt.Add(1)
			atomicMax(last, now)
		case bytes.HasPrefix(msg, []byte("42")):
			emitsGot.Add(1)
			atomicMax(&emitLast, now)
		}
	}
}

func getStats(gc bool) stats.Snapshot {
	u := "http://" + *ctlAddr + "/stats"
	if gc {
		u += "?gc=1"
	}
	resp, err := http.Get(u)
	if err != nil {
		log.Fatalf("stats: %v", err)
	}
	defer resp.Body.Close()
	var s stats.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		log.Fatalf("stats decode: %v", err)
	}
	return s
}

func post(path string, v any) {
	resp, err := http.Post("http://"+*ctlAddr+path, "text/plain", nil)
	if err != nil {
		log.Fatalf("post %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		log.Fatalf("post %s: %v: %s", path, err, b)
	}
}

func waitFor(cond func() bool, limit time.Duration) bool {
	dl := time.Now().Add(limit)
	for time.Now().Before(dl) {
		if cond() {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return cond()
}

type bcastOut struct {
	Server      stats.BroadcastResult `json:"server"`
	Received    int64                 `json:"received"`
	LastAfterMs float64               `json:"last_received_after_loop_start_ms"`
	AllReceived bool                  `json:"all_received"`
}

type result struct {
	Label                 string                    `json:"label"`
	Conns                 int                       `json:"connected"`
	Failed                int64                     `json:"failed"`
	Opened                int64                     `json:"opened"`
	Pongs                 int64                     `json:"pongs"`
	RampSec               float64                   `json:"ramp_s"`
	ConnectRate           float64                   `json:"connect_rate_per_s"`
	HandshakeP50          float64                   `json:"handshake_p50_ms"`
	HandshakeP99          float64                   `json:"handshake_p99_ms"`
	HandshakeP90          float64                   `json:"handshake_p90_ms"`
	HandshakeP999         float64                   `json:"handshake_p999_ms"`
	HandshakeMax          float64                   `json:"handshake_max_ms"`
	Stats                 map[string]stats.Snapshot `json:"stats"`
	PerConn               map[string]float64        `json:"per_conn"`
	Broadcasts            []bcastOut                `json:"broadcasts"`
	Emits                 stats.EmitsResult         `json:"emits"`
	EmitsReceived         int64                     `json:"emits_received"`
	EmitsLastMs           float64                   `json:"emits_last_received_after_post_ms"`
	ServerConnsAfterClose int                       `json:"server_conns_after_close"`
}

func main() {
	flag.Parse()
	stats.RaiseNofile()
	res := result{Label: *label, Stats: map[string]stats.Snapshot{}, PerConn: map[string]float64{}}
	res.Stats["baseline"] = getStats(false)

	var addrs []*net.TCPAddr
	for _, s := range strings.Split(*srcs, ",") {
		addrs = append(addrs, &net.TCPAddr{IP: net.ParseIP(strings.TrimSpace(s))})
	}
	url := "ws://" + *wsAddr + "/socket.io/?EIO=4&transport=websocket"

	clients := make([]*websocket.Conn, *n)
	lat := make([]time.Duration, *n)
	var failed atomic.Int64
	sem := make(chan struct{}, *inflight)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(*rate)
	// sample the server during the ramp for transient goroutines/stacks
	var peak stats.Snapshot
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-t.C:
				s := getStats(false)
				if s.Goroutines > peak.Goroutines {
					peak.Goroutines = s.Goroutines
				}
				if s.StackInuse > peak.StackInuse {
					peak.StackInuse = s.StackInuse
				}
				if s.RSS > peak.RSS {
					peak.RSS = s.RSS
				}
			}
		}
	}()
	start := time.Now()
	for i := 0; i < *n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			d := websocket.Dialer{
				HandshakeTimeout: 10 * time.Second,
				ReadBufferSize:   2048,
				WriteBufferSize:  256,
				NetDialContext: (&net.Dialer{
					LocalAddr: addrs[i%len(addrs)],
					Timeout:   10 * time.Second,
				}).DialContext,
			}
			t0 := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c, _, err := d.DialContext(ctx, url, nil)
			cancel()
			if err != nil {
				if failed.Add(1) <= 5 {
					log.Printf("dial %d: %v", i, err)
				}
				return
			}
			lat[i] = time.Since(t0)
			clients[i] = c
			go reader(c)
		}(i)
	}
	wg.Wait()
	ramp := time.Since(start)
	close(stopSampling)
	<-sampled
	res.Stats["ramp_peak"] = peak
	for _, c := range clients {
		if c != nil {
			res.Conns++
		}
	}
	res.Failed = failed.Load()
	res.RampSec = ramp.Seconds()
	res.ConnectRate = float64(res.Conns) / ramp.Seconds()
	var ls []time.Duration
	for _, l := range lat {
		if l > 0 {
			ls = append(ls, l)
		}
	}
	sort.Slice(ls, func(a, b int) bool { return ls[a] < ls[b] })
	if len(ls) > 0 {
		res.HandshakeP50 = float64(ls[len(ls)/2].Microseconds()) / 1000
		res.HandshakeP99 = float64(ls[len(ls)*99/100].Microseconds()) / 1000
		res.HandshakeP90 = float64(ls[len(ls)*90/100].Microseconds()) / 1000
		res.HandshakeP999 = float64(ls[len(ls)*999/1000].Microseconds()) / 1000
		res.HandshakeMax = float64(ls[len(ls)-1].Microseconds()) / 1000
	}
	waitFor(func() bool { return opened.Load() >= int64(res.Conns) && pongs.Load() >= int64(res.Conns) }, 15*time.Second)
	res.Opened, res.Pongs = opened.Load(), pongs.Load()
	log.Printf("[%s] connected %d failed %d in %.2fs (%.0f/s), opened %d pongs %d; handshake ms p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f", *label, res.Conns, res.Failed, res.RampSec, res.ConnectRate, res.Opened, res.Pongs,
		res.HandshakeP50, res.HandshakeP90, res.HandshakeP99, res.HandshakeP999, res.HandshakeMax)
	res.Stats["after_ramp"] = getStats(false)

	time.Sleep(*idle)
	after := getStats(false)
	res.Stats["after_idle"] = after
	res.Stats["after_idle_gc"] = getStats(true)
	base := res.Stats["baseline"]
	if res.Conns > 0 {
		k := float64(res.Conns)
		res.PerConn["rss_kb"] = (float64(after.RSS) - float64(base.RSS)) / k / 1024
		res.PerConn["heap_kb"] = (float64(after.HeapInuse) - float64(base.HeapInuse)) / k / 1024
		res.PerConn["heap_after_gc_kb"] = (float64(res.Stats["after_idle_gc"].HeapInuse) - float64(base.HeapInuse)) / k / 1024
		res.PerConn["stack_kb"] = (float64(after.StackInuse) - float64(base.StackInuse)) / k / 1024
		res.PerConn["sys_kb"] = (float64(after.Sys) - float64(base.Sys)) / k / 1024
		res.PerConn["goroutines"] = float64(after.Goroutines-base.Goroutines) / k
	}
	log.Printf("[%s] ramp peak: goroutines %d stack %.1f MB RSS %.1f MB", *label, peak.Goroutines, float64(peak.StackInuse)/1048576, float64(peak.RSS)/1048576)
	log.Printf("[%s] per conn: RSS %.2f KB heap %.2f KB (%.2f after GC) stack %.2f KB goroutines %.3f; baseline RSS %.1f MB",
		*label, res.PerConn["rss_kb"], res.PerConn["heap_kb"], res.PerConn["heap_after_gc_kb"], res.PerConn["stack_kb"], res.PerConn["goroutines"], float64(base.RSS)/1048576)

	for _, s := range strings.Split(*sizes, ",") {
		var size int
		fmt.Sscan(s, &size)
		cnt, last := counterFor(size)
		var b bcastOut
		post(fmt.Sprintf("/broadcast?n=%d", size), &b.Server)
		b.AllReceived = waitFor(func() bool { return cnt.Load() >= int64(res.Conns) }, 15*time.Second)
		b.Received = cnt.Load()
		b.LastAfterMs = float64(last.Load()-b.Server.StartUnixNs) / 1e6
		res.Broadcasts = append(res.Broadcasts, b)
		log.Printf("[%s] broadcast %d B: loop %.2f ms (cpu %d us, user %d us, queued %d, errors %d), received %d/%d, last after %.2f ms",
			*label, size, float64(b.Server.LoopNanos)/1e6, b.Server.CPUMicros, b.Server.UserMicros, b.Server.Queued, b.Server.Errors, b.Received, res.Conns, b.LastAfterMs)
		time.Sleep(time.Second)
	}
	res.Stats["after_broadcasts"] = getStats(false)

	if *nEmits > 0 {
		t0 := time.Now()
		post(fmt.Sprintf("/emits?count=%d", *nEmits), &res.Emits)
		waitFor(func() bool { return emitsGot.Load() >= int64(*nEmits) }, 15*time.Second)
		res.EmitsReceived = emitsGot.Load()
		res.EmitsLastMs = float64(emitLast.Load()-t0.UnixNano()) / 1e6
		log.Printf("[%s] emits %d: %.2f ms, %.0f/s, cpu %.2f us/emit (user %.2f), received %d, last after %.2f ms",
			*label, *nEmits, float64(res.Emits.Nanos)/1e6, res.Emits.PerSecond, res.Emits.PerEmitUs, res.Emits.UserPerEmitUs, res.EmitsReceived, res.EmitsLastMs)
	}
	res.Stats["after_emits"] = getStats(false)

	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
	waitFor(func() bool { return getStats(false).Conns == 0 }, 15*time.Second)
	time.Sleep(2 * time.Second)
	res.Stats["after_close"] = getStats(false)
	res.ServerConnsAfterClose = res.Stats["after_close"].Conns
	log.Printf("[%s] after close: server conns %d goroutines %d", *label, res.ServerConnsAfterClose, res.Stats["after_close"].Goroutines)

	_ = os.MkdirAll(*outDir, 0o755)
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(fmt.Sprintf("%s/%s.json", *outDir, *label), b, 0o644); err != nil {
		log.Print(err)
	}
}
