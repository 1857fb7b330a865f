package bench

import (
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
)

// Every bucket's range is contiguous with the next, and every value falls
// in the bucket whose range holds it.
func TestHistogramBuckets(t *testing.T) {
	var next int64
	for i := range histBuckets - 1 {
		lo, hi := bucketRange(i)
		if lo != next || hi < lo {
			t.Fatalf("bucket %d = [%d, %d], want it to start at %d", i, lo, hi, next)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d = [%d, %d] but bucketOf gives %d and %d", i, lo, hi, bucketOf(lo), bucketOf(hi))
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d = [%d, %d] is wider than 1/%d of its value", i, lo, hi, histSub)
		}
		next = hi + 1
	}
}

// Quantiles are within 1 % of the exact ones, min and max exact, whatever
// the distribution.
func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, gen := range map[string]func() int64{
		"uniform 0-100ms":  func() int64 { return rng.Int64N(100_000) },
		"exponential 2ms":  func() int64 { return int64(rng.ExpFloat64() * 2000) },
		"small exact":      func() int64 { return rng.Int64N(100) },
		"long tail to 10s": func() int64 { return int64(math.Pow(10, 1+rng.Float64()*6)) },
	} {
		h := NewHistogram()
		samples := make([]int64, 20000)
		for i := range samples {
			samples[i] = gen()
			h.Record(samples[i])
		}
		slices.Sort(samples)
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
			got := h.Quantile(q)
			if diff := math.Abs(float64(got - exact)); diff > math.Max(1, 0.01*float64(exact)) {
				t.Errorf("%s: p%v = %d, exact %d", name, q*100, got, exact)
			}
		}
		if h.Max() != samples[len(samples)-1] || h.Count() != uint64(len(samples)) {
			t.Errorf("%s: max %d count %d, want %d and %d", name, h.Max(), h.Count(), samples[len(samples)-1], len(samples))
		}
	}
}

// Merging the data of two histograms gives the histogram of all samples.
func TestHistogramMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for i := range 5000 {
		v := int64(i * 37 % 90_000)
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	m := NewHistogram()
	m.Add(a.Data())
	m.Add(b.Data())
	if m.Summary() != all.Summary() {
		t.Fatalf("merged %+v, want %+v", m.Summary(), all.Summary())
	}
	if empty := NewHistogram(); empty.Summary() != (Summary{}) || empty.Quantile(0.99) != 0 {
		t.Fatal("an empty histogram must summarise to zeros")
	}
}

func TestParseUserRange(t *testing.T) {
	for in, want := range map[string]UserRange{"5000": {1, 5000}, "1-5000": {1, 5000}, "100-199": {100, 100}, " 0-0 ": {0, 1}} {
		got, err := ParseUserRange(in)
		if err != nil || got != want {
			t.Errorf("ParseUserRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-3", "5-1", "a-b", "1-", "x"} {
		if _, err := ParseUserRange(bad); err == nil {
			t.Errorf("ParseUserRange(%q) accepted", bad)
		}
	}
	if s := (UserRange{First: 1, Count: 5000}).String(); s != "1-5000" {
		t.Errorf("String = %q", s)
	}
}

// The shards of a run open every connection exactly once, and connection
// g is user First + g mod Count.
func TestShardsCoverEveryConnection(t *testing.T) {
	cfg := Config{Users: UserRange{First: 10, Count: 7}}
	for _, n := range []int{1, 2, 7, 100, 1001} {
		for _, k := range []int{1, 2, 3, 8} {
			seen := map[int]bool{}
			for s := range k {
				for i := range shardConns(n, s, k) {
					g := s + i*k
					if g >= n || seen[g] {
						t.Fatalf("n=%d k=%d: shard %d opens connection %d twice or out of range", n, k, s, g)
					}
					seen[g] = true
				}
			}
			if len(seen) != n {
				t.Fatalf("n=%d k=%d: %d connections opened", n, k, len(seen))
			}
		}
	}
	if cfg.userOf(0) != "10" || cfg.userOf(6) != "16" || cfg.userOf(7) != "10" {
		t.Fatalf("userOf: %s %s %s", cfg.userOf(0), cfg.userOf(6), cfg.userOf(7))
	}
}

func TestSourceAddr(t *testing.T) {
	seen := map[string]bool{}
	for i := range 100_000 {
		ip := SourceAddr(i)
		if !ip.IsLoopback() || ip.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("SourceAddr(%d) = %v", i, ip)
		}
		if last := ip.To4()[3]; last < 2 || last == 255 {
			t.Fatalf("SourceAddr(%d) = %v ends in .%d", i, ip, last)
		}
		if seen[ip.String()] {
			t.Fatalf("SourceAddr(%d) = %v repeats", i, ip)
		}
		seen[ip.String()] = true
	}
	if SourceAddr(0).String() != "127.0.0.2" || SourceAddr(253).String() != "127.0.1.2" {
		t.Fatalf("SourceAddr(0), (253) = %v, %v", SourceAddr(0), SourceAddr(253))
	}
	for raw, want := range map[string]bool{"http://127.0.0.1:3000": true, "http://localhost:1": true, "ws://127.9.9.9": true,
		"http://[::1]:3000": true, "http://10.0.0.1:3000": false, "http://example.com": false} {
		if IsLoopback(raw) != want {
			t.Errorf("IsLoopback(%q) = %v", raw, !want)
		}
	}
}
