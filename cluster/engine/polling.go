package engine

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// servePoll answers a long-polling GET: with what is queued, or, when
// nothing is, once something is (a message, the next ping, a noop that
// lets an upgrade finish, or the close packet).
func (s *Socket) servePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.poll
	if p == nil || s.state.Load() == stateClosed {
		s.mu.Unlock()
		writeRefusal(w, refusal(CodeBadRequest)) // upgraded: polling is over
		return
	}
	if p.waiting != nil {
		s.mu.Unlock()
		// Two polls at once: the client broke the protocol. The first
		// poll gets a close packet (Node answers the second 500).
		writeRefusal(w, refusal(CodeBadRequest))
		s.end(ReasonTransportError)
		return
	}
	if len(p.queue) > 0 || p.closing || s.probed {
		var extra []outPacket
		switch {
		case p.closing:
			extra = []outPacket{{typ: pktClose}}
		case s.probed && len(p.queue) == 0:
			extra = []outPacket{{typ: pktNoop}} // the client is upgrading: let this poll end
		}
		payload := s.takeQueueLocked(extra)
		closing := p.closing
		s.mu.Unlock()
		writePayload(w, payload)
		if closing {
			s.end(ReasonServerDisconnect) // end keeps the reason of the orderly close
		}
		return
	}
	ch := make(chan []byte, 1)
	p.waiting = ch
	s.mu.Unlock()
	select {
	case payload := <-ch:
		writePayload(w, payload)
	case <-r.Context().Done():
		// The client went away in the middle of a poll: Node ends the
		// session ("poll connection closed prematurely").
		s.end(ReasonTransportError)
	}
}

// servePost reads the packets of a long-polling POST, in order.
func (s *Socket) servePost(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.poll
	if p == nil || s.state.Load() == stateClosed {
		s.mu.Unlock()
		writeRefusal(w, refusal(CodeBadRequest))
		return
	}
	if p.posting {
		s.mu.Unlock()
		writeRefusal(w, refusal(CodeBadRequest))
		s.end(ReasonTransportError) // data request overlap
		return
	}
	p.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		p.posting = false
		s.mu.Unlock()
	}()

	if r.Header.Get("Content-Type") == "application/octet-stream" {
		writeRefusal(w, refusal(CodeBadRequest)) // binary bodies are protocol 3's
		s.end(ReasonTransportError)
		return
	}
	max := s.srv.opts.MaxPayload
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		s.end(ReasonTransportError) // the request ended before its body
		return
	}
	if len(body) > max {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	closed := false
	err = decodePayload(body, func(pk packet) bool {
		if pk.typ == pktClose {
			closed = true
			return false
		}
		s.onPacket(pk)
		return true
	})
	if err != nil {
		writeRefusal(w, refusal(CodeBadRequest))
		s.end(ReasonParseError)
		return
	}
	if closed {
		s.end(ReasonTransportClose)
	}
	h := w.Header()
	// text/html, not text/plain: some user agents offer to download the
	// latter (Node's comment, GH-43)
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok")
}

func writePayload(w http.ResponseWriter, payload []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Content-Length", strconv.Itoa(len(payload)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

func writeRefusal(w http.ResponseWriter, ref *Refusal) {
	msg, _ := json.Marshal(ref.Message)
	body := `{"code":` + strconv.Itoa(ref.Code) + `,"message":` + string(msg) + `}`
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(ref.Status)
	_, _ = io.WriteString(w, body)
}
