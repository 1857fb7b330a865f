package redisadapter

import (
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
)

// pendingRequest collects the answers to one cluster request.
type pendingRequest struct {
	op       kind // kindFetchSockets or kindServerSideEmit
	expected int
	done     chan struct{} // closed when every answer is in, or on failure

	mu      sync.Mutex
	got     int
	socks   []socket.SocketDetails
	vals    []any
	failure error
}

func (p *pendingRequest) addSockets(s []socket.SocketDetails) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.socks = append(p.socks, s...)
	p.answered()
}

func (p *pendingRequest) addValue(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vals = append(p.vals, v)
	p.answered()
}

// answered counts one answer; the caller holds p.mu.
func (p *pendingRequest) answered() {
	p.got++
	if p.got == p.expected {
		close(p.done)
	}
}

func (p *pendingRequest) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.got < p.expected && p.failure == nil {
		p.failure = err
		close(p.done)
	}
}

func (p *pendingRequest) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failure
}

func (p *pendingRequest) progress() (got, want int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.got, p.expected
}

func (p *pendingRequest) sockets() []socket.SocketDetails {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]socket.SocketDetails(nil), p.socks...)
}

func (p *pendingRequest) values() []any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]any{}, p.vals...)
}

// pendingSet holds this namespace's requests waiting for answers.
type pendingSet struct {
	mu sync.Mutex
	m  map[string]*pendingRequest
}

func (s *pendingSet) add(id string, op kind, expected int) *pendingRequest {
	p := &pendingRequest{op: op, expected: expected, done: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*pendingRequest{}
	}
	s.m[id] = p
	return p
}

func (s *pendingSet) get(id string) *pendingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *pendingSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

func (s *pendingSet) failAll(err error) {
	s.mu.Lock()
	all := s.m
	s.m = nil
	s.mu.Unlock()
	for _, p := range all {
		p.fail(err)
	}
}

// ackSet routes the answers to this server's broadcasts with ack until
// their timeout, after which late answers are ignored (as in Node).
type ackSet struct {
	mu sync.Mutex
	m  map[string]*ackRequest
}

type ackRequest struct {
	clientCount func(uint64)
	ack         socket.Ack
	timer       *time.Timer
}

func (s *ackSet) add(id string, clientCount func(uint64), ack socket.Ack, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*ackRequest{}
	}
	s.m[id] = &ackRequest{clientCount: clientCount, ack: ack, timer: time.AfterFunc(timeout, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.m, id)
	})}
}

func (s *ackSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[id]; ok {
		r.timer.Stop()
		delete(s.m, id)
	}
}

func (s *ackSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

func (s *ackSet) get(id string) *ackRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

func (s *ackSet) count(id string, n uint64) {
	if r := s.get(id); r != nil {
		r.clientCount(n)
	}
}

func (s *ackSet) ack(id string, value any) {
	if r := s.get(id); r != nil {
		r.ack([]any{value}, nil)
	}
}

func (s *ackSet) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.m {
		r.timer.Stop()
	}
	s.m = nil
}
