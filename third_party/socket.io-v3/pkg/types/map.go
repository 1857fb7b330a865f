// Copyright 2016 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package types

import (
	"sync"
)

// Map is a generic, type-safe concurrent map with [Map.Len], [Map.Keys]
// and [Map.Values].
//
// frutos patch (third_party/PATCHES.md, "Small maps and sets"): upstream,
// Map is a copy of sync.Map (a read-only map, a dirty map, and an entry,
// an expunged marker and a boxed value per key), about 450 bytes for a map
// of one key. The Socket.IO layer keeps several per connection (a
// client's sockets and namespaces, each event emitter's listeners), so they
// cost more than a kilobyte per connection. This Map keeps up to
// smallMax entries in a slice (about 32 bytes for one) and moves them to a
// Go map past that, behind a read-write lock; nothing is allocated while
// it is empty.
//
// Range calls f on a snapshot taken at the start, without holding the
// lock, so f may call any method of the map (as with sync.Map, whose
// contract a snapshot satisfies).
//
// The zero Map is empty and ready for use. A Map must not be copied after
// first use.
type Map[TKey comparable, TValue any] struct {
	_ noCopy

	mu    sync.RWMutex
	small []mapPair[TKey, TValue] // the entries while there are few (m nil)
	m     map[TKey]TValue         // the entries once there were more than smallMax
}

type mapPair[TKey comparable, TValue any] struct {
	k TKey
	v TValue
}

// smallMax is the most entries a Map or a Set keeps in a slice.
const smallMax = 8

// Load returns the value stored in the map for a key, or the zero value
// if no value is present. The ok result indicates whether value was found.
func (m *Map[TKey, TValue]) Load(key TKey) (value TValue, ok bool) {
	m.mu.RLock()
	value, ok = m.getLocked(key)
	m.mu.RUnlock()
	return value, ok
}

func (m *Map[TKey, TValue]) getLocked(key TKey) (TValue, bool) {
	if m.m != nil {
		v, ok := m.m[key]
		return v, ok
	}
	for i := range m.small {
		if m.small[i].k == key {
			return m.small[i].v, true
		}
	}
	var zero TValue
	return zero, false
}

// Store sets the value for a key.
func (m *Map[TKey, TValue]) Store(key TKey, value TValue) {
	m.mu.Lock()
	m.setLocked(key, value)
	m.mu.Unlock()
}

func (m *Map[TKey, TValue]) setLocked(key TKey, value TValue) {
	if m.m != nil {
		m.m[key] = value
		return
	}
	for i := range m.small {
		if m.small[i].k == key {
			m.small[i].v = value
			return
		}
	}
	if len(m.small) < smallMax {
		m.small = append(m.small, mapPair[TKey, TValue]{key, value})
		return
	}
	m.m = make(map[TKey]TValue, 2*smallMax)
	for _, p := range m.small {
		m.m[p.k] = p.v
	}
	m.small = nil
	m.m[key] = value
}

func (m *Map[TKey, TValue]) lenLocked() int {
	if m.m != nil {
		return len(m.m)
	}
	return len(m.small)
}

// Clear deletes all the entries, resulting in an empty Map.
func (m *Map[TKey, TValue]) Clear() {
	m.mu.Lock()
	m.m, m.small = nil, nil
	m.mu.Unlock()
}

// LoadOrStore returns the existing value for the key if present.
// Otherwise, it stores and returns the given value.
// The loaded result is true if the value was loaded, false if stored.
func (m *Map[TKey, TValue]) LoadOrStore(key TKey, value TValue) (actual TValue, loaded bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.getLocked(key); ok {
		return v, true
	}
	m.setLocked(key, value)
	return value, false
}

// LoadAndDelete deletes the value for a key, returning the previous value if any.
// The loaded result reports whether the key was present.
func (m *Map[TKey, TValue]) LoadAndDelete(key TKey) (value TValue, loaded bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	value, loaded = m.getLocked(key)
	if loaded {
		m.deleteLocked(key)
	}
	return value, loaded
}

// Delete deletes the value for a key.
func (m *Map[TKey, TValue]) Delete(key TKey) {
	m.mu.Lock()
	m.deleteLocked(key)
	m.mu.Unlock()
}

func (m *Map[TKey, TValue]) deleteLocked(key TKey) {
	if m.m != nil {
		delete(m.m, key)
		if len(m.m) == 0 {
			m.m = nil // a Go map never shrinks: let an emptied one go
		}
		return
	}
	for i := range m.small {
		if m.small[i].k == key {
			last := len(m.small) - 1
			m.small[i] = m.small[last]
			m.small[last] = mapPair[TKey, TValue]{}
			m.small = m.small[:last]
			if last == 0 {
				m.small = nil
			}
			return
		}
	}
}

// Swap swaps the value for a key and returns the previous value if any.
// The loaded result reports whether the key was present.
func (m *Map[TKey, TValue]) Swap(key TKey, value TValue) (previous TValue, loaded bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	previous, loaded = m.getLocked(key)
	m.setLocked(key, value)
	return previous, loaded
}

// CompareAndSwap swaps the old and new values for key
// if the value stored in the map is equal to old.
// The old value must be of a comparable type.
func (m *Map[TKey, TValue]) CompareAndSwap(key TKey, old TValue, new TValue) (swapped bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.getLocked(key); ok && any(v) == any(old) {
		m.setLocked(key, new)
		return true
	}
	return false
}

// CompareAndDelete deletes the entry for key if its value is equal to old.
// The old value must be of a comparable type.
//
// If there is no current value for key in the map, CompareAndDelete
// returns false (even if the old value is the nil interface value).
func (m *Map[TKey, TValue]) CompareAndDelete(key TKey, old TValue) (deleted bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.getLocked(key); ok && any(v) == any(old) {
		m.deleteLocked(key)
		return true
	}
	return false
}

// Range calls f sequentially for each key and value present in the map
// when Range was called. If f returns false, range stops the iteration.
// f may call any method of the map.
func (m *Map[TKey, TValue]) Range(f func(key TKey, value TValue) bool) {
	m.mu.RLock()
	n := m.lenLocked()
	if n == 0 {
		m.mu.RUnlock()
		return
	}
	if n == 1 && m.m == nil { // the common case of the per-connection maps: no snapshot
		p := m.small[0]
		m.mu.RUnlock()
		f(p.k, p.v)
		return
	}
	pairs := make([]mapPair[TKey, TValue], 0, n)
	if m.m != nil {
		for k, v := range m.m {
			pairs = append(pairs, mapPair[TKey, TValue]{k, v})
		}
	} else {
		pairs = append(pairs, m.small...)
	}
	m.mu.RUnlock()
	for _, p := range pairs {
		if !f(p.k, p.v) {
			return
		}
	}
}

// Len returns the number of entries.
func (m *Map[TKey, TValue]) Len() (n int) {
	m.mu.RLock()
	n = m.lenLocked()
	m.mu.RUnlock()
	return n
}

// Keys returns the keys, in no particular order.
func (m *Map[TKey, TValue]) Keys() (keys []TKey) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.lenLocked() == 0 {
		return nil
	}
	keys = make([]TKey, 0, m.lenLocked())
	if m.m != nil {
		for k := range m.m {
			keys = append(keys, k)
		}
		return keys
	}
	for _, p := range m.small {
		keys = append(keys, p.k)
	}
	return keys
}

// Values returns the values, in no particular order.
func (m *Map[TKey, TValue]) Values() (values []TValue) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.lenLocked() == 0 {
		return nil
	}
	values = make([]TValue, 0, m.lenLocked())
	if m.m != nil {
		for _, v := range m.m {
			values = append(values, v)
		}
		return values
	}
	for _, p := range m.small {
		values = append(values, p.v)
	}
	return values
}
