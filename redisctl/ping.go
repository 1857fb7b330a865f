package redisctl

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// PingResult is a healthy Redis, as seen by Ping.
type PingResult struct {
	// URL is the target's redacted URL; Mode the client's mode.
	URL  string `json:"url"`
	Mode Mode   `json:"mode"`
	// Version is the server's redis_version ("" when INFO does not say:
	// the embedded development Redis has no server section).
	Version string `json:"version"`
	// ServerMode is redis_mode from INFO (standalone, cluster, sentinel;
	// "" when not reported).
	ServerMode string `json:"server_mode"`
	// Pings is how many PINGs were answered; Min, Avg and Max their round trips.
	Pings int           `json:"pings"`
	Min   time.Duration `json:"-"`
	Avg   time.Duration `json:"-"`
	Max   time.Duration `json:"-"`
	// PubSub is the time from PUBLISH to receiving the message back on a
	// subscription: the path every cross-worker event takes.
	PubSub time.Duration `json:"-"`
	// Nodes are the servers of a cluster or Sentinel setup (none for
	// standalone).
	Nodes []Node `json:"nodes"`
}

// Ping checks that t's client is usable by the Socket.IO adapter: PING
// count times (count < 1 means 1), INFO for the version and mode, then a
// pub/sub round trip on a channel of its own (SUBSCRIBE, PUBLISH, receive);
// for a cluster or Sentinel URL it lists every node it can see, with a
// PING to each. Bound it with ctx. Failures are *Error.
func (t *Target) Ping(ctx context.Context, count int) (*PingResult, error) {
	if t.Client == nil {
		return nil, fmt.Errorf("redisctl: Ping on a Target without a client (use Open)")
	}
	c := t.Client
	res := &PingResult{URL: t.URL, Mode: t.Mode}
	count = max(count, 1)
	var total time.Duration
	for i := range count {
		start := time.Now()
		if err := c.Ping(ctx).Err(); err != nil {
			return nil, t.Classify(err)
		}
		d := time.Since(start)
		total += d
		if i == 0 || d < res.Min {
			res.Min = d
		}
		res.Max = max(res.Max, d)
		res.Pings++
	}
	res.Avg = total / time.Duration(res.Pings)

	// INFO is best effort for the version (an ACL may forbid it, the
	// embedded Redis answers without a server section) but decides the mode.
	if info, err := c.Info(ctx).Result(); err == nil {
		fields := infoFields(info)
		res.Version, res.ServerMode = fields["redis_version"], fields["redis_mode"]
	} else if ctx.Err() != nil {
		return nil, t.Classify(err)
	}
	if err := t.checkMode(res.ServerMode); err != nil {
		return nil, err
	}

	rtt, err := t.pubSubRoundTrip(ctx)
	if err != nil {
		return nil, err
	}
	res.PubSub = rtt
	if res.Nodes, err = t.nodes(ctx); err != nil {
		return nil, err
	}
	return res, nil
}

// checkMode refuses a standalone client talking to a cluster node or to a
// Sentinel: commands would work there, broadcasts would not.
func (t *Target) checkMode(serverMode string) error {
	if t.Mode != Standalone {
		return nil
	}
	addr := strings.Join(t.Addrs, ",")
	switch serverMode {
	case "cluster":
		return &Error{URL: t.URL, Cause: CauseWrongMode,
			Detail: fmt.Sprintf("this is a standalone URL but %s is a Redis Cluster node", addr),
			Hint:   "use redis+cluster://" + addr + " (add ?addr=host:port for more seed nodes)"}
	case "sentinel":
		return &Error{URL: t.URL, Cause: CauseWrongMode,
			Detail: fmt.Sprintf("this is a standalone URL but %s is a Sentinel, which cannot publish", addr),
			Hint:   "use redis+sentinel://" + addr + "?master_name=NAME (the master the Sentinel monitors)"}
	}
	return nil
}

// pubSubRoundTrip subscribes to a fresh channel, publishes one message
// there and waits for it.
func (t *Target) pubSubRoundTrip(ctx context.Context) (time.Duration, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	channel := "frutos:ping:" + hex.EncodeToString(nonce[:])
	payload := "frutos-ping-" + hex.EncodeToString(nonce[:4])

	ps := t.Client.Subscribe(ctx, channel)
	defer ps.Close()
	// Wait until Redis confirms the subscription, or a PUBLISH could
	// overtake it.
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return 0, t.pubSubError("SUBSCRIBE", err)
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Channel == channel {
			break
		}
	}
	start := time.Now()
	n, err := t.Client.Publish(ctx, channel, payload).Result()
	if err != nil {
		return 0, t.pubSubError("PUBLISH", err)
	}
	// On Redis Cluster PUBLISH counts the subscribers of the node it went
	// to only, and go-redis sends it to any node: there the message
	// arriving is the proof.
	if n < 1 && t.Mode != Cluster {
		return 0, &Error{URL: t.URL, Cause: CauseProtocol,
			Detail: "PUBLISH reached no subscriber although one was subscribed: pub/sub does not work on this server",
			Hint:   "the Socket.IO adapter needs pub/sub; is this a proxy that does not forward it?"}
	}
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return 0, t.pubSubError("receive", err)
		}
		if m, ok := msg.(*redis.Message); ok && m.Channel == channel && m.Payload == payload {
			return time.Since(start), nil
		}
	}
}

func (t *Target) pubSubError(step string, err error) *Error {
	e := t.Classify(err)
	e.Detail = "pub/sub " + step + ": " + e.Detail
	return e
}

// infoFields reads the "key:value" lines of an INFO reply.
func infoFields(info string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}
