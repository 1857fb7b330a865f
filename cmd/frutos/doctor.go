package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/doctor"
)

type doctorOptions struct {
	IO      *IOStreams
	Factory *Factory
	Redis   redisFlags
	JSON    bool
}

func newCmdDoctor(f *Factory, runF func(*doctorOptions) error) *cobra.Command {
	opts := &doctorOptions{IO: f.IO, Factory: f}
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a deployment: Redis, secret, CORS, limits, logs, startup unit, workers",
		Long: `Run the deployment checklist and print one line per check, ok, warn or fail,
with the fix for what is not ok:

  redis                reachable, its version and mode (redis.sharded needs Redis 7)
  redis memory         maxmemory-policy does not evict frutos's keys
  redis pubsub buffer  client-output-buffer-limit pubsub can hold a burst
  clock                this host's clock agrees with Redis's (token expiry)
  auth secret          set, and at least 32 bytes
  cors                 exact origins, not "*" in production
  open files           ulimit -n (the daemon's) holds limits.max_connections
  somaxconn            net.core.somaxconn holds a reconnect storm
  logs                 the log directory is writable and has free space
  startup              the systemd unit is installed and enabled
  workers              the daemon runs and every worker is online

It changes nothing. Exit status 1 when a check fails (warnings do not).`,
		Example: "  frutos doctor\n  frutos doctor --env production --config /etc/frutos/frutos.yaml\n  frutos doctor --json | jq '.checks[] | select(.status != \"ok\")'",
		Args:    cobra.NoArgs,
		// A file that does not decode is the config check's fail line.
		Annotations: map[string]string{annotationReportsConfig: "yes"},
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runDoctor(opts)
		},
	}
	addRedisFlags(cmd.Flags(), &opts.Redis)
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the checks as JSON")
	return cmd
}

// doctorJSON is the stable --json shape.
type doctorJSON struct {
	OK     bool            `json:"ok"`
	Checks []doctor.Result `json:"checks"`
}

func runDoctor(opts *doctorOptions) error {
	f := opts.Factory
	src := doctor.Sources{UnitDirs: doctor.UnitDirs(f.Getenv, userHome())}
	cfg, err := loadRedisConfig(f, opts.Redis)
	if err != nil {
		src.ConfigErr = err
	} else {
		src.Config = cfg
		src.Daemon = f.Daemon()
		conn, err := openRedis(f, opts.Redis, cfg)
		switch {
		case err != nil && cfg.Redis.URL == "" && cfg.Env == configs.Development:
			// Nothing runs yet: frutos start will run the embedded Redis.
			src.RedisEmbedded = true
		case err != nil:
			src.RedisErr = err
		default:
			defer conn.Close()
			src.Redis, src.RedisEmbedded = conn.Target, conn.Embedded
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Redis.Timeout+5*time.Second)
	defer cancel()
	results := doctor.Checks(doctor.Gather(ctx, src))
	failed := 0
	for _, r := range results {
		if r.Status == doctor.Fail {
			failed++
		}
	}
	if opts.JSON {
		if err := printIndentedJSON(opts.IO, doctorJSON{OK: failed == 0, Checks: results}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
		for _, r := range results {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Status, r.Check, r.Detail)
			if r.Fix != "" {
				fmt.Fprintf(tw, "\t\tfix: %s\n", r.Fix)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return withCode(exitFailure, fmt.Errorf("%d of %d checks failed", failed, len(results)), "")
	}
	return nil
}

// userHome is $HOME ("" when unknown): where user units live.
func userHome() string {
	h, _ := os.UserHomeDir()
	return h
}
