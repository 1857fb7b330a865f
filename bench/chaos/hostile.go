package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/internal/jwtauth"
	"github.com/frutos/frutos/internal/sioclient"
)

// HostileOptions sizes the hostile clients that run next to the load.
type HostileOptions struct {
	// Tokenless handshakes (10,000), made 64 at a time.
	Tokenless int
	// Slow consumers (200): authenticated, then they never read; each is
	// sent SlowEvents events of SlowKB (50 × 16 KB), 5 a second.
	Slow, SlowEvents, SlowKB int
	// Oversized clients (100) each send one frame past max_payload.
	Oversized int
	// Flooders (50) each send FloodEvents client events (2,000) as fast as
	// they can.
	Flooders, FloodEvents int
}

func (o *HostileOptions) defaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Tokenless, 10_000)
	def(&o.Slow, 200)
	def(&o.SlowEvents, 50)
	def(&o.SlowKB, 16)
	def(&o.Oversized, 100)
	def(&o.Flooders, 50)
	def(&o.FloodEvents, 2000)
}

// HostileResult is what the hostile clients got, and what the
// well-behaved ones saw meanwhile.
type HostileResult struct {
	Options HostileOptions `json:"options"`
	// Tokenless handshakes by outcome ("connect_error: Unauthorized" is
	// the right one).
	Tokenless map[string]int64 `json:"tokenless"`
	// SlowConnected slow consumers got in; SlowEventsSent were published
	// to them.
	SlowConnected  int64 `json:"slow_connected"`
	SlowEventsSent int64 `json:"slow_events_sent"`
	// OversizedClosed is how many oversized senders the server closed.
	OversizedClosed int64 `json:"oversized_closed"`
	// FloodSent is how many client events the flooders got out.
	FloodSent int64 `json:"flood_sent"`
	// WorkersRSS before and after, in bytes (sum over workers).
	RSSBefore uint64  `json:"workers_rss_before"`
	RSSAfter  uint64  `json:"workers_rss_after"`
	Duration  float64 `json:"duration_sec"`
}

// WriteMarkdown writes the hostile section of the report.
func (h *HostileResult) WriteMarkdown(w io.Writer) {
	o := h.Options
	fmt.Fprintf(w, "## Hostile clients (%.0f s, next to the load)\n\n", h.Duration)
	fmt.Fprintf(w, "- %d handshakes without a token: %s.\n", o.Tokenless, formatCounts(h.Tokenless))
	fmt.Fprintf(w, "- %d slow consumers (they never read): %d got in and were sent %d events of %d KB.\n",
		o.Slow, h.SlowConnected, h.SlowEventsSent, o.SlowKB)
	fmt.Fprintf(w, "- %d clients sending one frame past max_payload: %d closed by the server.\n", o.Oversized, h.OversizedClosed)
	fmt.Fprintf(w, "- %d clients flooding %d events each: %d events sent.\n", o.Flooders, o.FloodEvents, h.FloodSent)
	fmt.Fprintf(w, "- Workers' RSS (sum): %s before, %s after.\n", mb(h.RSSBefore), mb(h.RSSAfter))
	fmt.Fprintln(w, "- The well-behaved clients' delivery latency is in the `hostile` row, next to `baseline`.")
}

func mb(b uint64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

// runHostile runs every kind of hostile client at once and returns when
// they are done (slow consumers are closed at the end).
func runHostile(ctx context.Context, e *env) (*HostileResult, error) {
	o := e.opts.Hostile
	h := &HostileResult{Options: o, Tokenless: map[string]int64{}}
	h.RSSBefore = e.workersRSS(ctx)
	t0 := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	run(func() error { return e.tokenless(ctx, o.Tokenless, h, &mu) })
	run(func() error { return e.slowConsumers(ctx, o, h) })
	run(func() error { return e.oversized(ctx, o.Oversized, h) })
	run(func() error { return e.flood(ctx, o, h) })
	wg.Wait()
	h.Duration = time.Since(t0).Seconds()
	h.RSSAfter = e.workersRSS(ctx)
	return h, firstErr
}

func (e *env) workersRSS(ctx context.Context) uint64 {
	st, err := e.sys.Status(ctx)
	if err != nil {
		return 0
	}
	var sum uint64
	for _, w := range st.Workers {
		sum += w.Memory
	}
	return sum
}

func (e *env) tokenless(ctx context.Context, n int, h *HostileResult, mu *sync.Mutex) error {
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c, err := sioclient.Dial(dctx, sioclient.Options{URL: e.sys.URL()})
				cancel()
				reason := "connected (wrong)"
				if err == nil {
					_ = c.Close()
				} else {
					reason = bench.FailReason(err, ctx)
				}
				mu.Lock()
				h.Tokenless[reason]++
				mu.Unlock()
			}
		}()
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	return nil
}

// rawClient opens a websocket session and joins the namespace with a
// token, reading nothing more afterwards.
func (e *env) rawClient(ctx context.Context, user string) (*websocket.Conn, error) {
	tok, err := jwtauth.Mint(e.secret, user, "student", time.Hour)
	if err != nil {
		return nil, err
	}
	u := strings.Replace(e.sys.URL(), "http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
	c, resp, err := websocket.DefaultDialer.DialContext(ctx, u, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := c.ReadMessage(); err != nil || len(msg) == 0 || msg[0] != '0' {
		c.Close()
		return nil, fmt.Errorf("open packet: %q %v", msg, err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`40{"token":"`+tok+`"}`)); err != nil {
		c.Close()
		return nil, err
	}
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			c.Close()
			return nil, err
		}
		if strings.HasPrefix(string(msg), "40") {
			_ = c.SetReadDeadline(time.Time{})
			return c, nil
		}
	}
}

// slowConsumers connect, stop reading, and are sent big events: the
// server must neither stall the others nor grow without bound.
func (e *env) slowConsumers(ctx context.Context, o HostileOptions, h *HostileResult) error {
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range o.Slow {
		c, err := e.rawClient(ctx, fmt.Sprint(900_000+i))
		if err != nil {
			continue
		}
		conns = append(conns, c)
	}
	h.SlowConnected = int64(len(conns))
	big := strings.Repeat("x", o.SlowKB<<10)
	tick := time.NewTicker(200 * time.Millisecond) // a backend's pace, not a Redis flood
	defer tick.Stop()
	for range o.SlowEvents {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch := make([]bench.Targeted, len(conns))
		for i := range conns {
			batch[i] = bench.Targeted{Room: rooms.User(strconv.Itoa(900_000 + i)), Arg: big}
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := e.load.cfg.Emitter.EmitToBatch(pctx, "slow", batch)
		cancel()
		if err == nil {
			h.SlowEventsSent += int64(len(batch))
		}
	}
	sleep(ctx, 5*time.Second) // the server holds their backlog meanwhile
	return nil
}

// oversized clients each send one frame past max_payload (1 MB).
func (e *env) oversized(ctx context.Context, n int, h *HostileResult) error {
	frame := []byte(`42["x","` + strings.Repeat("y", 2<<20) + `"]`)
	var closed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		c, err := e.rawClient(ctx, fmt.Sprint(950_000+i))
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.WriteMessage(websocket.TextMessage, frame)
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					var ne interface{ Timeout() bool }
					if !errors.As(err, &ne) || !ne.Timeout() {
						closed.Add(1)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	h.OversizedClosed = closed.Load()
	return nil
}

// flood sends client events as fast as a connection takes them.
func (e *env) flood(ctx context.Context, o HostileOptions, h *HostileResult) error {
	var sent atomic.Int64
	var wg sync.WaitGroup
	for i := range o.Flooders {
		tok, err := jwtauth.Mint(e.secret, fmt.Sprint(980_000+i), "student", time.Hour)
		if err != nil {
			return err
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := sioclient.Dial(dctx, sioclient.Options{URL: e.sys.URL(), Auth: map[string]any{"token": tok}})
		cancel()
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			for j := range o.FloodEvents {
				name := "spam"
				if j%2 == 0 {
					name = "join" // not allowed either: ignored and counted
				}
				if c.Emit(name, map[string]any{"room": rooms.User("1"), "j": j}) != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	h.FloodSent = sent.Load()
	return nil
}
