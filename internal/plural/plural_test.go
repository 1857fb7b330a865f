package plural

import "testing"

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "0 workers"}, {1, "1 worker"}, {2, "2 workers"}, {-1, "-1 workers"}, {1000, "1000 workers"}} {
		if got := Count(tc.n, "worker", "workers"); got != tc.want {
			t.Errorf("Count(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	if got := Count(uint64(3), "line", "lines"); got != "3 lines" {
		t.Errorf("a uint64: %q", got)
	}
	if got := Count(int64(1), "process", "processes"); got != "1 process" {
		t.Errorf("an irregular plural: %q", got)
	}
}
