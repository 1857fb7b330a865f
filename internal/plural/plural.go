// Package plural writes a count with its noun, for what the CLI, the
// daemon's answers and the monitor print: "1 worker", "2 workers".
package plural

import "fmt"

// Integer is any integer type: counts come as int, int64 (Redis replies)
// and uint64 (counters).
type Integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 | ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64
}

// Count is n followed by one when n is 1, else by many: Count(1, "worker",
// "workers") is "1 worker", Count(0, "worker", "workers") "0 workers".
func Count[N Integer](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
