package daemon

import (
	"fmt"
	"runtime"
	"syscall"

	"github.com/shirou/gopsutil/v4/mem"
)

// What one worker costs the machine, for Capacity. A worker is a process
// of its own (CPU), the daemon keeps about ten descriptors open for it
// (its out and err log files and pipes, the liveness pipe, connections to
// its control socket, a handed-over websocket in flight), and an idle
// worker's RSS is some 20-30 MiB.
const (
	workersPerCPU   = 16
	fdsPerWorker    = 10
	fdsReserved     = 100 // the daemon's own: control socket, front door, Redis, stats
	memoryPerWorker = 32 << 20
)

// Machine is what Capacity reads from the host.
type Machine struct {
	CPUs         int    // usable CPUs
	OpenFiles    uint64 // the daemon's RLIMIT_NOFILE (soft)
	MemAvailable uint64 // bytes (0: unknown, not a limit)
}

// ThisMachine reads the host Capacity limits on.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU()}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		m.OpenFiles = rl.Cur
	}
	m.MemAvailable = memAvailable()
	return m
}

// Capacity is the number of workers m can hold, and what limits it
// ("16 per CPU on 2 CPUs", "ulimit -n 1024: 10 descriptors per worker",
// "1.5 GiB of available memory: 32 MiB per worker"). A start or scale
// above it is refused before anything runs: `--instances 100000` spawned
// workers for minutes and left thousands running.
func (m Machine) Capacity() (int, string) {
	limit := max(m.CPUs, 1) * workersPerCPU
	why := fmt.Sprintf("%d per CPU on %d CPUs", workersPerCPU, max(m.CPUs, 1))
	if m.OpenFiles > 0 {
		n := 0
		if m.OpenFiles > fdsReserved {
			n = int(min((m.OpenFiles-fdsReserved)/fdsPerWorker, 1<<20))
		}
		if n < limit {
			limit = n
			why = fmt.Sprintf("ulimit -n is %d and the daemon keeps %d descriptors per worker; raise it (LimitNOFILE= in the unit, or ulimit -n)", m.OpenFiles, fdsPerWorker)
		}
	}
	if m.MemAvailable > 0 {
		if n := int(min(m.MemAvailable/memoryPerWorker, 1<<20)); n < limit {
			limit = n
			why = fmt.Sprintf("%d MiB of memory is available and a worker needs about %d MiB", m.MemAvailable>>20, memoryPerWorker>>20)
		}
	}
	return limit, why
}

// checkCapacity refuses n workers when m cannot hold them.
func (m Machine) checkCapacity(n int) error {
	limit, why := m.Capacity()
	if n <= limit {
		return nil
	}
	return badRequestf("%d workers is more than this machine can hold: at most %d (%s); \"max\" runs one worker per CPU", n, limit, why)
}

// memAvailable is the memory available to new processes in bytes
// (MemAvailable of /proc/meminfo), 0 when unknown.
func memAvailable() uint64 {
	v, err := mem.VirtualMemory()
	if err != nil {
		return 0
	}
	return v.Available
}
