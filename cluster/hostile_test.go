package cluster_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// rawWS opens an Engine.IO websocket and reads the open packet.
func rawWS(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	u := strings.Replace(url, "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	c, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || msg[0] != '0' {
		t.Fatalf("open packet: %q %v", msg, err)
	}
	return c
}

// readUntilClosed reads until the server closes the connection.
func readUntilClosed(c *websocket.Conn, within time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return err
		}
	}
}

func settle(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitFor(t, 15*time.Second, what, func() bool { runtime.GC(); return cond() })
}

// hostileLimits make a worker quick to drop what hostile clients leave:
// a small max payload, quick pings, a short connect timeout.
func hostileLimits(c *configs.Config) {
	c.Limits.MaxPayload = 64 << 10
	// quick enough for a silent client to be dropped within the test,
	// slow enough for a good client to answer on a loaded 2-core machine
	// under -race (300 ms was not: the good client was dropped)
	c.Limits.PingInterval = configs.Duration(time.Second)
	c.Limits.PingTimeout = configs.Duration(2 * time.Second)
	c.Limits.ConnectTimeout = configs.Duration(time.Second)
}

// Hostile clients: garbage, oversized frames, silent clients and a flood of
// handshakes without a token. The worker keeps serving a well-behaved
// client, and goroutines and memory return to where they were.
func TestHostileClients(t *testing.T) {
	rs := redistest.Start(t)
	w := startWorker(t, rs.URL(), hostileLimits)
	_, good := mustDial(t, w.URL, tok("1", "student"))
	runtime.GC()
	baseGoroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse

	t.Run("garbage frames", func(t *testing.T) {
		for _, frame := range []string{"garbage", "4", "42", "42[", "42{\"a\":1}", "4999999999999", "44", "45-[]", "\x00\xff", strings.Repeat("[", 10000)} {
			c := rawWS(t, w.URL)
			_ = c.WriteMessage(websocket.TextMessage, []byte("40{\"token\":\"2|student\"}"))
			_ = c.WriteMessage(websocket.TextMessage, []byte(frame))
			_ = c.WriteMessage(websocket.BinaryMessage, []byte(frame))
			c.Close()
		}
	})
	t.Run("oversized frame", func(t *testing.T) {
		c := rawWS(t, w.URL)
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("40{\"token\":\"3|student\"}"))
		big := "42[\"x\",\"" + strings.Repeat("a", 256<<10) + "\"]"
		_ = c.WriteMessage(websocket.TextMessage, []byte(big))
		if err := readUntilClosed(c, 5*time.Second); err == nil || strings.Contains(err.Error(), "timeout") {
			t.Errorf("a frame over max_payload did not close the connection: %v", err)
		}
	})
	t.Run("silent client", func(t *testing.T) {
		c := rawWS(t, w.URL)
		defer c.Close()
		_ = c.WriteMessage(websocket.TextMessage, []byte("40{\"token\":\"4|student\"}"))
		// never answers the server's pings: closed after interval + timeout
		_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				if strings.Contains(err.Error(), "timeout") {
					t.Fatalf("a client that never answers pings was kept for %v", time.Since(start))
				}
				break
			}
		}
	})
	t.Run("handshakes without a token", func(t *testing.T) {
		const n = 2000
		var wg sync.WaitGroup
		sem := make(chan struct{}, 64)
		var mu sync.Mutex
		refused := 0
		for range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, _, err := dial(t, w.URL, "", nil)
				if err != nil && strings.Contains(err.Error(), "Unauthorized") {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if refused != n {
			t.Errorf("%d of %d tokenless handshakes got Unauthorized", refused, n)
		}
	})

	// the well-behaved client was served throughout
	if err := w.EmitToUser("1", "still-served"); err != nil {
		t.Fatal(err)
	}
	good.WaitN(t, "still-served", 1, 5*time.Second)

	// everything the hostile clients held is released (the refused clients
	// closed their sockets; the connect timeout reaps any left)
	settle(t, "hostile connections gone", func() bool { return w.Stats().Connections == 1 })
	settle(t, "goroutines back to baseline", func() bool { return runtime.NumGoroutine() <= baseGoroutines+5 })
	settle(t, "heap back to baseline", func() bool {
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse < baseHeap+8<<20
	})
	t.Logf("goroutines %d -> %d; heap in use %d KiB -> %d KiB", baseGoroutines, runtime.NumGoroutine(), baseHeap>>10, ms.HeapInuse>>10)
}
