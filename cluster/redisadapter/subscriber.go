package redisadapter

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The subscriber side of the adapter. Namespaces say what they want
// subscribed (want, unwant); subscribeLoop places each subscription on a
// link (a Redis Pub/Sub connection) and issues the commands in the
// background, so that a socket joining a room (which in the sharded
// dynamic modes subscribes the room's channel) never waits for Redis; each
// link's receiveLoop reads, dispatches, checks the link's health and
// reconnects with backoff.
//
// Standalone, Sentinel, and the classic protocol on Redis Cluster use one
// link, the client's own Pub/Sub: go-redis records every channel, pattern
// and shard channel of a PubSub and subscribes them again after a
// reconnection (on a cluster, PUBLISH reaches every node, so any node does).
//
// The sharded protocol on Redis Cluster uses one link per master, since
// SSUBSCRIBE must go to the master owning the channel's slot and may name
// channels of one slot only. A node link is never reconnected in place
// (go-redis would resubscribe all its shard channels in one command,
// CROSSSLOT): when it fails it is retired, its subscriptions are placed
// again on the masters the refreshed topology names, after a backoff. A
// slot that moves (Redis sends an unsolicited sunsubscribe) or a channel a
// node refuses (MOVED) is placed again the same way.

// subLink is one subscriber connection.
type subLink struct {
	addr string // "" for the client's own Pub/Sub; else the cluster master's host:port
	ps   *redis.PubSub
}

// placement is one subscription on one link.
type placement struct {
	link *subLink
	sub  subscription
}

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

// subscribeLoop brings the subscriptions of the links in line with what
// the namespaces want.
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
	var unplaced []subscription
	var drop []placement
	for s := range a.wanted {
		if a.placed[s] == nil {
			unplaced = append(unplaced, s)
		}
	}
	for s, l := range a.placed {
		if _, ok := a.wanted[s]; !ok {
			delete(a.placed, s)
			drop = append(drop, placement{l, s})
		}
	}
	a.mu.Unlock()

	owners, located := a.locate(unplaced)
	var add []placement
	a.mu.Lock()
	for _, s := range unplaced {
		node, ok := owners[s]
		if _, still := a.wanted[s]; !ok || !still || a.placed[s] != nil || a.closed {
			continue
		}
		l := a.linkLocked(node)
		a.placed[s] = l
		add = append(add, placement{l, s})
	}
	a.mu.Unlock()

	a.issue(drop, false)
	a.issue(add, true)
	if !located {
		a.retryLater()
	}
}

// locate finds the link each subscription belongs on: the client's own
// (nil) but for shard channels on Redis Cluster, which go to the master of
// their slot. located is false when some could not be placed now (the
// cluster's topology is unknown or changing).
func (a *Adapter) locate(subs []subscription) (owners map[subscription]*redis.Client, located bool) {
	owners = make(map[subscription]*redis.Client, len(subs))
	located = true
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.RequestTimeout)
	defer cancel()
	for _, s := range subs {
		if !a.perNode || s.mode != subShard {
			owners[s] = nil
			continue
		}
		node, err := a.cluster.MasterForKey(ctx, s.name)
		if err != nil {
			if located && a.ctx.Err() == nil {
				a.linkDown(nil, errors.New("redis cluster topology: "+err.Error()))
			}
			located = false
			continue
		}
		owners[s] = node
	}
	return owners, located
}

// linkLocked returns the link to node (nil: the client's own), opening it
// and starting its receive loop if needed.
func (a *Adapter) linkLocked(node *redis.Client) *subLink {
	if node == nil {
		if a.main == nil {
			a.main = a.openLinkLocked("", a.client)
		}
		return a.main
	}
	addr := node.Options().Addr
	if l := a.nodes[addr]; l != nil {
		return l
	}
	l := a.openLinkLocked(addr, node)
	a.nodes[addr] = l
	return l
}

func (a *Adapter) openLinkLocked(addr string, c redis.UniversalClient) *subLink {
	l := &subLink{addr: addr, ps: c.Subscribe(a.ctx)}
	a.wg.Add(1)
	go a.receiveLoop(l)
	return l
}

// issue sends the (un)subscribe commands of placements. Errors are fine
// here: the link's trouble is reported by its receive loop, which
// reconnects (the client's own link: go-redis asks again what was asked)
// or retires the link (node links: the subscriptions are placed again).
// Unsubscribing must never be called with no channel: that means "all of
// them".
func (a *Adapter) issue(ps []placement, subscribe bool) {
	ctx := a.ctx
	byLink := map[*subLink]*[3][]string{} // by subMode
	for _, p := range ps {
		if byLink[p.link] == nil {
			byLink[p.link] = &[3][]string{}
		}
		byLink[p.link][p.sub.mode] = append(byLink[p.link][p.sub.mode], p.sub.name)
	}
	for l, names := range byLink {
		a.mu.Lock()
		pubsub := l.ps
		a.mu.Unlock()
		channels, patterns, shards := names[subChannel], names[subPattern], names[subShard]
		if subscribe {
			if len(channels) > 0 {
				_ = pubsub.Subscribe(ctx, channels...)
			}
			if len(patterns) > 0 {
				_ = pubsub.PSubscribe(ctx, patterns...)
			}
		} else {
			if len(channels) > 0 {
				_ = pubsub.Unsubscribe(ctx, channels...)
			}
			if len(patterns) > 0 {
				_ = pubsub.PUnsubscribe(ctx, patterns...)
			}
		}
		// Shard channels one command each: Redis Cluster refuses an
		// SSUBSCRIBE naming channels of different slots.
		for _, ch := range shards {
			if subscribe {
				_ = pubsub.SSubscribe(ctx, ch)
			} else {
				_ = pubsub.SUnsubscribe(ctx, ch)
			}
		}
	}
}

// retryLater runs reconcile again after the placement backoff, which
// doubles at every call until a subscription is confirmed.
func (a *Adapter) retryLater() {
	if a.cluster != nil {
		a.cluster.ReloadState(a.ctx)
	}
	a.mu.Lock()
	d := a.placeBackoff
	a.placeBackoff = min(d*2, a.backoffMax())
	a.mu.Unlock()
	time.AfterFunc(jitter(d), a.kick)
}

// backoffMax caps the reconnection backoff. A Redis Cluster replaces a
// failed master within seconds, and the client learns it only by asking
// again: so on a cluster the cap is at most a second, which costs a dial
// per second and node while a node is gone.
func (a *Adapter) backoffMax() time.Duration {
	if a.cluster != nil {
		return min(a.opts.BackoffMax, time.Second)
	}
	return a.opts.BackoffMax
}

// receiveLoop reads one link, watches its health and reconnects with
// capped exponential backoff (node links: retires them).
func (a *Adapter) receiveLoop(l *subLink) {
	defer a.wg.Done()
	backoff := a.opts.BackoffMin
	pingSent := false
	for {
		a.mu.Lock()
		ps := l.ps
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
			// A silent link is replaced (go-redis reconnects only after an
			// error): its subscriptions are confirmed again on the new one.
			silent := isTimeout(err)
			if silent {
				err = errors.New("redis did not answer a ping: connection presumed dead")
			}
			pingSent = false
			var rerr redis.Error
			switch {
			case l.addr != "" && errors.As(err, &rerr) && !isTimeout(err):
				// A refused SSUBSCRIBE (MOVED: the slot is elsewhere
				// now); the connection is fine.
				a.misplaced(l, err)
				continue
			case l.addr != "":
				a.retire(l, err)
				return
			}
			if silent {
				a.renewPubSub(l)
			}
			if a.cluster != nil {
				a.cluster.ReloadState(a.ctx)
			}
			a.linkDown(l, err)
			if !sleepCtx(a.ctx, jitter(backoff)) {
				return
			}
			backoff = min(backoff*2, a.backoffMax())
			continue
		}
		pingSent = false
		backoff = a.opts.BackoffMin
		switch m := msg.(type) {
		case *redis.Message:
			a.linkUp(l)
			a.received.Add(1)
			a.dispatch(l, m.Channel, m.Pattern, []byte(m.Payload))
		case *redis.Subscription:
			a.confirm(l, m)
		case *redis.Pong:
			a.linkUp(l)
		}
	}
}

// confirm records what Redis says is subscribed on l. An unsubscription
// nobody asked for (Redis Cluster moving a slot away) is placed again; a
// confirmation for a subscription placed elsewhere meanwhile is undone.
func (a *Adapter) confirm(l *subLink, m *redis.Subscription) {
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
	stale, moved := false, false
	a.mu.Lock()
	switch {
	case subscribed && a.placed[s] == l:
		a.confirmed[s] = l
		if l.addr != "" {
			a.placeBackoff = a.opts.BackoffMin
		}
	case subscribed:
		stale = l.addr != ""
	default:
		if a.confirmed[s] == l {
			delete(a.confirmed, s)
		}
		if _, ok := a.wanted[s]; ok && a.placed[s] == l {
			delete(a.placed, s)
			moved = true
		}
	}
	a.mu.Unlock()
	switch {
	case stale:
		a.issue([]placement{{l, s}}, false)
	case moved && a.cluster != nil:
		a.retryLater()
	case moved:
		a.kick()
	}
	a.linkUp(l)
}

// misplaced handles a node refusing a shard channel: the subscriptions of
// l it has not confirmed are placed again once the topology is refreshed.
// MOVED is the topology changing; anything else (an ACL refusal) is
// logged, since it will not go away by itself.
func (a *Adapter) misplaced(l *subLink, err error) {
	if !strings.HasPrefix(err.Error(), "MOVED ") {
		if n, ok := a.pubErrLog.allow(); ok {
			a.log.Warn("a redis cluster node refused a subscription", "node", l.addr, "err", err, "suppressed", n)
		}
	}
	a.mu.Lock()
	for s, pl := range a.placed {
		if pl == l && a.confirmed[s] != l {
			delete(a.placed, s)
		}
	}
	a.mu.Unlock()
	a.retryLater()
}

// retire closes a failed node link; its subscriptions are placed again
// after a backoff, on the masters the refreshed topology names.
func (a *Adapter) retire(l *subLink, err error) {
	a.mu.Lock()
	if a.nodes[l.addr] == l {
		delete(a.nodes, l.addr)
	}
	for s, pl := range a.placed {
		if pl == l {
			delete(a.placed, s)
		}
	}
	a.mu.Unlock()
	_ = l.ps.Close()
	a.linkDown(l, err)
	a.retryLater()
}

// linkUp marks the adapter connected after a sign of life on l, unless
// (Redis Cluster, sharded) some subscription still waits for a master.
func (a *Adapter) linkUp(l *subLink) {
	if st, _, _ := a.link.get(); st == StateConnected {
		return
	}
	if l.addr != "" {
		a.mu.Lock()
		waiting := false
		for s := range a.wanted {
			if a.placed[s] == nil {
				waiting = true
				break
			}
		}
		a.mu.Unlock()
		if waiting {
			return
		}
	}
	if prev, since := a.link.up(); prev != StateConnected && prev != "" {
		if prev == StateConnecting {
			a.log.Info("redis connected")
			return
		}
		a.reconnects.Add(1)
		a.log.Info("redis connection restored", "down_for", time.Since(since).Round(time.Millisecond).String())
	}
}

// linkDown records that l (nil: the cluster's topology) failed with err:
// what it had confirmed is not subscribed any more.
func (a *Adapter) linkDown(l *subLink, err error) {
	a.mu.Lock()
	for s, cl := range a.confirmed {
		if cl == l {
			delete(a.confirmed, s)
		}
	}
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

// renewPubSub replaces the client's own subscriber connection when it
// stopped answering: go-redis only reconnects after an error, and a silent
// peer raises none.
func (a *Adapter) renewPubSub(l *subLink) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = l.ps.Close()
	l.ps = a.client.Subscribe(a.ctx)
	for s, pl := range a.placed {
		if pl == l {
			delete(a.placed, s)
		}
	}
	a.kick()
}

// dispatch hands a message received on l to its namespace.
func (a *Adapter) dispatch(l *subLink, channel, pattern string, payload []byte) {
	key := channel
	if pattern != "" {
		key = pattern
	}
	a.mu.Lock()
	n := a.routes[key]
	if l.addr != "" && a.placed[subscription{subShard, channel}] != l {
		n = nil // moved to another master meanwhile: delivered there
	}
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
