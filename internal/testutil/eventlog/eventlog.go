// Package eventlog collects the events a test's Socket.IO clients receive
// and waits on conditions with deadlines (never sleeps as synchronisation).
package eventlog

import (
	"sync"
	"testing"
	"time"

	"github.com/frutos/frutos/internal/sioclient"
)

// Recorder keeps the events of one client; pass its On to
// sioclient.Options.OnEvent.
type Recorder struct {
	mu     sync.Mutex
	events []sioclient.Event
	change chan struct{}
}

// New returns an empty recorder.
func New() *Recorder { return &Recorder{change: make(chan struct{}, 1)} }

// On records an event.
func (r *Recorder) On(e sioclient.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.change <- struct{}{}:
	default:
	}
}

// Named returns the events of that name so far.
func (r *Recorder) Named(name string) []sioclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sioclient.Event
	for _, e := range r.events {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// All returns every event so far.
func (r *Recorder) All() []sioclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]sioclient.Event(nil), r.events...)
}

// WaitN waits until n events of that name arrived and returns them.
func (r *Recorder) WaitN(t testing.TB, name string, n int, within time.Duration) []sioclient.Event {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		if got := r.Named(name); len(got) >= n {
			return got
		}
		select {
		case <-r.change:
		case <-deadline.C:
			t.Fatalf("waited %v for %d %q events, got %d", within, n, name, len(r.Named(name)))
		}
	}
}

// WaitFor polls cond until it holds, or fails the test after within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, with a deadline
	}
}
