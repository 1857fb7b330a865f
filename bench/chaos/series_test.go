package chaos

import "testing"

// The soak's verdict: a leak is flagged, warm-up noise and a sawtooth of
// reloads are not.
func TestSeriesVerdicts(t *testing.T) {
	mb := func(vals ...float64) []Sample {
		var out []Sample
		for _, v := range vals {
			out = append(out, Sample{Processes: []ProcSample{{Name: "daemon", RSS: uint64(v * (1 << 20)), Goroutines: 10, FDs: 20}}})
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		rss   []float64
		grows bool
	}{
		{"leak", []float64{20, 25, 30, 35, 40, 45, 50, 55, 60}, true},
		{"flat with noise", []float64{30, 32, 29, 31, 33, 30, 31, 32, 30}, false},
		{"reload sawtooth", []float64{20, 40, 60, 22, 41, 58, 21, 40, 61}, false},
		{"small growth under the floor", []float64{20, 21, 22, 23, 24, 25, 26, 27, 28}, false},
		{"too short", []float64{20, 90}, false},
	} {
		var got *Series
		for _, s := range series(mb(tc.rss...)) {
			if s.Name == "daemon RSS MB" {
				got = &s
			}
		}
		if got == nil || got.Grows != tc.grows {
			t.Errorf("%s: %+v, want grows=%v", tc.name, got, tc.grows)
		}
	}
}
