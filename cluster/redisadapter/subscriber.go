package redisadapter

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// The subscriber side of the adapter: one Redis Pub/Sub connection shared
// by every namespace. Namespaces say what they want subscribed (want,
// unwant); subscribeLoop issues the commands in the background, so that a
// socket joining a room (which in the sharded dynamic modes subscribes the
// room's channel) never waits for Redis; receiveLoop reads, dispatches,
// checks the link's health and reconnects with backoff. go-redis records
// every channel, pattern and shard channel of a PubSub and subscribes them
// again after a reconnection.
//
// Redis Cluster (sharded mode) would need more than this one connection:
// SSUBSCRIBE must go to the master of each channel's slot and may name
// channels of one slot only, and go-redis's PubSub resubscribes all its
// shard channels in one command on a connection it opens to a random node.
// See the package documentation (doc.go).

// register subscribes the permanent channels of a namespace.
func (a *Adapter) register(n *nspAdapter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.namespaces[n.name] = n
	subs := n.codec.subscriptions()
	if n.store != nil {
		subs = append(subs, n.handoverSub())
	}
	for _, s := range subs {
		a.base[s] = true
		a.wantLocked(n, s)
	}
	a.kick()
}

// unregister drops every subscription of a namespace.
func (a *Adapter) unregister(n *nspAdapter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.namespaces[n.name] != n {
		return
	}
	delete(a.namespaces, n.name)
	for s, owner := range a.wanted {
		if owner == n {
			delete(a.wanted, s)
			delete(a.base, s)
			delete(a.routes, s.name)
		}
	}
	a.kick()
}

// want subscribes s for namespace n (a room's channel).
func (a *Adapter) want(n *nspAdapter, s subscription) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.namespaces[n.name] != n {
		return
	}
	a.wantLocked(n, s)
	a.kick()
}

func (a *Adapter) wantLocked(n *nspAdapter, s subscription) {
	a.wanted[s] = n
	a.routes[s.name] = n
}

// unwant unsubscribes s.
func (a *Adapter) unwant(n *nspAdapter, s subscription) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.wanted[s] != n || a.base[s] {
		return
	}
	delete(a.wanted, s)
	delete(a.routes, s.name)
	a.kick()
}

// kick wakes subscribeLoop.
func (a *Adapter) kick() {
	select {
	case a.subKick <- struct{}{}:
	default:
	}
}

// subscribeLoop brings the subscriptions of the Pub/Sub connection in line
// with what the namespaces want.
func (a *Adapter) subscribeLoop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.subKick:
		}
		a.reconcile()
	}
}

func (a *Adapter) reconcile() {
	a.mu.Lock()
	ps := a.ps
	var add, del [3][]string // by subMode
	for s := range a.wanted {
		if !a.sent[s] {
			a.sent[s] = true
			add[s.mode] = append(add[s.mode], s.name)
		}
	}
	for s := range a.sent {
		if _, ok := a.wanted[s]; !ok {
			delete(a.sent, s)
			del[s.mode] = append(del[s.mode], s.name)
		}
	}
	a.mu.Unlock()

	// Errors are fine here: go-redis records what was asked and asks it
	// again on every reconnection; the link's trouble is reported by
	// receiveLoop. Unsubscribing must never be called with no channel: that
	// means "all of them".
	ctx := a.ctx
	if len(del[subChannel]) > 0 {
		_ = ps.Unsubscribe(ctx, del[subChannel]...)
	}
	if len(del[subPattern]) > 0 {
		_ = ps.PUnsubscribe(ctx, del[subPattern]...)
	}
	if len(add[subChannel]) > 0 {
		_ = ps.Subscribe(ctx, add[subChannel]...)
	}
	if len(add[subPattern]) > 0 {
		_ = ps.PSubscribe(ctx, add[subPattern]...)
	}
	// Shard channels one command each: Redis Cluster refuses an SSUBSCRIBE
	// naming channels of different slots.
	for _, ch := range del[subShard] {
		_ = ps.SUnsubscribe(ctx, ch)
	}
	for _, ch := range add[subShard] {
		_ = ps.SSubscribe(ctx, ch)
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

// confirm records what Redis says is subscribed. An unsubscription nobody
// asked for (Redis Cluster moving a slot away) is asked again.
func (a *Adapter) confirm(m *redis.Subscription) {
	var s subscription
	subscribed := false
	switch m.Kind {
	case "subscribe", "unsubscribe":
		s, subscribed = subscription{subChannel, m.Channel}, m.Kind == "subscribe"
	case "psubscribe", "punsubscribe":
		s, subscribed = subscription{subPattern, m.Channel}, m.Kind == "psubscribe"
	case "ssubscribe", "sunsubscribe":
		s, subscribed = subscription{subShard, m.Channel}, m.Kind == "ssubscribe"
	}
	a.mu.Lock()
	if subscribed {
		a.confirmed[s] = true
	} else {
		delete(a.confirmed, s)
		if _, ok := a.wanted[s]; ok && a.sent[s] {
			delete(a.sent, s)
			a.kick()
		}
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
	clear(a.sent)
	a.kick()
}

// dispatch hands a received message to its namespace.
func (a *Adapter) dispatch(channel, pattern string, payload []byte) {
	key := channel
	if pattern != "" {
		key = pattern
	}
	a.mu.Lock()
	n := a.routes[key]
	a.mu.Unlock()
	if n == nil {
		return // unsubscribed meanwhile
	}
	if err := n.onMessage(channel, payload); err != nil {
		a.malformed.Add(1)
		if s, ok := a.decodeErrLog.allow(); ok {
			a.log.Warn("ignored a malformed message from redis", "channel", channel, "err", err, "suppressed", s)
		}
	}
}
