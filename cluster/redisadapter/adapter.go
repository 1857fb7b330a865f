package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// Options configures an Adapter. The zero value is usable: the classic
// protocol with Node's defaults.
type Options struct {
	// Key is the channel prefix, "socket.io" by default (Node's opts.key,
	// and the sharded adapter's channelPrefix).
	Key string
	// Sharded selects Redis 7 sharded Pub/Sub (SPUBLISH/SSUBSCRIBE), the
	// protocol of Node's createShardedAdapter, for Redis Cluster. Every
	// server of a namespace must use the same protocol; Node's
	// @socket.io/redis-emitter cannot reach sharded servers (this
	// package's Emitter can, with Emitter.Sharded).
	Sharded bool
	// SubscriptionMode is the sharded channel layout (Node's
	// subscriptionMode): SubscriptionDynamic by default.
	SubscriptionMode SubscriptionMode
	// Streams selects the protocol of @socket.io/redis-streams-adapter
	// 0.3 (codec_streams.go): broadcasts go through a Redis stream, read
	// back from the last id after an outage, and with connection state
	// recovery the sessions live in Redis, so a client whose server died
	// gets its session back elsewhere (streams_sessions.go). Key is then
	// the Pub/Sub channel prefix and Sharded selects sharded Pub/Sub for
	// the requests. Node's @socket.io/redis-emitter cannot reach it (this
	// package's Emitter can, with Emitter.Streams).
	Streams bool
	// Stream are the streams protocol's settings.
	Stream StreamOptions
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
	// after every failed attempt. Defaults 100ms and 500ms (node-redis's
	// cap): whatever is published after Redis is back and before the
	// subscriber is, is lost to everyone (pub/sub keeps nothing), so the
	// cap is the delivery gap after an outage; a dial every half second
	// costs nothing.
	BackoffMin, BackoffMax time.Duration
	// Logger receives state changes and throttled error lines. Default: none.
	Logger *slog.Logger
}

func (o *Options) withDefaults() {
	if o.Key == "" {
		o.Key = "socket.io"
	}
	if o.SubscriptionMode == "" || !o.SubscriptionMode.valid() {
		o.SubscriptionMode = SubscriptionDynamic
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
		o.BackoffMax = max(500*time.Millisecond, o.BackoffMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Streams {
		o.Stream.withDefaults()
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
	Protocol  string    `json:"protocol"` // "classic", or "sharded/<subscription mode>"

	Published     uint64 `json:"published"`      // messages published
	PublishErrors uint64 `json:"publish_errors"` // messages lost to publish errors
	Dropped       uint64 `json:"dropped"`        // messages dropped, publish queue full
	Received      uint64 `json:"received"`       // messages received from Redis
	Malformed     uint64 `json:"malformed"`      // received messages that could not be decoded
	Reconnects    uint64 `json:"reconnects"`     // times the subscriber link came back
	TimedOut      uint64 `json:"timed_out"`      // cluster requests that ended on timeout
	HandedOver    uint64 `json:"handed_over"`    // sessions restored from another server (handover.go)

	// The streams protocol only.
	Appended      uint64 `json:"appended,omitempty"`       // entries added to the stream
	StreamReads   uint64 `json:"stream_reads,omitempty"`   // XREAD calls
	StreamRanges  uint64 `json:"stream_ranges,omitempty"`  // XRANGE calls (restores older than what was read)
	StreamSkipped uint64 `json:"stream_skipped,omitempty"` // times Redis trimmed entries before this server read them
	Restored      uint64 `json:"restored,omitempty"`       // sessions restored from Redis
	RestoreMisses uint64 `json:"restore_misses,omitempty"` // sessions asked for and not restored
	LiveSessions  int    `json:"live_sessions,omitempty"`  // sessions of connected sockets kept in Redis

	// Subscriptions is how many channels and patterns the adapter listens
	// to (in the sharded dynamic modes, one per room); Unconfirmed how many
	// of them Redis has not confirmed yet.
	Subscriptions int `json:"subscriptions"`
	Unconfirmed   int `json:"unconfirmed"`
}

// Adapter joins the namespaces of one Socket.IO server to the other servers
// (Go or Node) on the same Redis. Pass it to ServerOptions.SetAdapter; use
// one Adapter per server. It publishes through client and holds one
// subscriber connection of its own (on Redis Cluster with the sharded
// protocol, one per master).
type Adapter struct {
	client redis.UniversalClient // publishes, counts, subscribes; the caller's
	// cluster is client on Redis Cluster; perNode is set when shard
	// channels are subscribed on a link per master (subscriber.go).
	cluster *redis.ClusterClient
	perNode bool
	opts    Options
	log     *slog.Logger

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	queue    chan outgoing
	draining chan struct{} // closed by Close: publish what is queued, then stop
	pubDone  chan struct{} // closed when the publisher has stopped
	subKick  chan struct{} // wakes the subscription loop

	mu           sync.Mutex
	main         *subLink                     // the client's own Pub/Sub, once needed
	nodes        map[string]*subLink          // Redis Cluster masters' links, by address
	namespaces   map[string]*nspAdapter       // by namespace name
	routes       map[string]*nspAdapter       // channel or pattern -> its namespace
	wanted       map[subscription]*nspAdapter // what should be subscribed
	base         map[subscription]bool        // the namespaces' permanent subscriptions
	placed       map[subscription]*subLink    // what was asked, of which link
	confirmed    map[subscription]*subLink    // what Redis confirmed, on which link
	placeBackoff time.Duration                // before placing subscriptions again (Redis Cluster)
	closed       bool

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
	missLog       throttle

	// tap, in tests, sees every decoded message of other senders.
	tap atomic.Pointer[func(channel string, payload []byte, m message)]

	handedOver atomic.Uint64 // sessions restored from another server

	// The streams protocol (streams.go, streams_sessions.go).
	logsMu        sync.Mutex
	logs          map[string]*streamLog // by stream name
	leases        *leases
	appended      atomic.Uint64
	streamReads   atomic.Uint64
	streamRanges  atomic.Uint64
	streamSkipped atomic.Uint64
	restored      atomic.Uint64
	restoreMisses atomic.Uint64
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
		subKick:      make(chan struct{}, 1),
		namespaces:   map[string]*nspAdapter{},
		routes:       map[string]*nspAdapter{},
		wanted:       map[subscription]*nspAdapter{},
		base:         map[subscription]bool{},
		nodes:        map[string]*subLink{},
		placed:       map[subscription]*subLink{},
		confirmed:    map[subscription]*subLink{},
		placeBackoff: opts.BackoffMin,
		pubErrLog:    throttle{every: 10 * time.Second},
		decodeErrLog: throttle{every: 10 * time.Second},
		missLog:      throttle{every: 10 * time.Second},
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		a.cluster, a.perNode = cc, opts.Sharded
	}
	a.link.set(StateConnecting, "")
	a.wg.Add(2)
	go a.publishLoop()
	go a.subscribeLoop()
	if opts.Streams {
		a.startStreams()
	}
	return a
}

// New implements socket.AdapterConstructor: the server calls it once per
// namespace.
func (a *Adapter) New(nsp socket.Namespace) socket.Adapter {
	return newNspAdapter(a, nsp)
}

// codecFor is the wire protocol of a namespace whose adapter has uid.
func (a *Adapter) codecFor(nsp, uid string) codec {
	if a.opts.Streams {
		return newStreamsCodec(a.opts.Key, nsp, uid, a.opts.Sharded, a.opts.Stream)
	}
	if a.opts.Sharded {
		return newShardedCodec(a.opts.Key, nsp, uid, a.opts.SubscriptionMode)
	}
	return newClassicCodec(a.opts.Key, nsp, uid)
}

// newUID is a namespace adapter's uid, in the protocol's usual form.
func (a *Adapter) newUID() string {
	if a.opts.Sharded || a.opts.Streams {
		return newHexID(8)
	}
	return newID(6)
}

// Status reports the link state and counters.
func (a *Adapter) Status() Status {
	st, since, lastErr := a.link.get()
	if st == StateConnected && time.Since(time.Unix(0, a.lastPubErr.Load())) < 5*time.Second {
		st = StateDegraded
	}
	s := Status{
		State: st, Since: since, LastError: lastErr, Protocol: "classic",
		Published: a.published.Load(), PublishErrors: a.publishErrors.Load(), Dropped: a.dropped.Load(),
		Received: a.received.Load(), Malformed: a.malformed.Load(), Reconnects: a.reconnects.Load(),
		TimedOut: a.timedOut.Load(), HandedOver: a.handedOver.Load(),
	}
	switch {
	case a.opts.Streams:
		s.Protocol = "streams"
		if a.opts.Sharded {
			s.Protocol = "streams/sharded"
		}
		a.streamStatus(&s)
	case a.opts.Sharded:
		s.Protocol = "sharded/" + string(a.opts.SubscriptionMode)
	}
	a.mu.Lock()
	s.Subscriptions = len(a.wanted)
	for sub := range a.wanted {
		if a.confirmed[sub] == nil {
			s.Unconfirmed++
		}
	}
	a.mu.Unlock()
	return s
}

// Ready reports whether every namespace's permanent subscriptions are
// confirmed by Redis, so that a message published now by another server
// would reach this one. (Room channels of the sharded dynamic modes come
// and go with rooms and are not part of it: see Status.Unconfirmed.)
func (a *Adapter) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	for sub := range a.base {
		if a.confirmed[sub] == nil {
			return false
		}
	}
	return a.streamsReady()
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
	if a.leases != nil {
		// what disconnected sockets left to store (their sessions)
		if lerr := a.leases.flushFinal(ctx); lerr != nil && err == nil {
			err = lerr
		}
	}
	a.cancel()
	a.unblockStreams()
	a.mu.Lock()
	var conns []*redis.PubSub
	if a.main != nil {
		conns = append(conns, a.main.ps)
	}
	for _, l := range a.nodes {
		conns = append(conns, l.ps)
	}
	a.mu.Unlock()
	for _, ps := range conns {
		_ = ps.Close()
	}
	a.wg.Wait()
	return err
}

// publish queues one message for Redis. It never blocks: when the queue is
// full (Redis is gone or too slow) the message is dropped and counted.
func (a *Adapter) publish(m outgoing) {
	select {
	case a.queue <- m:
	default:
		a.dropped.Add(1)
		if m.failed != nil {
			m.failed()
		}
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
	to := redis.Cmdable(a.client)
	if !a.opts.Sharded && !a.opts.Streams {
		to = classicPublisher(ctx, a.client, a.opts.Key)
	}
	cmds := make([]redis.Cmder, len(batch))
	if len(batch) == 1 {
		cmds[0] = a.publishCmd(ctx, to, batch[0])
		err = cmds[0].Err()
	} else {
		pipe := to.Pipeline()
		for i, m := range batch {
			cmds[i] = a.publishCmd(ctx, pipe, m)
		}
		_, err = pipe.Exec(ctx)
	}
	if err == nil {
		a.countSent(batch)
		return
	}
	for i, c := range cmds {
		if c.Err() != nil && batch[i].failed != nil {
			batch[i].failed()
		}
	}
	if a.ctx.Err() != nil {
		return
	}
	if !a.opts.Sharded && !a.opts.Streams {
		followFailover(ctx, a.client)
	}
	a.publishErrors.Add(uint64(len(batch)))
	a.lastPubErr.Store(time.Now().UnixNano())
	a.link.setError(err)
	if n, ok := a.pubErrLog.allow(); ok {
		a.log.Warn("redis publish failed; cross-server messages lost until Redis answers",
			"err", err, "messages", len(batch), "suppressed", n)
	}
}

// countSent counts a batch that Redis took.
func (a *Adapter) countSent(batch []outgoing) {
	a.published.Add(uint64(len(batch)))
	if a.opts.Streams {
		n := 0
		for _, m := range batch {
			if m.stream != "" {
				n++
			}
		}
		a.appended.Add(uint64(n))
	}
}

func (a *Adapter) publishCmd(ctx context.Context, c redis.Cmdable, m outgoing) redis.Cmder {
	if m.stream != "" {
		return c.XAdd(ctx, xaddArgs(m.stream, m.maxLen, m.fields))
	}
	if a.opts.Sharded {
		return c.SPublish(ctx, m.channel, m.payload)
	}
	return c.Publish(ctx, m.channel, m.payload)
}

// serverCount is the number of servers subscribed to a namespace's count
// channel, this one included; 1 when Redis cannot tell. On Redis Cluster
// it sums the nodes' counts (the masters' for shard channels, as Node does).
func (a *Adapter) serverCount(channel string) int64 {
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.RequestTimeout)
	defer cancel()
	count := func(c redis.Cmdable) (int64, error) {
		var res map[string]int64
		var err error
		if a.opts.Sharded {
			res, err = c.PubSubShardNumSub(ctx, channel).Result()
		} else {
			res, err = c.PubSubNumSub(ctx, channel).Result()
		}
		return res[channel], err
	}
	var n int64
	var err error
	if cc, ok := a.client.(*redis.ClusterClient); ok {
		// A shard channel's subscribers are on its master; a classic
		// subscriber may be on any node, replicas included.
		each := cc.ForEachShard
		if a.opts.Sharded {
			each = cc.ForEachMaster
		}
		var mu sync.Mutex
		err = each(ctx, func(ctx context.Context, c *redis.Client) error {
			k, err := count(c)
			mu.Lock()
			n += k
			mu.Unlock()
			return err
		})
	} else {
		n, err = count(a.client)
	}
	if err != nil {
		if s, ok := a.pubErrLog.allow(); ok {
			a.log.Warn("cannot count the servers of a namespace; assuming this one alone", "err", fmt.Sprint(err), "suppressed", s)
		}
		return 1
	}
	return max(n, 1)
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
