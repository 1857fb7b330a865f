package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/frutos/frutos/control"
)

type scaleOptions struct {
	IO      *IOStreams
	Daemon  func() *control.Client
	Request control.ScaleRequest
	JSON    bool
}

func newCmdScale(f *Factory, runF func(*scaleOptions) error) *cobra.Command {
	opts := &scaleOptions{IO: f.IO, Daemon: f.Daemon}
	cmd := &cobra.Command{
		Use:   "scale <N|+N|-N>",
		Short: "Set, add or remove workers (removed ones drain first)",
		Long: `Set the number of workers to N, or add (+N) or remove (-N) some. New
workers take the next ids; removed ones are the highest ids, each drained
so its clients reconnect to the others. -N never goes below 1 worker;
scale to 0 explicitly with "frutos scale 0".`,
		Example: "  frutos scale 4\n  frutos scale +2\n  frutos scale -1",
		// "-1" must reach us as an argument, not as a flag: parse by hand.
		DisableFlagParsing: true,
		Args:               cobra.ArbitraryArgs, // checked in RunE, after the hand parsing
		RunE: func(c *cobra.Command, args []string) error {
			rest, help, err := parseArgsByHand(c, args)
			if err != nil {
				return err
			}
			if help {
				return c.Help()
			}
			// The root's check ran before the hand parsing set them.
			if err := f.CheckGlobalFlags(); err != nil {
				return err
			}
			if len(rest) != 1 {
				return usageErrorf("scale takes one argument: N, +N or -N")
			}
			req, err := parseScale(rest[0])
			if err != nil {
				return err
			}
			opts.Request = req
			if runF != nil {
				return runF(opts)
			}
			return callDaemon(opts.IO, opts.JSON, func(ctx context.Context) (control.Result, error) {
				return opts.Daemon().Scale(ctx, opts.Request)
			})
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the status after as JSON")
	return cmd
}

// parseArgsByHand parses the arguments of a command with flag parsing
// off: long flags, the command's and the inherited ones (--config, --env),
// are set; everything else is an argument.
func parseArgsByHand(c *cobra.Command, args []string) (rest []string, help bool, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "--help" {
			return nil, true, nil
		}
		if !strings.HasPrefix(a, "--") {
			rest = append(rest, a)
			continue
		}
		name, val, hasVal := strings.Cut(a[2:], "=")
		fl := c.Flags().Lookup(name)
		if fl == nil {
			fl = c.InheritedFlags().Lookup(name)
		}
		if fl == nil {
			return nil, false, usageErrorf("unknown flag: --%s", name)
		}
		if !hasVal {
			switch {
			case fl.NoOptDefVal != "":
				val = fl.NoOptDefVal
			case i+1 < len(args):
				i++
				val = args[i]
			default:
				return nil, false, usageErrorf("flag needs an argument: --%s", name)
			}
		}
		if err := fl.Value.Set(val); err != nil {
			return nil, false, flagError{err: badFlagValue(fl, val, err)}
		}
	}
	return rest, false, nil
}

func parseScale(arg string) (control.ScaleRequest, error) {
	mode, num := "set", arg
	switch {
	case strings.HasPrefix(arg, "+"):
		mode, num = "add", arg[1:]
	case strings.HasPrefix(arg, "-"):
		mode, num = "sub", arg[1:]
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || (mode != "set" && n == 0) {
		return control.ScaleRequest{}, usageErrorf("%q: give a number of workers N, +N or -N", arg)
	}
	return control.ScaleRequest{Mode: mode, N: n}, nil
}
