package engine

import (
	"reflect"
	"sync"

	"github.com/zishang520/socket.io/v3/pkg/types"
)

// listeners is the event emitter of one Engine.IO socket, as the Socket.IO
// layer uses it: a handful of listeners ("data", "error", "close"), added
// once and removed once. The library's emitter is a concurrent map of
// slices per socket (about 1 KB); this is a slice of a few entries.
type listeners struct {
	mu sync.Mutex
	l  []listener
}

type listener struct {
	event types.EventName
	fn    types.EventListener
	once  bool
}

var _ types.EventEmitter = (*listeners)(nil)

func (e *listeners) AddListener(ev types.EventName, fns ...types.EventListener) error {
	return e.add(ev, false, fns)
}

func (e *listeners) On(ev types.EventName, fns ...types.EventListener) error {
	return e.add(ev, false, fns)
}

func (e *listeners) Once(ev types.EventName, fns ...types.EventListener) error {
	return e.add(ev, true, fns)
}

func (e *listeners) add(ev types.EventName, once bool, fns []types.EventListener) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, fn := range fns {
		if fn != nil {
			e.l = append(e.l, listener{event: ev, fn: fn, once: once})
		}
	}
	return nil
}

// Emit calls the listeners of ev in the order they were added, outside
// the lock (a listener may add or remove listeners).
func (e *listeners) Emit(ev types.EventName, args ...any) {
	var stack [4]types.EventListener
	call := stack[:0]
	e.mu.Lock()
	kept := e.l[:0]
	for _, l := range e.l {
		if l.event == ev {
			call = append(call, l.fn)
			if l.once {
				continue
			}
		}
		kept = append(kept, l)
	}
	clear(e.l[len(kept):])
	e.l = kept
	e.mu.Unlock()
	for _, fn := range call {
		fn(args...)
	}
}

func (e *listeners) EventNames() []types.EventName {
	e.mu.Lock()
	defer e.mu.Unlock()
	var names []types.EventName
	seen := map[types.EventName]bool{}
	for _, l := range e.l {
		if !seen[l.event] {
			seen[l.event] = true
			names = append(names, l.event)
		}
	}
	return names
}

func (e *listeners) ListenerCount(ev types.EventName) int {
	return len(e.Listeners(ev))
}

func (e *listeners) Listeners(ev types.EventName) []types.EventListener {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []types.EventListener
	for _, l := range e.l {
		if l.event == ev {
			out = append(out, l.fn)
		}
	}
	return out
}

// RemoveListener removes the first listener of ev with fn's code pointer
// (funcs are not comparable; the library compares the same way).
func (e *listeners) RemoveListener(ev types.EventName, fn types.EventListener) bool {
	if fn == nil {
		return false
	}
	ptr := reflect.ValueOf(fn).Pointer()
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, l := range e.l {
		if l.event == ev && reflect.ValueOf(l.fn).Pointer() == ptr {
			copy(e.l[i:], e.l[i+1:])
			e.l[len(e.l)-1] = listener{}
			e.l = e.l[:len(e.l)-1]
			return true
		}
	}
	return false
}

func (e *listeners) RemoveAllListeners(ev types.EventName) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	kept := e.l[:0]
	for _, l := range e.l {
		if l.event != ev {
			kept = append(kept, l)
		}
	}
	removed := len(kept) != len(e.l)
	clear(e.l[len(kept):])
	e.l = kept
	return removed
}

func (e *listeners) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l = nil
}

func (e *listeners) Len() int {
	return len(e.EventNames())
}
