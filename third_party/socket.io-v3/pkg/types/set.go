package types

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Set is a concurrent set.
//
// frutos patch (third_party/PATCHES.md, "Small maps and sets"): up to
// smallMax keys are kept in a slice, the rest in a map (upstream: always a
// map, about 200 bytes for one key). The Socket.IO adapter keeps a set of
// rooms per socket and a set of sockets per room: for a user's room of one
// socket, a slice of one key.
type Set[KType comparable] struct {
	mu    sync.RWMutex
	small []KType        // the keys while there are few (cache nil)
	cache map[KType]Void // the keys once there were more than smallMax
}

// NewSet creates a new Set and initializes it with the provided keys.
func NewSet[KType comparable](keys ...KType) *Set[KType] {
	s := &Set[KType]{}
	for _, key := range keys {
		s.addLocked(key)
	}
	return s
}

func (s *Set[KType]) addLocked(key KType) {
	if s.cache != nil {
		s.cache[key] = NULL
		return
	}
	if slices.Contains(s.small, key) {
		return
	}
	if len(s.small) < smallMax {
		s.small = append(s.small, key)
		return
	}
	s.cache = make(map[KType]Void, 2*smallMax)
	for _, k := range s.small {
		s.cache[k] = NULL
	}
	s.small = nil
	s.cache[key] = NULL
}

func (s *Set[KType]) lenLocked() int {
	if s.cache != nil {
		return len(s.cache)
	}
	return len(s.small)
}

// Add adds the provided keys to the set.
func (s *Set[KType]) Add(keys ...KType) bool {
	if len(keys) == 0 {
		return false
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	for _, key := range keys {
		s.addLocked(key)
	}
	return true
}

// Delete removes the provided keys from the set.
func (s *Set[KType]) Delete(keys ...KType) bool {
	if len(keys) == 0 {
		return false
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	for _, key := range keys {
		if s.cache != nil {
			delete(s.cache, key)
			continue
		}
		if i := slices.Index(s.small, key); i >= 0 {
			last := len(s.small) - 1
			s.small[i] = s.small[last]
			var zero KType
			s.small[last] = zero
			s.small = s.small[:last]
		}
	}
	if s.cache != nil && len(s.cache) == 0 {
		s.cache = nil
	}
	if len(s.small) == 0 {
		s.small = nil
	}
	return true
}

// Clear removes all items from the set.
func (s *Set[KType]) Clear() bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.small, s.cache = nil, nil
	return true
}

// Has checks if the set contains the provided key.
func (s *Set[KType]) Has(key KType) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if s.cache != nil {
		_, exists := s.cache[key]
		return exists
	}
	return slices.Contains(s.small, key)
}

// Len returns the number of items in the set.
func (s *Set[KType]) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()

	return s.lenLocked()
}

// All returns a copy of the set's keys as a map.
func (s *Set[KType]) All() map[KType]Void {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if s.cache != nil {
		return maps.Clone(s.cache)
	}
	all := make(map[KType]Void, len(s.small))
	for _, k := range s.small {
		all[k] = NULL
	}
	return all
}

// Keys returns a slice containing all keys in the set.
func (s *Set[KType]) Keys() []KType {
	s.mu.RLock()
	defer s.mu.RUnlock()

	return s.keys()
}

// keys returns a slice of all keys without locking (caller must hold lock).
func (s *Set[KType]) keys() []KType {
	if s.cache != nil {
		return slices.Collect(maps.Keys(s.cache))
	}
	return slices.Clone(s.small)
}

// populate replaces the set contents from a slice of keys (caller must hold write lock).
func (s *Set[KType]) populate(keys []KType) {
	s.small, s.cache = nil, nil
	for _, key := range keys {
		s.addLocked(key)
	}
}

// MarshalJSON implements the json.Marshaler interface.
func (s *Set[KType]) MarshalJSON() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	return json.Marshal(s.keys())
}

// UnmarshalJSON implements the json.Unmarshaler interface.
func (s *Set[KType]) UnmarshalJSON(data []byte) error {
	var keys []KType
	if err := json.Unmarshal(data, &keys); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.populate(keys)
	return nil
}

// MarshalMsgpack implements the msgpack.Marshaler interface.
func (s *Set[KType]) MarshalMsgpack() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	return msgpack.Marshal(s.keys())
}

// UnmarshalMsgpack implements the msgpack.Unmarshaler interface.
func (s *Set[KType]) UnmarshalMsgpack(data []byte) error {
	var keys []KType
	if err := msgpack.Unmarshal(data, &keys); err != nil {
		return err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.populate(keys)
	return nil
}
