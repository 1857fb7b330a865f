package bench

import (
	"maps"
	"math"
	"syscall"
	"time"
)

// Result is what one load process counted, in a form that merges exactly
// with other processes' (sums, and histograms bucket by bucket). Report
// turns it into the published numbers.
type Result struct {
	RunID     string        `json:"run_id"`
	URL       string        `json:"url"`
	Transport string        `json:"transport"`
	Conns     int           `json:"conns"`
	Rate      float64       `json:"rate"`
	EmitRate  float64       `json:"emit_rate"`
	Duration  time.Duration `json:"duration"`
	Broadcast bool          `json:"broadcast"`
	Users     string        `json:"users"`
	Sources   int           `json:"sources"`
	Procs     int           `json:"procs"`

	// Unix milliseconds; merged: earliest start, latest ends.
	Started   int64 `json:"started"`
	RampEnd   int64 `json:"ramp_end"`
	EmitStart int64 `json:"emit_start"`
	EmitEnd   int64 `json:"emit_end"`
	Ended     int64 `json:"ended"`

	Attempted   int64            `json:"attempted"`
	Established int64            `json:"established"`
	Failed      map[string]int64 `json:"failed"`
	Dropped     int64            `json:"dropped"`
	Drops       map[string]int64 `json:"drops"`
	HeldAtEnd   int64            `json:"held_at_end"`

	Sent       int64 `json:"sent"`
	EmitErrors int64 `json:"emit_errors"`
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Lost       int64 `json:"lost"`
	LostOnDrop int64 `json:"lost_on_drop"`
	Duplicates int64 `json:"duplicates"`
	Unexpected int64 `json:"unexpected"`
	Foreign    int64 `json:"foreign"`

	BroadcastAt       int64 `json:"broadcast_at"` // µs, 0: not sent
	BroadcastExpected int64 `json:"broadcast_expected"`
	BroadcastReceived int64 `json:"broadcast_received"`
	BroadcastDups     int64 `json:"broadcast_dups"`

	Connect   HistData `json:"connect_hist"`
	Latency   HistData `json:"latency_hist"`
	BcastHist HistData `json:"broadcast_hist"`

	// The load process itself.
	CPUSeconds float64 `json:"cpu_seconds"`
	MaxRSSKB   int64   `json:"max_rss_kb"`
}

func (r *runner) result() *Result {
	res := &Result{
		RunID: r.cfg.RunID, URL: r.cfg.URL, Transport: r.cfg.Transport, Conns: len(r.conns),
		Rate: r.cfg.Rate / float64(r.cfg.Shards), EmitRate: r.cfg.EmitRate / float64(r.cfg.Shards),
		Duration: r.cfg.Duration, Broadcast: r.cfg.Broadcast, Users: r.cfg.Users.String(), Sources: r.cfg.Sources, Procs: 1,
		Started: r.start.UnixMilli(), RampEnd: r.rampEnd.UnixMilli(), EmitStart: r.emitStart.UnixMilli(),
		EmitEnd: r.emitEnd.UnixMilli(), Ended: time.Now().UnixMilli(),
		Attempted: r.attempts.Load(), Established: r.estab.Load(), Dropped: r.dropped.Load(), HeldAtEnd: r.heldAtEnd,
		Failed: map[string]int64{}, Drops: map[string]int64{},
		Sent: r.sent.Load(), EmitErrors: r.emitErrors.Load(), Expected: r.expected.Load(), Delivered: r.delivered.Load(),
		Lost: r.lostAtEnd, LostOnDrop: r.lostDrop.Load(), Duplicates: r.dups.Load(), Unexpected: r.unexpected.Load(),
		Foreign:     r.foreign.Load(),
		BroadcastAt: r.bcastAt.Load(), BroadcastReceived: r.bcastOnTime, BroadcastDups: r.bcastDups.Load(),
		Connect: r.connectHist.Data(), Latency: r.latency.Data(), BcastHist: r.bcastHist.Data(),
	}
	r.mu.Lock()
	for k, n := range r.failed {
		res.Failed[k] = int64(n)
	}
	for k, n := range r.drops {
		res.Drops[k] = int64(n)
	}
	r.mu.Unlock()
	res.BroadcastExpected = r.bcastExpected
	res.CPUSeconds, res.MaxRSSKB = ownUsage()
	return res
}

// ownUsage is this process's CPU time (user + system) and peak RSS, its
// children not included (a coordinator's shards report their own).
func ownUsage() (cpu float64, maxRSSKB int64) {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return 0, 0
	}
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return sec(u.Utime) + sec(u.Stime), int64(u.Maxrss)
}

// Merge combines the results of the shards of one run (their own load
// processes). CPU adds up; RSS is the largest process's.
func Merge(parts ...*Result) *Result {
	if len(parts) == 0 {
		return &Result{}
	}
	m := *parts[0]
	m.Failed, m.Drops = maps.Clone(m.Failed), maps.Clone(m.Drops)
	if m.Failed == nil {
		m.Failed = map[string]int64{}
	}
	if m.Drops == nil {
		m.Drops = map[string]int64{}
	}
	connect, lat, bc := NewHistogram(), NewHistogram(), NewHistogram()
	connect.Add(m.Connect)
	lat.Add(m.Latency)
	bc.Add(m.BcastHist)
	for _, p := range parts[1:] {
		m.Conns += p.Conns
		m.Rate += p.Rate
		m.EmitRate += p.EmitRate
		m.Procs += p.Procs
		m.Started = minNonZero(m.Started, p.Started)
		m.RampEnd = max(m.RampEnd, p.RampEnd)
		m.EmitStart = max(m.EmitStart, p.EmitStart)
		m.EmitEnd = max(m.EmitEnd, p.EmitEnd)
		m.Ended = max(m.Ended, p.Ended)
		m.Attempted += p.Attempted
		m.Established += p.Established
		m.Dropped += p.Dropped
		m.HeldAtEnd += p.HeldAtEnd
		for k, n := range p.Failed {
			m.Failed[k] += n
		}
		for k, n := range p.Drops {
			m.Drops[k] += n
		}
		m.Sent += p.Sent
		m.EmitErrors += p.EmitErrors
		m.Expected += p.Expected
		m.Delivered += p.Delivered
		m.Lost += p.Lost
		m.LostOnDrop += p.LostOnDrop
		m.Duplicates += p.Duplicates
		m.Unexpected += p.Unexpected
		m.Foreign += p.Foreign
		m.BroadcastAt = max(m.BroadcastAt, p.BroadcastAt)
		m.BroadcastExpected += p.BroadcastExpected
		m.BroadcastReceived += p.BroadcastReceived
		m.BroadcastDups += p.BroadcastDups
		connect.Add(p.Connect)
		lat.Add(p.Latency)
		bc.Add(p.BcastHist)
		m.CPUSeconds += p.CPUSeconds
		m.MaxRSSKB = max(m.MaxRSSKB, p.MaxRSSKB)
	}
	m.Connect, m.Latency, m.BcastHist = connect.Data(), lat.Data(), bc.Data()
	return &m
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// Report is the published outcome of a run: the table, and `--json`.
// Its shape is stable for scripts.
type Report struct {
	URL       string `json:"url"`
	Transport string `json:"transport"`
	RunID     string `json:"run_id"`

	Requested struct {
		Conns       int     `json:"conns"`
		Rate        float64 `json:"rate"`
		DurationSec float64 `json:"duration_sec"`
		EmitRate    float64 `json:"emit_rate"`
		Broadcast   bool    `json:"broadcast"`
		Users       string  `json:"users"`
		Sources     int     `json:"sources"`
	} `json:"requested"`

	Connections struct {
		Attempted   int64            `json:"attempted"`
		Established int64            `json:"established"`
		Failed      int64            `json:"failed"`
		FailedBy    map[string]int64 `json:"failed_by"`
		Dropped     int64            `json:"dropped"`
		DroppedBy   map[string]int64 `json:"dropped_by"`
		HeldAtEnd   int64            `json:"held_at_end"`
		RampSec     float64          `json:"ramp_sec"`
		ConnectRate float64          `json:"connect_rate"` // established per second over the ramp
		ConnectMS   Summary          `json:"connect_ms"`
	} `json:"connections"`

	Events struct {
		Sent          int64   `json:"sent"`
		SendRate      float64 `json:"send_rate"`
		EmitErrors    int64   `json:"emit_errors"`
		Expected      int64   `json:"expected"`
		Delivered     int64   `json:"delivered"`
		Lost          int64   `json:"lost"`
		LostOnDropped int64   `json:"lost_on_dropped"`
		Duplicates    int64   `json:"duplicates"`
		Unexpected    int64   `json:"unexpected"`
		LatencyMS     Summary `json:"latency_ms"`
	} `json:"events"`

	Broadcast struct {
		Sent       bool     `json:"sent"`
		Expected   int64    `json:"expected"`
		Received   int64    `json:"received"`
		Missed     int64    `json:"missed"`
		Duplicates int64    `json:"duplicates"`
		FanOutMS   *float64 `json:"fan_out_ms"` // until every expected client had it; null when some never did
		LatencyMS  Summary  `json:"latency_ms"`
	} `json:"broadcast"`

	LoadTool struct {
		Procs         int     `json:"procs"`
		CPUSec        float64 `json:"cpu_sec"`
		CPUMSPerConn  float64 `json:"cpu_ms_per_conn"`
		MaxRSSMiB     float64 `json:"max_rss_mib"`
		ConnsPerProc  int     `json:"conns_per_proc"`
		ForeignEvents int64   `json:"foreign_events"`
	} `json:"load_tool"`

	Timeline struct {
		StartedMS   int64 `json:"started_ms"`
		RampEndMS   int64 `json:"ramp_end_ms"`
		EmitStartMS int64 `json:"emit_start_ms"`
		EmitEndMS   int64 `json:"emit_end_ms"`
		EndedMS     int64 `json:"ended_ms"`
	} `json:"timeline"`
}

// Report computes the published numbers.
func (r *Result) Report() Report {
	var rep Report
	rep.URL, rep.Transport, rep.RunID = r.URL, r.Transport, r.RunID
	q := &rep.Requested
	q.Conns, q.Rate, q.DurationSec, q.EmitRate = r.Conns, round(r.Rate, 1), r.Duration.Seconds(), round(r.EmitRate, 1)
	q.Broadcast, q.Users, q.Sources = r.Broadcast, r.Users, r.Sources

	c := &rep.Connections
	c.Attempted, c.Established, c.Dropped, c.HeldAtEnd = r.Attempted, r.Established, r.Dropped, r.HeldAtEnd
	c.FailedBy, c.DroppedBy = nonNil(r.Failed), nonNil(r.Drops)
	for _, n := range r.Failed {
		c.Failed += n
	}
	if r.RampEnd > r.Started {
		c.RampSec = float64(r.RampEnd-r.Started) / 1000
		c.ConnectRate = round(float64(r.Established)/c.RampSec, 0)
	}
	c.ConnectMS = summaryOf(r.Connect)

	e := &rep.Events
	e.Sent, e.EmitErrors, e.Expected, e.Delivered = r.Sent, r.EmitErrors, r.Expected, r.Delivered
	e.Lost, e.LostOnDropped, e.Duplicates, e.Unexpected = r.Lost, r.LostOnDrop, r.Duplicates, r.Unexpected
	if r.EmitEnd > r.EmitStart && r.Sent > 0 {
		e.SendRate = round(float64(r.Sent)/(float64(r.EmitEnd-r.EmitStart)/1000), 0)
	}
	e.LatencyMS = summaryOf(r.Latency)

	b := &rep.Broadcast
	b.Sent = r.BroadcastAt != 0
	b.Expected, b.Received, b.Duplicates = r.BroadcastExpected, r.BroadcastReceived, r.BroadcastDups
	b.Missed = max(r.BroadcastExpected-r.BroadcastReceived, 0)
	b.LatencyMS = summaryOf(r.BcastHist)
	if b.Sent && b.Expected > 0 && b.Missed == 0 {
		f := b.LatencyMS.Max
		b.FanOutMS = &f
	}

	t := &rep.LoadTool
	t.Procs, t.CPUSec, t.MaxRSSMiB = r.Procs, round(r.CPUSeconds, 2), round(float64(r.MaxRSSKB)/1024, 1)
	if r.Established > 0 {
		t.CPUMSPerConn = round(r.CPUSeconds*1000/float64(r.Established), 3)
	}
	if r.Procs > 0 {
		t.ConnsPerProc = (r.Conns + r.Procs - 1) / r.Procs
	}
	t.ForeignEvents = r.Foreign

	tl := &rep.Timeline
	tl.StartedMS, tl.RampEndMS, tl.EmitStartMS, tl.EmitEndMS, tl.EndedMS = r.Started, r.RampEnd, r.EmitStart, r.EmitEnd, r.Ended
	return rep
}

func summaryOf(d HistData) Summary {
	h := NewHistogram()
	h.Add(d)
	return h.Summary()
}

func nonNil(m map[string]int64) map[string]int64 {
	if m == nil {
		return map[string]int64{}
	}
	return m
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
