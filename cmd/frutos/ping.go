package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/internal/plural"
	"github.com/frutos/frutos/redisctl"
)

type pingOptions struct {
	IO      *IOStreams
	Factory *Factory

	Redis redisFlags
	Count int
	JSON  bool
}

func newCmdPing(f *Factory, runF func(*pingOptions) error) *cobra.Command {
	opts := &pingOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Check that Redis works for frutos (PING, pub/sub round trip)",
		Long: `Check the Redis that frutos uses: PING it --count times (latency min/avg/max),
read its version and mode, and make a pub/sub round trip on a channel of its
own (SUBSCRIBE, PUBLISH, receive), which is what the Socket.IO adapter needs.

The URL is --redis, else REDIS_URL, else redis.url of the configuration, else
(development only) the Redis of a running 'frutos start' (its REDIS_URL, or
its embedded Redis). Forms:
  redis://[user:password@]host:6379[/db]   rediss://... (TLS)
  unix:///path/to/redis.sock[?db=N]
  redis+sentinel://host:26379[/db]?master_name=NAME[&addr=host2:26379][&password=...]
  redis+cluster://host:6379[?addr=host2:6379...]

For a cluster URL it lists every master and replica (role, slots, state,
PING latency); for a Sentinel URL the master the Sentinels name, its
replicas and the Sentinels.

Exit status: 0 when healthy; 4 when Redis is not usable, with one line
naming the cause (refused, timeout, auth failed, TLS error, wrong mode, DNS,
protocol); 2 for a bad URL or flag; 3 for a bad configuration.`,
		Example: `  frutos ping
  frutos ping --redis redis://:s3cret@10.0.0.5:6379/0 --count 10
  frutos ping --redis redis+sentinel://10.0.0.7:26379?master_name=mymaster --json
  frutos ping --redis 'redis+cluster://10.0.0.8:6379?addr=10.0.0.9:6379'`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runPing(opts)
		},
	}
	addRedisFlags(cmd.Flags(), &opts.Redis)
	cmd.Flags().IntVarP(&opts.Count, "count", "c", 3, "how many PINGs to time")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON")
	return cmd
}

// pingJSON is the stable --json shape, for success and failure alike.
type pingJSON struct {
	OK         bool            `json:"ok"`
	URL        string          `json:"url"`
	Mode       redisctl.Mode   `json:"mode"`
	Version    string          `json:"version"`
	ServerMode string          `json:"server_mode"`
	Pings      int             `json:"pings"`
	LatencyMS  *pingLatency    `json:"latency_ms"`
	PubSubMS   *float64        `json:"pubsub_round_trip_ms"`
	Nodes      []pingJSONNode  `json:"nodes"` // cluster and Sentinel: every node seen; [] for standalone
	Error      *pingJSONFailed `json:"error"`
}

type pingJSONNode struct {
	redisctl.Node
	LatencyMS *float64 `json:"latency_ms"` // null when the node did not answer
}

type pingLatency struct {
	Min float64 `json:"min"`
	Avg float64 `json:"avg"`
	Max float64 `json:"max"`
}

type pingJSONFailed struct {
	Cause   redisctl.Cause `json:"cause"`
	Message string         `json:"message"`
	Hint    string         `json:"hint"`
}

func runPing(opts *pingOptions) error {
	if opts.Count < 1 || opts.Count > 10000 {
		return usageErrorf("--count must be between 1 and 10000 (got %d)", opts.Count)
	}
	cfg, err := loadRedisConfig(opts.Factory, opts.Redis)
	if err != nil {
		return err
	}
	conn, err := openRedis(opts.Factory, opts.Redis, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	t := conn.Target
	ctx, cancel := withRedisTimeout(opts.Redis)
	defer cancel()

	res, err := t.Ping(ctx, opts.Count)
	if err != nil {
		rerr := redisFailure(t, err)
		if opts.JSON {
			var e *redisctl.Error
			errors.As(rerr, &e)
			_ = printIndentedJSON(opts.IO, pingJSON{URL: t.URL, Mode: t.Mode,
				Error: &pingJSONFailed{Cause: e.Cause, Message: e.Error(), Hint: e.Hint}})
		}
		return rerr
	}
	if opts.JSON {
		rtt := millis(res.PubSub)
		nodes := []pingJSONNode{}
		for _, n := range res.Nodes {
			jn := pingJSONNode{Node: n}
			if n.Latency > 0 {
				ms := millis(n.Latency)
				jn.LatencyMS = &ms
			}
			nodes = append(nodes, jn)
		}
		return printIndentedJSON(opts.IO, pingJSON{OK: true, URL: res.URL, Mode: res.Mode, Version: res.Version,
			ServerMode: res.ServerMode, Pings: res.Pings,
			LatencyMS: &pingLatency{Min: millis(res.Min), Avg: millis(res.Avg), Max: millis(res.Max)}, PubSubMS: &rtt,
			Nodes: nodes})
	}

	version := res.Version
	switch {
	case conn.Embedded || version == redisctl.EmbeddedVersion:
		version = "embedded development Redis (miniredis)"
	case version != "":
		version = "Redis " + version
	default:
		version = "unknown version (INFO has no server section)"
	}
	server := version
	if res.ServerMode != "" {
		server += ", " + res.ServerMode
	}
	out := opts.IO.Out
	fmt.Fprintf(out, "url:      %s (from %s)\n", res.URL, conn.Source)
	fmt.Fprintf(out, "mode:     %s\n", res.Mode)
	fmt.Fprintf(out, "server:   %s\n", server)
	fmt.Fprintf(out, "latency:  min %s  avg %s  max %s  (%s)\n", millisText(res.Min), millisText(res.Avg), millisText(res.Max), plural.Count(res.Pings, "ping", "pings"))
	_, err = fmt.Fprintf(out, "pub/sub:  OK (round trip %s)\n", millisText(res.PubSub))
	if len(res.Nodes) > 0 {
		fmt.Fprintf(out, "nodes:\n")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		for _, n := range res.Nodes {
			latency := "-"
			if n.Latency > 0 {
				latency = millisText(n.Latency)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", n.Addr, n.Role, nodeDetail(n), n.State, latency)
		}
		err = tw.Flush()
	}
	return err
}

// nodeDetail is a master's slots or a replica's master.
func nodeDetail(n redisctl.Node) string {
	switch {
	case len(n.Slots) > 0:
		var ranges []string
		for _, r := range n.Slots {
			ranges = append(ranges, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
		return "slots " + strings.Join(ranges, ",")
	case n.Master != "":
		return "of " + n.Master
	}
	return "-"
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func millisText(d time.Duration) string { return fmt.Sprintf("%.3fms", millis(d)) }

func printIndentedJSON(s *IOStreams, v any) error {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
