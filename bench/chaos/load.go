package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frutos/frutos/bench"
	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/internal/sioclient"
)

// LoadConfig is the well-behaved load: clients that behave like
// socket.io-client (reconnect with backoff, ask for their session back)
// and a backend emitting to them through Redis.
type LoadConfig struct {
	URL     string
	Clients int
	// Rate is how many clients connect per second at the start.
	Rate float64
	// EmitRate is how many targeted emits per second while a phase runs.
	EmitRate float64
	// Token returns the handshake token of a user.
	Token func(user string) (string, error)
	// Emitter publishes the emits as a backend does.
	Emitter bench.BatchEmitter
	// FirstUser is the user id of client 0; client i is FirstUser+i, one
	// client per user, so an emit has exactly one expected receiver.
	FirstUser int
	// Sources spreads the clients over that many loopback addresses.
	Sources int
	// Reconnection backoff, socket.io-client's defaults when zero: 1s,
	// doubling up to 5s, ±50%.
	ReconnectDelay, ReconnectDelayMax time.Duration
	ConnectTimeout                    time.Duration
}

// Load runs the clients and the emits, and counts, per phase, every event
// sent, delivered, lost and delivered twice.
type Load struct {
	cfg     LoadConfig
	runID   string
	clients []*client

	seq     atomic.Uint64
	up      atomic.Int64
	allUpAt atomic.Int64 // unix ns of the last time every client was up
	phase   atomic.Pointer[phase]
	foreign atomic.Int64

	stopEmit context.CancelFunc
	emitDone chan struct{}

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// phase accumulates what happened while it was current; deliveries count
// in the phase their event was sent in.
type phase struct {
	name string
	sent, delivered, lost, dups, late, emitErrors,
	drops, reconnects, recovered, notRecovered, noOffset, lostNoOffset, pending atomic.Int64
	latency *bench.Histogram

	mu       sync.Mutex
	failures map[string]int64
}

func newPhase(name string) *phase {
	return &phase{name: name, latency: bench.NewHistogram(), failures: map[string]int64{}}
}

func (p *phase) fail(reason string) {
	p.mu.Lock()
	p.failures[reason]++
	p.mu.Unlock()
}

// client is one well-behaved connection, identified by its user.
type client struct {
	l    *Load
	user string
	src  net.IP

	mu      sync.Mutex
	up      bool
	session *sioclient.Session
	pending map[uint64]*phase  // sent to this client, not yet arrived
	seen    map[uint64]outcome // arrived, or given up as lost
}

type outcome struct {
	ph   *phase
	lost bool
}

// StartLoad connects every client (at cfg.Rate) and returns once each of
// them connected or failed its first try; the clients then keep
// reconnecting by themselves until Close.
func StartLoad(ctx context.Context, cfg LoadConfig) (*Load, error) {
	if cfg.Clients < 1 || cfg.Token == nil || cfg.Emitter == nil {
		return nil, fmt.Errorf("load: clients, token and emitter are required")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 500
	}
	if cfg.ReconnectDelay <= 0 {
		cfg.ReconnectDelay = time.Second
	}
	if cfg.ReconnectDelayMax <= 0 {
		cfg.ReconnectDelayMax = 5 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 20 * time.Second
	}
	l := &Load{cfg: cfg, runID: "chaos-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	l.phase.Store(newPhase("connect"))
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	first := make(chan struct{}, cfg.Clients)
	tick := time.Duration(float64(time.Second) / cfg.Rate)
	for i := range cfg.Clients {
		c := &client{l: l, user: strconv.Itoa(cfg.FirstUser + i),
			pending: map[uint64]*phase{}, seen: map[uint64]outcome{}}
		if cfg.Sources > 0 {
			c.src = bench.SourceAddr(i % cfg.Sources)
		}
		l.clients = append(l.clients, c)
	}
	for _, c := range l.clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c.run(runCtx, first)
		}()
		select {
		case <-time.After(tick):
		case <-ctx.Done():
			l.Close()
			return nil, ctx.Err()
		}
	}
	for range cfg.Clients {
		select {
		case <-first:
		case <-ctx.Done():
			l.Close()
			return nil, ctx.Err()
		}
	}
	return l, nil
}

// Clients is how many clients the load runs; Up how many are connected.
func (l *Load) Clients() int { return len(l.clients) }
func (l *Load) Up() int      { return int(l.up.Load()) }

func (l *Load) phaseDrops() int64 { return l.phase.Load().drops.Load() }

// AllUpAt is the last time every client was connected.
func (l *Load) AllUpAt() time.Time { return time.Unix(0, l.allUpAt.Load()) }

// Begin starts a phase: from now on emits are sent, and counted in it.
func (l *Load) Begin(name string) {
	l.phase.Store(newPhase(name))
	ctx, cancel := context.WithCancel(context.Background())
	l.stopEmit, l.emitDone = cancel, make(chan struct{})
	go func() {
		defer close(l.emitDone)
		l.emit(ctx)
	}()
}

// End stops the emits, gives what is in flight up to grace to arrive,
// then counts what did not as lost.
func (l *Load) End(grace time.Duration) Counts {
	l.stopEmit()
	<-l.emitDone
	ph := l.phase.Load()
	deadline := time.Now().Add(grace)
	for ph.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range l.clients {
		c.mu.Lock()
		for q, p := range c.pending {
			if p == ph {
				delete(c.pending, q)
				c.seen[q] = outcome{ph: ph, lost: true}
				ph.pending.Add(-1)
				ph.lost.Add(1)
			}
		}
		c.mu.Unlock()
	}
	return ph.counts(l)
}

// Close ends every client and waits for them.
func (l *Load) Close() {
	l.cancel()
	l.wg.Wait()
}

// emit sends targeted emits at EmitRate, in small batches, to random
// clients (connected or not: an event for a client that is away must
// reach it when its session is recovered).
func (l *Load) emit(ctx context.Context) {
	const every = 10 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	start, done := time.Now(), 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n := int(l.cfg.EmitRate*now.Sub(start).Seconds()) - done
			if n <= 0 {
				continue
			}
			done += n
			l.emitBatch(ctx, n)
		}
	}
}

func (l *Load) emitBatch(ctx context.Context, n int) {
	ph := l.phase.Load()
	type planned struct {
		c *client
		q uint64
	}
	plan := make([]planned, n)
	batch := make([]bench.Targeted, n)
	now := time.Now().UnixMicro()
	for i := range plan {
		c := l.clients[rand.IntN(len(l.clients))]
		q := l.seq.Add(1)
		c.mu.Lock()
		c.pending[q] = ph
		c.mu.Unlock()
		ph.pending.Add(1)
		plan[i] = planned{c, q}
		batch[i] = bench.Targeted{Room: rooms.User(c.user), Arg: bench.Payload{S: l.runID, Q: q, T: now}}
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.cfg.Emitter.EmitToBatch(pctx, bench.TargetedEvent, batch); err != nil {
		// Not published: not sent, not expected.
		for _, p := range plan {
			p.c.mu.Lock()
			if _, ok := p.c.pending[p.q]; ok {
				delete(p.c.pending, p.q)
				ph.pending.Add(-1)
			}
			p.c.mu.Unlock()
		}
		ph.emitErrors.Add(int64(n))
		return
	}
	ph.sent.Add(int64(n))
}

// run is a client's life: connect, wait for the drop, back off, connect
// again asking for the session back, until the load closes.
func (c *client) run(ctx context.Context, first chan<- struct{}) {
	attempt := 0
	for ctx.Err() == nil {
		seqAtDial := c.l.seq.Load()
		conn, err := c.dial(ctx)
		if first != nil {
			first <- struct{}{}
			first = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.l.phase.Load().fail(bench.FailReason(err, ctx))
			attempt++
			if !sleep(ctx, c.l.backoff(attempt)) {
				return
			}
			continue
		}
		attempt = 0
		c.connected(conn, seqAtDial)
		select {
		case <-conn.Done():
		case <-ctx.Done():
			_ = conn.Close()
		}
		c.mu.Lock()
		c.up = false
		c.session = conn.Session()
		c.mu.Unlock()
		c.l.up.Add(-1)
		if ctx.Err() != nil {
			return
		}
		c.l.phase.Load().drops.Add(1)
		// socket.io-client waits a backoff before its first attempt too.
		if !sleep(ctx, c.l.backoff(1)) {
			return
		}
	}
}

func (c *client) dial(ctx context.Context) (*sioclient.Client, error) {
	token, err := c.l.cfg.Token(c.user)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	resume := c.session
	c.mu.Unlock()
	d := &net.Dialer{Timeout: c.l.cfg.ConnectTimeout}
	if c.src != nil {
		d.LocalAddr = &net.TCPAddr{IP: c.src}
		d.Control = bench.DialControl
	}
	dctx, cancel := context.WithTimeout(ctx, c.l.cfg.ConnectTimeout)
	defer cancel()
	return sioclient.Dial(dctx, sioclient.Options{
		URL: c.l.cfg.URL, RawArgs: true, NetDialer: d, Resume: resume,
		Auth:    map[string]any{"token": token},
		OnEvent: c.onEvent,
	})
}

// connected counts a (re)connection. A session that was not recovered
// cannot receive what was published before it asked (seqAtDial): that is
// lost now.
func (c *client) connected(conn *sioclient.Client, seqAtDial uint64) {
	ph := c.l.phase.Load()
	c.mu.Lock()
	again := c.session != nil
	noOffset := again && c.session.Offset == ""
	if again && !conn.Recovered {
		for q, p := range c.pending {
			if q <= seqAtDial {
				delete(c.pending, q)
				c.seen[q] = outcome{ph: p, lost: true}
				p.pending.Add(-1)
				p.lost.Add(1)
				if noOffset {
					p.lostNoOffset.Add(1)
				}
			}
		}
	}
	c.up = true
	c.mu.Unlock()
	if c.l.up.Add(1) == int64(len(c.l.clients)) {
		c.l.allUpAt.Store(time.Now().UnixNano())
	}
	if again {
		ph.reconnects.Add(1)
		if conn.Recovered {
			ph.recovered.Add(1)
		} else {
			ph.notRecovered.Add(1)
			if noOffset {
				ph.noOffset.Add(1)
			}
		}
	}
}

func (c *client) onEvent(e sioclient.Event) {
	if e.Name != bench.TargetedEvent {
		return
	}
	now := time.Now().UnixMicro()
	p, ok := bench.ParsePayload(e)
	if !ok || p.S != c.l.runID {
		c.l.foreign.Add(1)
		return
	}
	c.mu.Lock()
	ph, expected := c.pending[p.Q]
	before, seen := c.seen[p.Q]
	if expected {
		delete(c.pending, p.Q)
		c.seen[p.Q] = outcome{ph: ph}
	}
	c.mu.Unlock()
	switch {
	case expected:
		ph.pending.Add(-1)
		ph.delivered.Add(1)
		ph.latency.Record(now - p.T)
	case seen && before.lost:
		before.ph.late.Add(1)
	case seen:
		before.ph.dups.Add(1)
	default:
		c.l.foreign.Add(1)
	}
}

// backoff is socket.io-client's: delay·2^(attempt-1), capped, ±50%.
func (l *Load) backoff(attempt int) time.Duration {
	d := l.cfg.ReconnectDelay << min(attempt-1, 16)
	d = min(d, l.cfg.ReconnectDelayMax)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
