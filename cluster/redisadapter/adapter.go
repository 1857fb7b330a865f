package redisadapter

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Options configures an Adapter. The zero value is usable.
type Options struct {
	// Key is the channel prefix, "socket.io" by default (Node's opts.key).
	Key string
	// RequestTimeout bounds cluster requests (fetchSockets,
	// serverSideEmitWithAck) and broadcast acks without a timeout flag.
	// Default 5s, as in Node.
	RequestTimeout time.Duration
	// PublishQueue is how many outgoing messages may wait for Redis before
	// new ones are dropped (and counted). Default 8192.
	PublishQueue int
	// HealthCheck is how long the subscriber may stay silent before it
	// pings Redis; a ping unanswered for as long again means the link is
	// dead. Default 3s.
	HealthCheck time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay, which doubles
	// after every failed attempt. Defaults 100ms and 5s.
	BackoffMin, BackoffMax time.Duration
	// Logger receives state changes and throttled error lines. Default: none.
	Logger *slog.Logger
}

func (o *Options) withDefaults() {
	if o.Key == "" {
		o.Key = "socket.io"
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 5 * time.Second
	}
	if o.PublishQueue <= 0 {
		o.PublishQueue = 8192
	}
	if o.HealthCheck <= 0 {
		o.HealthCheck = 3 * time.Second
	}
	if o.BackoffMin <= 0 {
		o.BackoffMin = 100 * time.Millisecond
	}
	if o.BackoffMax < o.BackoffMin {
		o.BackoffMax = max(5*time.Second, o.BackoffMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// State is the health of the adapter's link to Redis.
type State string

const (
	// StateConnecting: no contact with Redis yet.
	StateConnecting State = "connecting"
	// StateConnected: subscribed and publishing.
	StateConnected State = "connected"
	// StateReconnecting: the subscriber lost Redis and retries with
	// backoff; local delivery goes on, cross-process delivery is paused.
	StateReconnecting State = "reconnecting"
	// StateDegraded: subscribed, but publishing failed in the last few
	// seconds (or messages were dropped because Redis is too slow).
	StateDegraded State = "degraded"
)

// Status is a snapshot for health checks and metrics.
type Status struct {
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`

	Published     uint64 `json:"published"`      // messages published
	PublishErrors uint64 `json:"publish_errors"` // messages lost to publish errors
	Dropped       uint64 `json:"dropped"`        // messages dropped, publish queue full
	Received      uint64 `json:"received"`       // messages received from Redis
	Malformed     uint64 `json:"malformed"`      // received messages that could not be decoded
	Reconnects    uint64 `json:"reconnects"`     // times the subscriber link came back
	TimedOut      uint64 `json:"timed_out"`      // cluster requests that ended on timeout
}

// Adapter joins the namespaces of one Socket.IO server to the other servers
// (Go or Node) on the same Redis. Pass it to ServerOptions.SetAdapter; use
// one Adapter per server. It publishes through client and holds one
// subscriber connection of its own.
type Adapter struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	queue    chan outgoing
	draining chan struct{} // closed by Close: publish what is queued, then stop
	pubDone  chan struct{} // closed when the publisher has stopped

	mu         sync.Mutex
	ps         *redis.PubSub
	namespaces map[string]*nspAdapter // by namespace name
	byChannel  map[string]*nspAdapter // request and response channels
	byPattern  map[string]*nspAdapter // broadcast patterns
	confirmed  map[string]bool        // subscriptions Redis confirmed on this link
	closed     bool

	link          linkState
	lastPubErr    atomic.Int64 // unix nanos of the last publish failure
	published     atomic.Uint64
	publishErrors atomic.Uint64
	dropped       atomic.Uint64
	received      atomic.Uint64
	malformed     atomic.Uint64
	reconnects    atomic.Uint64
	timedOut      atomic.Uint64
	pubErrLog     throttle
	decodeErrLog  throttle
}

type outgoing struct {
	channel string
	payload []byte
}

// New starts an adapter on client. Close it when the server closes.
func New(client redis.UniversalClient, opts Options) *Adapter {
	opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	a := &Adapter{
		client:       client,
		opts:         opts,
		log:          opts.Logger.With("component", "redis-adapter"),
		ctx:          ctx,
		cancel:       cancel,
		queue:        make(chan outgoing, opts.PublishQueue),
		draining:     make(chan struct{}),
		pubDone:      make(chan struct{}),
		namespaces:   map[string]*nspAdapter{},
		byChannel:    map[string]*nspAdapter{},
		byPattern:    map[string]*nspAdapter{},
		confirmed:    map[string]bool{},
		pubErrLog:    throttle{every: 10 * time.Second},
		decodeErrLog: throttle{every: 10 * time.Second},
	}
	a.link.set(StateConnecting, "")
	a.ps = client.Subscribe(ctx)
	a.wg.Add(2)
	go a.publishLoop()
	go a.receiveLoop()
	return a
}

// New implements socket.AdapterConstructor: the server calls it once per
// namespace.
func (a *Adapter) New(nsp socket.Namespace) socket.Adapter {
	return newNspAdapter(a, nsp)
}

// Status reports the link state and counters.
func (a *Adapter) Status() Status {
	st, since, lastErr := a.link.get()
	if st == StateConnected && time.Since(time.Unix(0, a.lastPubErr.Load())) < 5*time.Second {
		st = StateDegraded
	}
	return Status{
		State: st, Since: since, LastError: lastErr,
		Published: a.published.Load(), PublishErrors: a.publishErrors.Load(), Dropped: a.dropped.Load(),
		Received: a.received.Load(), Malformed: a.malformed.Load(), Reconnects: a.reconnects.Load(),
		TimedOut: a.timedOut.Load(),
	}
}

// Ready reports whether every subscription is confirmed by Redis, so that
// a message published now by another server would reach this one.
func (a *Adapter) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	for ch := range a.byChannel {
		if !a.confirmed[ch] {
			return false
		}
	}
	for p := range a.byPattern {
		if !a.confirmed[p] {
			return false
		}
	}
	return true
}

// Close flushes what is queued for Redis (until ctx ends), stops the
// subscriber and waits for the adapter's goroutines. It does not close
// the Redis client, which the caller owns.
func (a *Adapter) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()

	close(a.draining)
	var err error
	select {
	case <-a.pubDone:
	case <-ctx.Done():
		err = errors.New("redis adapter: closed before every queued message was published")
	}
	a.cancel()
	a.mu.Lock()
	ps := a.ps
	a.mu.Unlock()
	_ = ps.Close()
	a.wg.Wait()
	return err
}

// publish queues one message for Redis. It never blocks: when the queue is
// full (Redis is gone or too slow) the message is dropped and counted.
func (a *Adapter) publish(channel string, payload []byte) {
	select {
	case a.queue <- outgoing{channel, payload}:
	default:
		a.dropped.Add(1)
		a.lastPubErr.Store(time.Now().UnixNano())
		if n, ok := a.pubErrLog.allow(); ok {
			a.log.Warn("redis publish queue full, dropping cross-server messages", "suppressed", n)
		}
	}
}

// publishLoop sends queued messages in order, pipelining what has piled up.
func (a *Adapter) publishLoop() {
	defer a.wg.Done()
	defer close(a.pubDone)
	batch := make([]outgoing, 0, 256)
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.draining:
			for a.ctx.Err() == nil {
				if batch = a.fill(batch[:0]); len(batch) == 0 {
					return
				}
				a.send(batch)
			}
			return
		case m := <-a.queue:
			a.send(a.fill(append(batch[:0], m)))
		}
	}
}

// fill adds to batch what is already queued, without waiting.
func (a *Adapter) fill(batch []outgoing) []outgoing {
	for len(batch) < cap(batch) {
		select {
		case m := <-a.queue:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

func (a *Adapter) send(batch []outgoing) {
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	var err error
	if len(batch) == 1 {
		err = a.client.Publish(ctx, batch[0].channel, batch[0].payload).Err()
	} else {
		pipe := a.client.Pipeline()
		for _, m := range batch {
			pipe.Publish(ctx, m.channel, m.payload)
		}
		_, err = pipe.Exec(ctx)
	}
	if err == nil {
		a.published.Add(uint64(len(batch)))
		return
	}
	if a.ctx.Err() != nil {
		return
	}
	a.publishErrors.Add(uint64(len(batch)))
	a.lastPubErr.Store(time.Now().UnixNano())
	a.link.setError(err)
	if n, ok := a.pubErrLog.allow(); ok {
		a.log.Warn("redis publish failed; cross-server messages lost until Redis answers",
			"err", err, "messages", len(batch), "suppressed", n)
	}
}

// receiveLoop reads the subscriber connection, watches its health and
// reconnects with capped exponential backoff.
func (a *Adapter) receiveLoop() {
	defer a.wg.Done()
	backoff := a.opts.BackoffMin
	pingSent := false
	for {
		a.mu.Lock()
		ps := a.ps
		a.mu.Unlock()
		msg, err := ps.ReceiveTimeout(a.ctx, a.opts.HealthCheck)
		if a.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) && !pingSent {
				pingSent = true
				if err = ps.Ping(a.ctx); err == nil {
					continue
				}
			}
			if isTimeout(err) {
				err = errors.New("redis did not answer a ping: connection presumed dead")
				a.renewPubSub()
			}
			pingSent = false
			a.linkDown(err)
			if !sleepCtx(a.ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, a.opts.BackoffMax)
			continue
		}
		pingSent = false
		backoff = a.opts.BackoffMin
		switch m := msg.(type) {
		case *redis.Message:
			a.linkUp()
			a.received.Add(1)
			a.dispatch(m.Channel, m.Pattern, []byte(m.Payload))
		case *redis.Subscription:
			a.confirm(m)
		case *redis.Pong:
			a.linkUp()
		}
	}
}

func (a *Adapter) confirm(m *redis.Subscription) {
	a.mu.Lock()
	switch m.Kind {
	case "subscribe", "psubscribe":
		a.confirmed[m.Channel] = true
	default:
		delete(a.confirmed, m.Channel)
	}
	a.mu.Unlock()
	a.linkUp()
}

func (a *Adapter) linkUp() {
	if prev, since := a.link.up(); prev != StateConnected && prev != "" {
		if prev == StateConnecting {
			a.log.Info("redis connected")
			return
		}
		a.reconnects.Add(1)
		a.log.Info("redis connection restored", "down_for", time.Since(since).Round(time.Millisecond).String())
	}
}

func (a *Adapter) linkDown(err error) {
	a.mu.Lock()
	clear(a.confirmed)
	a.mu.Unlock()
	first := a.link.down(err)
	if first {
		a.log.Warn("redis connection lost; serving local clients only, reconnecting", "err", err)
		return
	}
	if n, ok := a.pubErrLog.allow(); ok {
		a.log.Warn("redis still unreachable", "err", err, "suppressed", n)
	}
}

// renewPubSub replaces a subscriber connection that stopped answering:
// go-redis only reconnects after an error, and a silent peer raises none.
func (a *Adapter) renewPubSub() {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.ps.Close()
	a.ps = a.client.Subscribe(a.ctx)
	for _, n := range a.namespaces {
		a.subscribeLocked(n)
	}
}

// register subscribes the channels of a namespace.
func (a *Adapter) register(n *nspAdapter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.namespaces[n.name] = n
	a.byPattern[n.ch.pattern] = n
	a.byChannel[n.ch.request] = n
	a.byChannel[n.ch.response] = n
	a.byChannel[n.specificResponse] = n
	a.subscribeLocked(n)
}

func (a *Adapter) subscribeLocked(n *nspAdapter) {
	// Errors are fine here: go-redis records the channels and subscribes
	// them again on every reconnection.
	_ = a.ps.PSubscribe(a.ctx, n.ch.pattern)
	_ = a.ps.Subscribe(a.ctx, n.ch.request, n.ch.response, n.specificResponse)
}

func (a *Adapter) unregister(n *nspAdapter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.namespaces[n.name] != n {
		return
	}
	delete(a.namespaces, n.name)
	delete(a.byPattern, n.ch.pattern)
	for _, ch := range []string{n.ch.request, n.ch.response, n.specificResponse} {
		delete(a.byChannel, ch)
	}
	if !a.closed {
		_ = a.ps.PUnsubscribe(a.ctx, n.ch.pattern)
		_ = a.ps.Unsubscribe(a.ctx, n.ch.request, n.ch.response, n.specificResponse)
	}
}

func (a *Adapter) dispatch(channel, pattern string, payload []byte) {
	a.mu.Lock()
	n, isBroadcast := a.byPattern[pattern]
	if !isBroadcast {
		n = a.byChannel[channel]
	}
	a.mu.Unlock()
	if n == nil {
		return
	}
	var err error
	switch {
	case isBroadcast:
		err = n.onBroadcast(channel, payload)
	case channel == n.ch.request:
		err = n.onRequest(payload)
	default:
		err = n.onResponse(payload)
	}
	if err != nil {
		a.malformed.Add(1)
		if s, ok := a.decodeErrLog.allow(); ok {
			a.log.Warn("ignored a malformed message from redis", "channel", channel, "err", err, "suppressed", s)
		}
	}
}

// serverCount is the number of servers subscribed to a request channel,
// this one included; 1 when Redis cannot tell.
func (a *Adapter) serverCount(channel string) int64 {
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.RequestTimeout)
	defer cancel()
	res, err := a.client.PubSubNumSub(ctx, channel).Result()
	if err != nil {
		return 1
	}
	return max(res[channel], 1)
}

// linkState is the subscriber link's state with the time it was entered.
type linkState struct {
	mu      sync.Mutex
	state   State
	since   time.Time
	lastErr string
}

func (l *linkState) set(s State, errText string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.since, l.lastErr = s, time.Now(), errText
}

func (l *linkState) get() (State, time.Time, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.since, l.lastErr
}

// up marks the link connected and returns the previous state and since when.
func (l *linkState) up() (State, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev, since := l.state, l.since
	if prev != StateConnected {
		l.state, l.since = StateConnected, time.Now()
	}
	return prev, since
}

// down marks the link reconnecting; it reports whether it was up before.
func (l *linkState) down(err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err.Error()
	if l.state == StateReconnecting {
		return false
	}
	first := l.state == StateConnected
	l.state, l.since = StateReconnecting, time.Now()
	return first
}

func (l *linkState) setError(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastErr = err.Error()
}

// throttle lets one log line through per period and counts the rest.
type throttle struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged now, with how many were
// suppressed since the last one.
func (t *throttle) allow() (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if now.Sub(t.last) < t.every {
		t.suppressed++
		return 0, false
	}
	n := t.suppressed
	t.last, t.suppressed = now, 0
	return n, true
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func jitter(d time.Duration) time.Duration {
	return d*4/5 + rand.N(d*2/5+1)
}

// sleepCtx waits d or until ctx ends; it reports whether the wait completed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
