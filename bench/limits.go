package bench

import (
	"syscall"

	"github.com/frutos/frutos/internal/sioclient"
)

// reservedFDs are the descriptors a load process keeps for other things
// (Redis, stdio, the runtime).
const reservedFDs = 256

// RaiseFDLimit raises this process's soft limit of open files to its hard
// limit, and returns the soft limit in force.
func RaiseFDLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			l = want
		}
	}
	return l.Cur, nil
}

// FDsPerConn is how many descriptors one connection of the transport
// holds: a websocket one; a polling session two (the pending GET and a
// POST).
func FDsPerConn(transport string) int {
	if transport == sioclient.Polling {
		return 2
	}
	return 1
}

// ProcsFor is how many load processes conns connections need when each
// process may hold limit descriptors.
func ProcsFor(conns int, transport string, limit uint64) int {
	per := int(limit) - reservedFDs
	if per < 1 {
		per = 1
	}
	need := conns * FDsPerConn(transport)
	return max(1, (need+per-1)/per)
}
