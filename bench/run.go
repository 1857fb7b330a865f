package bench

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/frutos/frutos/cluster/rooms"
	"github.com/frutos/frutos/internal/sioclient"
)

// Run drives one load process: every connection of cfg (Shard 0 of 1,
// unless cfg says otherwise), the broadcast, the emits. It returns when
// the duration (plus the grace) is over or ctx ends; connections are
// closed by then. The error is for a bad configuration only: failures of
// the server are counted in the result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	return r.run(ctx, func(ctx context.Context) {
		if cfg.Broadcast && cfg.Emitter != nil {
			at := r.sendBroadcast(ctx)
			r.waitBroadcast(ctx, at)
		}
	}), nil
}

// runner is one load process.
type runner struct {
	cfg   Config
	src   string // tells this shard's targeted emits from others'
	start time.Time
	end   time.Time // start + duration

	conns []*vconn

	mu     sync.Mutex
	live   []*vconn            // established, for picking targets
	byUser map[string][]*vconn // established, by user
	failed map[string]int
	drops  map[string]int

	closing  atomic.Bool
	ramped   atomic.Bool
	attempts atomic.Int64
	estab    atomic.Int64
	held     atomic.Int64
	dropped  atomic.Int64

	seq        atomic.Uint64
	sent       atomic.Int64
	emitErrors atomic.Int64
	expected   atomic.Int64
	delivered  atomic.Int64
	pending    atomic.Int64 // expected, not yet delivered, on live connections
	lostDrop   atomic.Int64 // expected on connections that dropped first
	dups       atomic.Int64
	unexpected atomic.Int64
	foreign    atomic.Int64

	bcastAt   atomic.Int64 // µs, when the broadcast was sent (0: not sent)
	bcastRecv atomic.Int64
	bcastDups atomic.Int64

	connectHist *Histogram
	latency     *Histogram
	bcastHist   *Histogram

	rampEnd, emitStart, emitEnd time.Time

	// Counted at the end of the grace, before the connections are closed.
	heldAtEnd, lostAtEnd       int64
	bcastExpected, bcastOnTime int64
}

// vconn is one load connection.
type vconn struct {
	r    *runner
	user string
	src  net.IP

	mu      sync.Mutex
	c       *sioclient.Client
	up      bool
	closed  bool
	upAt    int64 // µs
	downAt  int64 // µs
	pending map[uint64]struct{}
	maxSeq  uint64 // highest sequence delivered
	bcast   bool
}

func newRunner(cfg Config) *runner {
	n := shardConns(cfg.Conns, cfg.Shard, cfg.Shards)
	r := &runner{
		cfg:         cfg,
		src:         cfg.RunID + "/" + itoa(cfg.Shard),
		conns:       make([]*vconn, n),
		byUser:      map[string][]*vconn{},
		failed:      map[string]int{},
		drops:       map[string]int{},
		connectHist: NewHistogram(),
		latency:     NewHistogram(),
		bcastHist:   NewHistogram(),
	}
	for i := range r.conns {
		g := cfg.Shard + i*cfg.Shards
		v := &vconn{r: r, user: cfg.userOf(g)}
		if cfg.Sources > 0 {
			v.src = SourceAddr(g % cfg.Sources)
		}
		r.conns[i] = v
	}
	return r
}

// run is the life of a load process; afterRamp runs between the ramp
// and the emits (the broadcast, or a coordinator's go-ahead).
func (r *runner) run(ctx context.Context, afterRamp func(context.Context)) *Result {
	r.start = time.Now()
	r.end = r.start.Add(r.cfg.Duration)
	ctx, cancel := context.WithDeadline(ctx, r.end)
	defer cancel()

	stopProgress := r.progressLoop()
	r.ramp(ctx)
	r.rampEnd = time.Now()
	r.ramped.Store(true)
	afterRamp(ctx)
	r.emitStart = time.Now()
	if r.cfg.EmitRate > 0 && r.cfg.Emitter != nil {
		r.emit(ctx)
	}
	<-ctx.Done()
	r.emitEnd = time.Now()
	r.grace()
	stopProgress()
	r.heldAtEnd, r.lostAtEnd = r.held.Load(), r.pending.Load()
	r.countBroadcast()
	r.closeAll()
	return r.result()
}

// countBroadcast counts the connections that were up when the broadcast
// was sent, and those of them that received it.
func (r *runner) countBroadcast() {
	at := r.bcastAt.Load()
	if at == 0 {
		return
	}
	for _, v := range r.conns {
		v.mu.Lock()
		if v.upAt != 0 && v.upAt <= at && (v.downAt == 0 || v.downAt > at) {
			r.bcastExpected++
			if v.bcast {
				r.bcastOnTime++
			}
		}
		v.mu.Unlock()
	}
}

// ramp opens the connections at the configured rate, at most MaxInflight
// handshakes at a time, until all are tried or ctx ends.
func (r *runner) ramp(ctx context.Context) {
	rate := r.cfg.Rate / float64(r.cfg.Shards)
	sem := make(chan struct{}, r.cfg.MaxInflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, v := range r.conns {
		due := r.start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r.attempts.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.dial(ctx, v)
		}()
	}
}

func (r *runner) dial(ctx context.Context, v *vconn) {
	token, err := r.cfg.Token(v.user)
	if err != nil {
		r.fail("token: " + err.Error())
		return
	}
	opts := sioclient.Options{
		URL: r.cfg.URL, Namespace: r.cfg.Namespace, Transport: r.cfg.Transport, KeepAlive: r.cfg.KeepAlive, RawArgs: true,
		Auth:    map[string]any{"token": token},
		OnEvent: v.onEvent,
		OnClose: v.onClose,
	}
	d := &net.Dialer{Timeout: r.cfg.ConnectTimeout}
	if v.src != nil {
		d.LocalAddr = &net.TCPAddr{IP: v.src}
		d.Control = DialControl
	}
	opts.NetDialer = d
	dctx, cancel := context.WithTimeout(ctx, r.cfg.ConnectTimeout)
	defer cancel()
	t0 := time.Now()
	c, err := sioclient.Dial(dctx, opts)
	if err != nil {
		r.fail(FailReason(err, ctx))
		return
	}
	r.connectHist.Record(time.Since(t0).Microseconds())
	v.mu.Lock()
	v.c = c
	if v.closed { // dropped before we got here
		v.mu.Unlock()
		r.estab.Add(1)
		return
	}
	v.up = true
	v.upAt = nowMicro()
	v.mu.Unlock()
	r.estab.Add(1)
	r.held.Add(1)
	r.mu.Lock()
	r.live = append(r.live, v)
	r.byUser[v.user] = append(r.byUser[v.user], v)
	r.mu.Unlock()
}

func (r *runner) fail(reason string) {
	r.mu.Lock()
	r.failed[reason]++
	r.mu.Unlock()
}

func (v *vconn) onClose(err error) {
	r := v.r
	v.mu.Lock()
	wasUp := v.up
	v.up, v.closed = false, true
	v.downAt = nowMicro()
	lost := len(v.pending)
	v.pending = nil
	v.mu.Unlock()
	if !wasUp {
		if v.c == nil { // closed while Dial was returning
			r.dropped.Add(1)
			r.mu.Lock()
			r.drops[closeReason(err)]++
			r.mu.Unlock()
		}
		return
	}
	r.held.Add(-1)
	r.pending.Add(-int64(lost))
	if r.closing.Load() {
		return
	}
	r.lostDrop.Add(int64(lost))
	r.dropped.Add(1)
	r.mu.Lock()
	r.drops[closeReason(err)]++
	r.mu.Unlock()
}

// Payload is what every bench event carries: source, sequence, send time.
type Payload struct {
	S string `json:"s"`
	Q uint64 `json:"q"`
	T int64  `json:"t"` // µs since the epoch
}

func (v *vconn) onEvent(e sioclient.Event) {
	now := nowMicro()
	r := v.r
	if e.Name != TargetedEvent && e.Name != BroadcastEvent {
		return
	}
	p, ok := ParsePayload(e)
	if !ok {
		r.foreign.Add(1)
		return
	}
	if e.Name == BroadcastEvent {
		if p.S != r.cfg.RunID {
			r.foreign.Add(1)
			return
		}
		v.mu.Lock()
		dup := v.bcast
		v.bcast = true
		v.mu.Unlock()
		if dup {
			r.bcastDups.Add(1)
			return
		}
		r.bcastRecv.Add(1)
		r.bcastHist.Record(now - p.T)
		return
	}
	if p.S != r.src {
		r.foreign.Add(1)
		return
	}
	// A sequence this connection waits for is a delivery; one it does
	// not wait for is a duplicate if it was delivered before (at or below
	// the highest delivered: emits to one user may be published out of
	// sequence order by concurrent emitters, so order itself proves
	// nothing), else unexpected.
	v.mu.Lock()
	_, expected := v.pending[p.Q]
	var dup bool
	if expected {
		delete(v.pending, p.Q)
		v.maxSeq = max(v.maxSeq, p.Q)
	} else {
		dup = p.Q <= v.maxSeq
	}
	v.mu.Unlock()
	switch {
	case expected:
		r.delivered.Add(1)
		r.pending.Add(-1)
		r.latency.Record(now - p.T)
	case dup:
		r.dups.Add(1)
	default:
		r.unexpected.Add(1)
	}
}

// ParsePayload reads the first argument of a bench event: a flat object,
// so the raw JSON up to the first '}' is all of it.
func ParsePayload(e sioclient.Event) (Payload, bool) {
	var p Payload
	switch {
	case e.Raw != "":
		end := strings.IndexByte(e.Raw, '}')
		if len(e.Raw) < 2 || e.Raw[0] != '[' || end < 0 {
			return p, false
		}
		if err := json.Unmarshal([]byte(e.Raw[1:end+1]), &p); err != nil {
			return p, false
		}
	case len(e.Args) > 0:
		b, err := json.Marshal(e.Args[0])
		if err != nil || json.Unmarshal(b, &p) != nil {
			return p, false
		}
	default:
		return p, false
	}
	return p, p.S != "" && p.T > 0
}

// sendBroadcast emits the one event to all; it returns the send time (µs),
// 0 when the emit failed.
func (r *runner) sendBroadcast(ctx context.Context) int64 {
	t := nowMicro()
	r.bcastAt.Store(t)
	ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.cfg.Emitter.EmitAll(ectx, BroadcastEvent, map[string]any{"s": r.cfg.RunID, "q": 0, "t": t}); err != nil {
		r.bcastAt.Store(0)
		r.emitErrors.Add(1)
		return 0
	}
	return t
}

// waitBroadcast waits until every connection held has the broadcast, or
// BroadcastWait, or ctx.
func (r *runner) waitBroadcast(ctx context.Context, at int64) {
	if at == 0 {
		return
	}
	deadline := time.NewTimer(r.cfg.BroadcastWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for r.bcastRecv.Load() < r.held.Load() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// emit sends targeted emits at this shard's share of EmitRate until ctx
// ends: a pacer hands out batches of the emits due every millisecond,
// Emitters goroutines publish them.
func (r *runner) emit(ctx context.Context) {
	rate := r.cfg.EmitRate / float64(r.cfg.Shards)
	batches := make(chan int, r.cfg.Emitters*2)
	var wg sync.WaitGroup
	for range r.cfg.Emitters {
		wg.Go(func() {
			for n := range batches {
				r.emitBatch(ctx, n)
			}
		})
	}
	start := time.Now()
	var issued int64
	tick := time.NewTicker(time.Millisecond)
	defer func() {
		tick.Stop()
		close(batches)
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds()*rate) - issued
		for due > 0 {
			n := min(due, maxBatch)
			select {
			case batches <- int(n):
			case <-ctx.Done():
				return
			}
			issued += n
			due -= n
		}
	}
}

// maxBatch bounds the emits published in one round trip.
const maxBatch = 64

// planned is one emit of a batch: its sequence, user and the connections
// that expect it.
type planned struct {
	q       uint64
	user    string
	targets []*vconn
}

// emitBatch publishes n emits: for each, it picks a connected user and
// registers the sequence on each of the user's live connections, then
// publishes them all; the expectation exists before any delivery can.
func (r *runner) emitBatch(ctx context.Context, n int) {
	if ctx.Err() != nil {
		return
	}
	plan := make([]planned, 0, n)
	for range n {
		if p, ok := r.register(); ok {
			plan = append(plan, p)
		}
	}
	if len(plan) == 0 {
		return
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	now := nowMicro()
	var err error
	if be, ok := r.cfg.Emitter.(BatchEmitter); ok && len(plan) > 1 {
		batch := make([]Targeted, len(plan))
		for i, p := range plan {
			batch[i] = Targeted{Room: rooms.User(p.user), Arg: map[string]any{"s": r.src, "q": p.q, "t": now}}
		}
		err = be.EmitToBatch(ectx, TargetedEvent, batch)
	} else {
		for _, p := range plan {
			arg := map[string]any{"s": r.src, "q": p.q, "t": nowMicro()}
			if err = r.cfg.Emitter.EmitTo(ectx, rooms.User(p.user), TargetedEvent, arg); err != nil {
				break
			}
		}
	}
	if err != nil {
		r.emitErrors.Add(1)
		for _, p := range plan {
			r.unregister(p)
		}
		return
	}
	for _, p := range plan {
		r.sent.Add(1)
		r.expected.Add(int64(len(p.targets)))
	}
}

// register picks a connected user (a few tries) and records the next
// sequence on each of its live connections.
func (r *runner) register() (planned, bool) {
	p := planned{q: r.seq.Add(1)}
	for range 10 {
		r.mu.Lock()
		if len(r.live) == 0 {
			r.mu.Unlock()
			return p, false
		}
		p.user = r.live[rand.IntN(len(r.live))].user
		same := r.byUser[p.user]
		r.mu.Unlock()
		p.targets = p.targets[:0]
		for _, v := range same {
			v.mu.Lock()
			if v.up {
				if v.pending == nil {
					v.pending = map[uint64]struct{}{}
				}
				v.pending[p.q] = struct{}{}
				p.targets = append(p.targets, v)
			}
			v.mu.Unlock()
		}
		if len(p.targets) > 0 {
			r.pending.Add(int64(len(p.targets)))
			return p, true
		}
	}
	return p, false
}

// unregister takes back the expectations of an emit that was not sent.
func (r *runner) unregister(p planned) {
	for _, v := range p.targets {
		v.mu.Lock()
		_, still := v.pending[p.q]
		delete(v.pending, p.q)
		v.mu.Unlock()
		if still {
			r.pending.Add(-1)
		}
	}
}

// grace waits up to Grace for the deliveries still expected.
func (r *runner) grace() {
	if r.sent.Load() == 0 {
		return
	}
	deadline := time.Now().Add(r.cfg.Grace)
	for r.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// closeAll closes every connection, 256 at a time.
func (r *runner) closeAll() {
	r.closing.Store(true)
	sem := make(chan struct{}, 256)
	var wg sync.WaitGroup
	for _, v := range r.conns {
		v.mu.Lock()
		c := v.c
		v.mu.Unlock()
		if c == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = c.Close()
		})
	}
	wg.Wait()
}

// Progress is a snapshot of a run, for the live line.
type Progress struct {
	Elapsed     time.Duration `json:"elapsed"`
	Attempted   int64         `json:"attempted"`
	Established int64         `json:"established"`
	Failed      int64         `json:"failed"`
	Dropped     int64         `json:"dropped"`
	Held        int64         `json:"held"`
	Sent        int64         `json:"sent"`
	Delivered   int64         `json:"delivered"`
	Pending     int64         `json:"pending"`
	BcastRecv   int64         `json:"broadcast_received"`
	Ramped      bool          `json:"ramped"`
	// LatencyP99 is over the whole run so far, in ms.
	LatencyP99 float64 `json:"latency_p99"`
}

// Add sums two shards' progress (the latency is the worse of the two).
func (p Progress) Add(o Progress) Progress {
	p.Elapsed = max(p.Elapsed, o.Elapsed)
	p.Attempted += o.Attempted
	p.Established += o.Established
	p.Failed += o.Failed
	p.Dropped += o.Dropped
	p.Held += o.Held
	p.Sent += o.Sent
	p.Delivered += o.Delivered
	p.Pending += o.Pending
	p.BcastRecv += o.BcastRecv
	p.Ramped = p.Ramped && o.Ramped
	p.LatencyP99 = max(p.LatencyP99, o.LatencyP99)
	return p
}

func (r *runner) snapshot() Progress {
	r.mu.Lock()
	var failed int64
	for _, n := range r.failed {
		failed += int64(n)
	}
	r.mu.Unlock()
	return Progress{
		Elapsed:     time.Since(r.start).Round(time.Millisecond),
		Attempted:   r.attempts.Load(),
		Established: r.estab.Load(),
		Failed:      failed,
		Dropped:     r.dropped.Load(),
		Held:        r.held.Load(),
		Sent:        r.sent.Load(),
		Delivered:   r.delivered.Load(),
		Pending:     r.pending.Load(),
		BcastRecv:   r.bcastRecv.Load(),
		Ramped:      r.ramped.Load(),
		LatencyP99:  float64(r.latency.Quantile(0.99)) / 1000,
	}
}

func (r *runner) progressLoop() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.cfg.Progress(r.snapshot())
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		r.cfg.Progress(r.snapshot())
	}
}

func nowMicro() int64 { return time.Now().UnixMicro() }
