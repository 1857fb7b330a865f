package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/frutos/frutos/control"
)

// Bug 1: `--instances 100000` had no upper limit.
func TestCapacityNamesTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Machine
		want int
		why  string
	}{
		{"cpus", Machine{CPUs: 2, OpenFiles: 1 << 20, MemAvailable: 64 << 30}, 32, "16 per CPU on 2 CPUs"},
		{"ulimit", Machine{CPUs: 8, OpenFiles: 256, MemAvailable: 64 << 30}, 15, "ulimit -n is 256"},
		{"tiny ulimit", Machine{CPUs: 8, OpenFiles: 50, MemAvailable: 64 << 30}, 0, "ulimit -n is 50"},
		{"memory", Machine{CPUs: 64, OpenFiles: 1 << 20, MemAvailable: 320 << 20}, 10, "320 MiB of memory is available"},
		{"unknown memory and ulimit", Machine{CPUs: 1}, 16, "16 per CPU on 1 CPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := tc.m.Capacity()
			if got != tc.want || !strings.Contains(why, tc.why) {
				t.Errorf("Capacity() = %d, %q; want %d, %q", got, why, tc.want, tc.why)
			}
		})
	}
}

func TestCheckCapacityRefusesWithTheReason(t *testing.T) {
	m := Machine{CPUs: 2, OpenFiles: 1 << 20, MemAvailable: 64 << 30}
	if err := m.checkCapacity(32); err != nil {
		t.Errorf("32 workers on 2 CPUs: %v", err)
	}
	err := m.checkCapacity(100000)
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeBadRequest {
		t.Fatalf("100000 workers: %v, want a bad request", err)
	}
	if want := "100000 workers is more than this machine can hold: at most 32 (16 per CPU on 2 CPUs)"; !strings.Contains(ce.Message, want) {
		t.Errorf("message %q, want %q", ce.Message, want)
	}
}

func TestThisMachineReadsTheHost(t *testing.T) {
	m := ThisMachine()
	if m.CPUs < 1 || m.OpenFiles == 0 || m.MemAvailable == 0 {
		t.Errorf("ThisMachine() = %+v", m)
	}
}
