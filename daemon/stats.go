package daemon

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/frutos/frutos/control"
)

// sampleEvery is how often worker health, CPU and memory are read.
const sampleEvery = time.Second

// selfStats is the daemon's own CPU and RSS.
type selfStats struct {
	cpu float64
	rss uint64
}

// sample reads every second each live worker's /stats (readiness,
// connections, events) and its CPU and RSS, restarts a worker above
// max_memory_restart, and checks Redis now and then.
func (d *Daemon) sample(ctx context.Context) {
	procs := map[int]*process.Process{} // by pid, for CPU deltas
	self, _ := process.NewProcess(int32(os.Getpid()))
	lastDelivered := map[string]uint64{}
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n++
		live := d.router.all()
		seen := map[int]bool{}
		var wg sync.WaitGroup
		for _, inst := range live {
			pid := inst.pid
			seen[pid] = true
			p := procs[pid]
			if p == nil {
				p, _ = process.NewProcess(int32(pid))
				procs[pid] = p
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.sampleOne(ctx, inst, p)
			}()
		}
		wg.Wait()
		for pid := range procs {
			if !seen[pid] {
				delete(procs, pid)
			}
		}
		for _, inst := range live {
			if st := inst.stats.Load(); st != nil {
				prev, ok := lastDelivered[inst.tag]
				if ok && st.Delivered >= prev {
					inst.perSecond.Store(uint64(float64(st.Delivered-prev) / sampleEvery.Seconds() * 100))
				}
				lastDelivered[inst.tag] = st.Delivered
			}
		}
		for tag := range lastDelivered {
			if d.router.byTag(tag) == nil {
				delete(lastDelivered, tag)
			}
		}
		if self != nil {
			var s selfStats
			s.cpu, _ = self.Percent(0)
			if mi, err := self.MemoryInfo(); err == nil {
				s.rss = mi.RSS
			}
			d.statsMu.Lock()
			d.self = s
			d.statsMu.Unlock()
		}
		if n%5 == 1 {
			d.checkRedis(ctx)
		}
		d.enforceMemoryCeiling()
	}
}

func (d *Daemon) sampleOne(ctx context.Context, inst *instance, p *process.Process) {
	if st, err := inst.fetchStats(ctx); err == nil {
		inst.stats.Store(st)
		inst.ready.Store(st.Ready)
		inst.routed.Store(0)
	} else {
		inst.ready.Store(false)
	}
	if p == nil {
		return
	}
	if cpu, err := p.Percent(0); err == nil {
		inst.cpu.Store(uint64(cpu * 100))
	}
	if mi, err := p.MemoryInfo(); err == nil {
		inst.rss.Store(mi.RSS)
	}
}

// checkRedis pings the app's Redis for status and monit.
func (d *Daemon) checkRedis(ctx context.Context) {
	a := d.currentApp()
	if a == nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := a.redis.Ping(pctx, 1)
	st := control.Redis{URL: a.redis.URL, Embedded: a.rstat.Embedded}
	if err != nil {
		st.Error = err.Error()
	} else {
		st.Up = true
		st.LatencyMs = float64(res.Avg.Microseconds()) / 1000
	}
	d.mu.Lock()
	if d.app == a {
		a.rstat = st
	}
	d.mu.Unlock()
}

// enforceMemoryCeiling replaces (zero-downtime) a worker whose RSS passed
// max_memory_restart.
func (d *Daemon) enforceMemoryCeiling() {
	a := d.currentApp()
	if a == nil || a.cfg.Restart.MaxMemoryRestart <= 0 {
		return
	}
	limit := uint64(a.cfg.Restart.MaxMemoryRestart)
	for _, inst := range d.router.all() {
		if inst.routable.Load() && inst.rss.Load() > limit && inst.memoryRestart.CompareAndSwap(false, true) {
			d.log.Warn("worker above max_memory_restart: replacing it", "worker", inst.id, "rss", inst.rss.Load(), "limit", limit)
			go func() {
				if err := d.sup.ReplaceOne(context.Background(), inst); err != nil {
					d.log.Error("memory restart failed", "worker", inst.id, "err", err)
					inst.memoryRestart.Store(false)
				}
			}()
		}
	}
}

// sampleMemory reads the process's RSS once.
func (inst *instance) sampleMemory() {
	if p, err := process.NewProcess(int32(inst.pid)); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			inst.rss.Store(mi.RSS)
		}
	}
}

// ownRSS reads the daemon's RSS now.
func ownRSS() uint64 {
	if p, err := process.NewProcess(int32(os.Getpid())); err == nil {
		if mi, err := p.MemoryInfo(); err == nil {
			return mi.RSS
		}
	}
	return 0
}

// openFDs counts the daemon's open file descriptors (0 where /proc is
// missing).
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
