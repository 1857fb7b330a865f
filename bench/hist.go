package bench

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// Histogram counts durations in microseconds without keeping the samples:
// log-linear buckets, exact below 128 µs and within 1/128 (0.8 %) above,
// up to about 2^40 µs. Record is lock-free, so every connection's read
// goroutine records into one histogram; a fixed 64 KiB per histogram
// whatever the number of samples.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	count  atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Int64 // valid when count > 0
	max    atomic.Int64
}

const (
	histSubBits = 7
	histSub     = 1 << histSubBits // sub-buckets per power of two
	histBuckets = 34 * histSub     // exact 0..127, then octaves 2^7..2^40
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	h := &Histogram{}
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf is the bucket index of v (µs, ≥ 0).
func bucketOf(v int64) int {
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - histSubBits - 1 // v>>e is in [128, 256)
	i := (e+1)*histSub + int(v>>e) - histSub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketRange is the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return m << e, (m+1)<<e - 1
}

// Record adds one sample of v microseconds (negative values count as 0:
// clocks of one machine, but a sample must never be dropped).
func (h *Histogram) Record(v int64) {
	v = max(v, 0)
	h.counts[bucketOf(v)].Add(1)
	h.count.Add(1)
	h.sum.Add(uint64(v))
	for cur := h.min.Load(); v < cur && !h.min.CompareAndSwap(cur, v); cur = h.min.Load() {
	}
	for cur := h.max.Load(); v > cur && !h.max.CompareAndSwap(cur, v); cur = h.max.Load() {
	}
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.count.Load() }

// Max is the largest sample (exact), 0 when empty.
func (h *Histogram) Max() int64 {
	if h.count.Load() == 0 {
		return 0
	}
	return h.max.Load()
}

// Quantile is the value at quantile q (0..1): the middle of the bucket
// holding the rank-⌈q·n⌉ sample, clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) int64 {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return min(max(v, h.min.Load()), h.max.Load())
		}
	}
	return h.max.Load()
}

// Summary is a histogram in milliseconds, for reports.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Summary computes the report's quantiles.
func (h *Histogram) Summary() Summary {
	n := h.count.Load()
	if n == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return math.Round(float64(us)) / 1000 }
	return Summary{
		Count: n,
		Mean:  math.Round(float64(h.sum.Load())/float64(n)) / 1000,
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		Max:   ms(h.Max()),
	}
}

// HistData is a histogram's serialised form (sparse buckets), for
// merging the results of several load processes.
type HistData struct {
	Count   uint64     `json:"count"`
	Sum     uint64     `json:"sum"`
	Min     int64      `json:"min"`
	Max     int64      `json:"max"`
	Buckets [][2]int64 `json:"buckets"` // [index, count]
}

// Data snapshots h.
func (h *Histogram) Data() HistData {
	d := HistData{Count: h.count.Load(), Sum: h.sum.Load(), Min: h.min.Load(), Max: h.max.Load(), Buckets: [][2]int64{}}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			d.Buckets = append(d.Buckets, [2]int64{int64(i), int64(c)})
		}
	}
	return d
}

// Add merges d into h.
func (h *Histogram) Add(d HistData) {
	if d.Count == 0 {
		return
	}
	for _, b := range d.Buckets {
		if b[0] >= 0 && b[0] < histBuckets {
			h.counts[b[0]].Add(uint64(b[1]))
		}
	}
	h.count.Add(d.Count)
	h.sum.Add(d.Sum)
	for cur := h.min.Load(); d.Min < cur && !h.min.CompareAndSwap(cur, d.Min); cur = h.min.Load() {
	}
	for cur := h.max.Load(); d.Max > cur && !h.max.CompareAndSwap(cur, d.Max); cur = h.max.Load() {
	}
}
