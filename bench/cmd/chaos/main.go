// Command chaos runs the chaos suite (make chaos) or the soak (make soak)
// against a built frutos binary and writes the report.
//
//	go run ./bench/cmd/chaos -bin bin/frutos -out bench/CHAOS.md
//	go run ./bench/cmd/chaos -soak 30m -bin bin/frutos -out bench/SOAK.md
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/frutos/frutos/bench/chaos"
	"github.com/frutos/frutos/redisctl"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		opts     chaos.Options
		soak     chaos.SoakOptions
		bin      = flag.String("bin", "bin/frutos", "the frutos binary under test")
		out      = flag.String("out", "", "write the Markdown report here (and the JSON next to it); default stdout")
		faults   = flag.String("faults", "", "comma-separated faults to run (default all: "+strings.Join(chaos.AllFaults, ",")+")")
		soakFor  = flag.Duration("soak", 0, "run the soak for this long instead of the chaos suite")
		tokenles = flag.Int("tokenless", 0, "hostile: handshakes without a token (default 10000)")
	)
	flag.IntVar(&opts.Workers, "workers", 4, "workers in the cluster")
	flag.IntVar(&opts.Clients, "clients", 3000, "well-behaved clients")
	flag.Float64Var(&opts.EmitRate, "emit-rate", 300, "targeted emits per second")
	flag.DurationVar(&opts.RedisDown, "redis-down", 15*time.Second, "how long Redis stays down or frozen")
	flag.StringVar(&opts.Adapter, "adapter", "pubsub", "the workers' redis.adapter: pubsub or streams")
	flag.DurationVar(&soak.ReloadEvery, "reload-every", 5*time.Minute, "soak: reload the workers this often")
	flag.DurationVar(&soak.SampleEvery, "sample-every", time.Minute, "soak: sample every process this often")
	flag.BoolVar(&opts.KeepDir, "keep", false, "keep the work directory (logs, configuration)")
	flag.Parse()
	// go-redis prints every failed dial of the emitter during the Redis
	// faults; the report counts what matters (emits refused).
	redisctl.QuietLibraryLogs(nil)
	if *faults != "" {
		opts.Faults = strings.Split(*faults, ",")
	}
	opts.Hostile.Tokenless = *tokenles
	opts.Bin = *bin
	opts.Log = os.Stderr
	if _, err := os.Stat(opts.Bin); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: %v (build it first: make build)\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var md bytes.Buffer
	var report any
	if *soakFor > 0 {
		soak.Options, soak.Duration = opts, *soakFor
		rep, err := chaos.RunSoak(ctx, soak)
		if err != nil {
			fmt.Fprintf(os.Stderr, "soak: %v\n", err)
			return 1
		}
		rep.WriteMarkdown(&md)
		report = rep
	} else {
		rep, err := chaos.Run(ctx, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
			return 1
		}
		rep.WriteMarkdown(&md)
		report = rep
	}
	if *out == "" {
		os.Stdout.Write(md.Bytes())
		return 0
	}
	js, _ := json.MarshalIndent(report, "", "  ")
	if err := os.WriteFile(*out, md.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(strings.TrimSuffix(*out, ".md")+".json", append(js, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", *out)
	return 0
}
