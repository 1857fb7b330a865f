// nbiosrv: lesismal/nbio v1.6.8, nbhttp.Engine (IOModNonBlocking) with its
// websocket.Upgrader behind a plain http.Handler.
//
// -accept=direct : the idiomatic way, nbhttp's own listener.
// -accept=handoff: the simulated front door hands a raw fd + pre-read head
//
//	over SCM_RIGHTS; we wrap the fd in a net.Conn (net.FileConn), give it
//	to engine.AddConnNonTLSNonBlocking (which dups it again into an
//	*nbio.Conn and closes ours) and replay the head into the nbhttp.Parser
//	it attached.
//
// -write=raw (default) writes the prebuilt broadcast frame with the
// underlying *nbio.Conn.Write (no copy unless the kernel refuses bytes);
// -write=msg uses websocket.Conn.WriteMessage (frames a fresh pooled copy per
// connection). Targeted emits always use WriteMessage.
package main

import (
	"flag"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"

	"probe/internal/frontdoor"
	"probe/internal/stats"
)

type entry struct{ idx int }

var (
	reg struct {
		mu   sync.Mutex
		list []*websocket.Conn
	}
	writeMode string
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8202", "websocket listen address")
	ctl := flag.String("ctl", "127.0.0.1:9202", "control/stats listen address")
	accept := flag.String("accept", "direct", "direct (nbhttp listener) or handoff (front door + SCM_RIGHTS + pre-read head)")
	npoller := flag.Int("pollers", runtime.GOMAXPROCS(0), "nbio poller goroutines (nbio default is NumCPU/4, min 1)")
	keepalive := flag.Duration("keepalive", 0, "websocket read deadline (nbio default 120s; 0 = none, Engine.IO has its own ping timer)")
	flag.StringVar(&writeMode, "write", "raw", "broadcast write: raw (prebuilt frame via nbio.Conn.Write) or msg (websocket.Conn.WriteMessage)")
	flag.Parse()
	nofile := stats.RaiseNofile()
	logging.SetLevel(logging.LevelWarn)

	u := websocket.NewUpgrader()
	u.KeepaliveTime = *keepalive
	u.CheckOrigin = func(*http.Request) bool { return true }
	u.OnOpen(func(c *websocket.Conn) {
		if err := c.WriteMessage(websocket.TextMessage, []byte(stats.OpenPacket)); err != nil {
			return
		}
		e := &entry{}
		c.SetSession(e)
		reg.mu.Lock()
		e.idx = len(reg.list)
		reg.list = append(reg.list, c)
		reg.mu.Unlock()
	})
	u.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		if mt == websocket.TextMessage && len(data) == 1 && data[0] == '2' {
			_ = c.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	})
	u.OnClose(func(c *websocket.Conn, err error) {
		e, _ := c.Session().(*entry)
		if e == nil {
			return
		}
		reg.mu.Lock()
		i := e.idx
		if i >= 0 && i < len(reg.list) && reg.list[i] == c {
			last := len(reg.list) - 1
			reg.list[i] = reg.list[last]
			reg.list[i].Session().(*entry).idx = i
			reg.list[last] = nil
			reg.list = reg.list[:last]
		}
		e.idx = -1
		reg.mu.Unlock()
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io/", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("EIO") != "4" || q.Get("transport") != "websocket" {
			http.Error(w, "bad engine.io request", 400)
			return
		}
		if _, err := u.Upgrade(w, r, nil); err != nil {
			return
		}
	})

	conf := nbhttp.Config{
		Network:                 "tcp",
		Handler:                 mux,
		NPoller:                 *npoller,
		MaxLoad:                 1 << 20, // default 10k: the 10,001st conn is refused
		ReleaseWebsocketPayload: true,
	}
	if *accept == "direct" {
		conf.Addrs = []string{*addr}
	}
	engine := nbhttp.NewEngine(conf)
	u.Engine = engine
	if err := engine.Start(); err != nil {
		log.Fatal(err)
	}

	switch *accept {
	case "direct":
	case "handoff":
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			log.Fatal(err)
		}
		adopt := func(fd int, head []byte) {
			f := os.NewFile(uintptr(fd), "handoff")
			nc, err := net.FileConn(f) // dup #1 (into Go's netpoller, briefly)
			f.Close()
			if err != nil {
				return
			}
			hc := &nbhttp.Conn{Conn: nc}
			// dup #2 into an *nbio.Conn, closes nc, registers a Parser,
			// adds the fd to a poller. No error is returned to us.
			engine.AddConnNonTLSNonBlocking(hc, nil, func() {})
			if hc.Parser == nil {
				return
			}
			// Replay the bytes the front door already read. Parser.Parse
			// takes the parser's mutex, so racing the poller is safe; the
			// client sends nothing more before the 101, so order holds.
			if err := hc.Parser.Parse(head); err != nil {
				hc.Conn.Close()
			}
		}
		if err := frontdoor.Start(ln, adopt); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown -accept %q", *accept)
	}

	stats.Serve(*ctl, stats.Hooks{Conns: count, Broadcast: broadcast, Emits: emits})
	log.Printf("nbiosrv ws=%s ctl=%s accept=%s pollers=%d keepalive=%v write=%s nofile=%d", *addr, *ctl, *accept, *npoller, *keepalive, writeMode, nofile)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func count() int {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return len(reg.list)
}

func snapshot() []*websocket.Conn {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return append([]*websocket.Conn(nil), reg.list...)
}

func broadcast(n int) stats.BroadcastResult {
	payload := stats.BroadcastPayload(n)
	frame := stats.TextFrame(payload)
	list := snapshot()
	res := stats.BroadcastResult{Size: len(frame), Payload: n, Conns: len(list)}
	cpu0, user0 := stats.CPUNow(), stats.CPUUserNow()
	t0 := time.Now()
	res.StartUnixNs = t0.UnixNano()
	for _, c := range list {
		var err error
		if writeMode == "msg" {
			err = c.WriteMessage(websocket.TextMessage, payload)
		} else {
			_, err = c.Conn.Write(frame) // *nbio.Conn: direct write, copies only the unsent tail
		}
		if err != nil {
			res.Errors++
		} else {
			res.Written += int64(len(frame))
		}
	}
	res.LoopNanos = time.Since(t0).Nanoseconds()
	res.CPUMicros = stats.CPUNow() - cpu0
	res.UserMicros = stats.CPUUserNow() - user0
	return res
}

func emits(count int) stats.EmitsResult {
	list := snapshot()
	res := stats.EmitsResult{Count: count}
	if len(list) == 0 {
		return res
	}
	cpu0, user0 := stats.CPUNow(), stats.CPUUserNow()
	t0 := time.Now()
	for i := 0; i < count; i++ {
		c := list[rand.IntN(len(list))]
		if err := c.WriteMessage(websocket.TextMessage, stats.EmitPayload); err != nil {
			res.Errors++
		} else {
			res.Written += int64(2 + len(stats.EmitPayload))
		}
	}
	res.Nanos = time.Since(t0).Nanoseconds()
	res.CPUMicros = stats.CPUNow() - cpu0
	res.UserMicros = stats.CPUUserNow() - user0
	res.PerEmitUs = float64(res.CPUMicros) / float64(count)
	res.UserPerEmitUs = float64(res.UserMicros) / float64(count)
	res.PerSecond = float64(count) / (float64(res.Nanos) / 1e9)
	return res
}
