package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux this runs on).
const clockTicks = 100

// cpuSeconds is the user + system CPU time of pid so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name may hold spaces: fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14
	st, _ := strconv.ParseFloat(f[12], 64) // field 15
	return (ut + st) / clockTicks
}

// rssKB is the resident set of pid (VmRSS).
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func sumRSS(pids []int) int64 {
	var n int64
	for _, p := range pids {
		n += rssKB(p)
	}
	return n
}

func sumCPU(pids []int) float64 {
	var s float64
	for _, p := range pids {
		s += cpuSeconds(p)
	}
	return s
}

// sample is the server's state at one instant.
type sample struct {
	at         int64 // unix ms
	workersRSS int64 // kB
	workersCPU float64
	masterCPU  float64
	redisCPU   float64
}

// sampler records samples of the server's processes every period.
type sampler struct {
	workers []int
	master  int
	redis   int
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	done    sync.WaitGroup
}

func startSampler(workers []int, master, redis int, period time.Duration) *sampler {
	s := &sampler{workers: workers, master: master, redis: redis, stop: make(chan struct{})}
	s.take()
	s.done.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.take()
			}
		}
	})
	return s
}

func (s *sampler) take() {
	x := sample{at: time.Now().UnixMilli(), workersRSS: sumRSS(s.workers), workersCPU: sumCPU(s.workers)}
	if s.master > 0 {
		x.masterCPU = cpuSeconds(s.master)
	}
	if s.redis > 0 {
		x.redisCPU = cpuSeconds(s.redis)
	}
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
}

func (s *sampler) Stop() []sample {
	close(s.stop)
	s.done.Wait()
	s.take()
	return s.samples
}

// at is the last sample taken at or before t (unix ms).
func at(samples []sample, t int64) sample {
	best := samples[0]
	for _, x := range samples {
		if x.at <= t {
			best = x
		}
	}
	return best
}

// loadAvg is the 1-minute load average: this machine may be shared, and
// a run is only as good as the CPU it got.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
