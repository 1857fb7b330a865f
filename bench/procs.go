package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// A run too large for one process's file descriptors is split over
// several load processes ("shards"). Each shard opens its share of the
// connections and emits to its own connections at its share of the emit
// rate; the coordinator (RunProcs) sends the broadcast once every shard
// has ramped, and merges the results. They talk in JSON lines: the shard
// writes shardMsg lines on its stdout, the coordinator writes shardCmd
// lines on its stdin.

// shardMsg is one line from a shard.
type shardMsg struct {
	Progress *Progress `json:"progress,omitempty"`
	Ramped   bool      `json:"ramped,omitempty"`
	Result   *Result   `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// shardCmd is one line to a shard: start the emits; the broadcast (if
// any) was sent at BroadcastAt (µs since the epoch).
type shardCmd struct {
	Go          bool  `json:"go"`
	BroadcastAt int64 `json:"broadcast_at,omitempty"`
}

// ShardConn is a started shard: where to write commands, where its
// messages come from, and how to wait for its end.
type ShardConn struct {
	In   io.WriteCloser
	Out  io.Reader
	Wait func() error
}

// Spawner starts shard `shard` of `shards` for the run runID, as a process
// that runs ServeShard on its stdin and stdout (`frutos bench --shard`).
type Spawner func(ctx context.Context, shard, shards int, runID string) (*ShardConn, error)

// ServeShard runs one shard of a multi-process run, talking to the
// coordinator on in and out. cfg must carry Shard, Shards and RunID as the
// coordinator chose them.
func ServeShard(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m shardMsg) {
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(m)
	}
	cfg.Broadcast = false // the coordinator sends it
	cfg.Progress = func(p Progress) { send(shardMsg{Progress: &p}) }
	cfg, err := cfg.withDefaults()
	if err != nil {
		send(shardMsg{Error: err.Error()})
		return err
	}
	cmds := make(chan shardCmd, 1)
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			var c shardCmd
			if json.Unmarshal(sc.Bytes(), &c) == nil && c.Go {
				cmds <- c
				return
			}
		}
	}()
	r := newRunner(cfg)
	res := r.run(ctx, func(ctx context.Context) {
		send(shardMsg{Ramped: true})
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		told := false
		for {
			select {
			case c := <-cmds:
				r.bcastAt.Store(c.BroadcastAt)
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				// Tell the coordinator as soon as every connection has
				// the broadcast, rather than at the next progress tick.
				if n := r.bcastRecv.Load(); !told && n > 0 && n >= r.held.Load() {
					told = true
					p := r.snapshot()
					send(shardMsg{Progress: &p})
				}
			}
		}
	})
	send(shardMsg{Result: res})
	return nil
}

// RunProcs runs cfg over procs load processes started by spawn, and
// merges their results. The broadcast is sent here, once every shard has
// opened its connections.
func RunProcs(ctx context.Context, cfg Config, procs int, spawn Spawner) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if procs < 1 {
		return nil, errors.New("procs must be at least 1")
	}
	// The shards stop by themselves; this bounds a stuck one.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Grace+cfg.BroadcastWait+2*time.Minute)
	defer cancel()

	type shardState struct {
		conn     *ShardConn
		progress Progress
		ramped   bool
		result   *Result
		err      error
		done     bool
	}
	var mu sync.Mutex
	changed := make(chan struct{}, 1)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	shards := make([]*shardState, procs)
	var readers sync.WaitGroup
	for i := range shards {
		conn, err := spawn(ctx, i, procs, cfg.RunID)
		if err != nil {
			cancel()
			readers.Wait()
			return nil, fmt.Errorf("start load process %d of %d: %w", i+1, procs, err)
		}
		st := &shardState{conn: conn}
		shards[i] = st
		readers.Go(func() {
			sc := bufio.NewScanner(conn.Out)
			sc.Buffer(make([]byte, 64<<10), 64<<20)
			for sc.Scan() {
				var m shardMsg
				if json.Unmarshal(sc.Bytes(), &m) != nil {
					continue
				}
				mu.Lock()
				switch {
				case m.Progress != nil:
					st.progress = *m.Progress
				case m.Ramped:
					st.ramped = true
				case m.Result != nil:
					st.result = m.Result
				case m.Error != "":
					st.err = errors.New(m.Error)
				}
				mu.Unlock()
				notify()
			}
			werr := conn.Wait()
			mu.Lock()
			st.done = true
			if st.result == nil && st.err == nil {
				st.err = fmt.Errorf("exited without a result: %v", werr)
			}
			mu.Unlock()
			notify()
		})
	}
	sum := func() (p Progress, ramped bool) {
		mu.Lock()
		defer mu.Unlock()
		p.Ramped = true
		ramped = true
		for _, st := range shards {
			p = p.Add(st.progress)
			ramped = ramped && (st.ramped || st.done)
		}
		return p, ramped
	}

	stopProgress := func() {}
	if cfg.Progress != nil {
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					p, _ := sum()
					cfg.Progress(p)
				}
			}
		})
		stopProgress = func() { close(done); wg.Wait() }
	}

	// wait until cond holds (checked on every message) or d passes.
	wait := func(d time.Duration, cond func() bool) {
		t := time.NewTimer(d)
		defer t.Stop()
		for !cond() {
			select {
			case <-changed:
			case <-t.C:
				return
			case <-ctx.Done():
				return
			}
		}
	}
	start := time.Now()
	wait(cfg.Duration, func() bool { _, r := sum(); return r })
	var at int64
	if cfg.Broadcast && cfg.Emitter != nil && time.Since(start) < cfg.Duration {
		at = nowMicro()
		ectx, ecancel := context.WithTimeout(ctx, 5*time.Second)
		if err := cfg.Emitter.EmitAll(ectx, BroadcastEvent, map[string]any{"s": cfg.RunID, "q": 0, "t": at}); err != nil {
			at = 0
		}
		ecancel()
		if at != 0 {
			wait(cfg.BroadcastWait, func() bool { p, _ := sum(); return p.BcastRecv >= p.Held })
		}
	}
	cmd, _ := json.Marshal(shardCmd{Go: true, BroadcastAt: at})
	for _, st := range shards {
		_, _ = st.conn.In.Write(append(cmd, '\n'))
	}
	readers.Wait()
	stopProgress()
	for _, st := range shards {
		_ = st.conn.In.Close()
	}

	var parts []*Result
	var errs []error
	for i, st := range shards {
		if st.result != nil {
			parts = append(parts, st.result)
		} else {
			errs = append(errs, fmt.Errorf("load process %d of %d: %w", i+1, procs, st.err))
		}
	}
	if len(parts) == 0 {
		return nil, errors.Join(errs...)
	}
	res := Merge(parts...)
	if cfg.Progress != nil {
		p, _ := sum()
		cfg.Progress(p)
	}
	cpu, rss := ownUsage()
	res.CPUSeconds += cpu
	res.MaxRSSKB = max(res.MaxRSSKB, rss)
	return res, errors.Join(errs...)
}
