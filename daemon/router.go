package daemon

import (
	"sync"
)

// router knows every live worker process by its tag (replaced ones too,
// until they have drained) and picks one for a new session.
type router struct {
	mu   sync.RWMutex
	live map[string]*instance
}

func newRouter() *router { return &router{live: map[string]*instance{}} }

func (r *router) add(inst *instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.live[inst.tag] = inst
}

func (r *router) remove(inst *instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live[inst.tag] == inst {
		delete(r.live, inst.tag)
	}
}

func (r *router) byTag(tag string) *instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.live[tag]
}

// pick returns the least-loaded worker that takes new sessions: ready ones
// first; if none is ready (Redis is down, say) any routable one, since a
// worker still serves its own clients without Redis.
func (r *router) pick() *instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var best, fallback *instance
	var bestLoad, fallbackLoad int64
	for _, inst := range r.live {
		if !inst.routable.Load() {
			continue
		}
		load := inst.load()
		if inst.ready.Load() {
			if best == nil || load < bestLoad || load == bestLoad && inst.id < best.id {
				best, bestLoad = inst, load
			}
		} else if fallback == nil || load < fallbackLoad {
			fallback, fallbackLoad = inst, load
		}
	}
	if best != nil {
		return best
	}
	return fallback
}

// load is the worker's connections at the last poll plus the sessions
// sent to it since.
func (inst *instance) load() int64 {
	n := inst.routed.Load()
	if st := inst.stats.Load(); st != nil {
		n += int64(st.Connections)
	}
	return n
}

func (r *router) readyCount() (ready, total int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, inst := range r.live {
		if !inst.routable.Load() {
			continue
		}
		total++
		if inst.ready.Load() {
			ready++
		}
	}
	return ready, total
}

func (r *router) all() []*instance {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*instance, 0, len(r.live))
	for _, inst := range r.live {
		out = append(out, inst)
	}
	return out
}
