package engine

import (
	"time"

	"github.com/gobwas/ws"
	"github.com/zishang520/socket.io/servers/engine/v3/transports"
)

// A polling session moves to a websocket in three steps (the protocol's
// upgrade): the client opens the websocket with the session's sid and
// sends "2probe"; the server answers "3probe" and ends the waiting poll
// with a noop, so the client can pause polling; the client sends "5" on
// the websocket, and from then on every packet goes there, starting with
// those queued for polling. Anything else on the probing websocket, its
// end, or UpgradeTimeout, abandons the upgrade; the session stays on
// polling.

// beginUpgrade makes c the session's upgrade candidate; false when the
// session cannot upgrade (closed, already on websocket, or upgrading).
func (s *Socket) beginUpgrade(c *wsConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != stateOpen || s.ws != nil || s.probe != nil || s.poll == nil {
		return false
	}
	s.probe = c
	s.upgradeT = time.AfterFunc(s.srv.opts.UpgradeTimeout, func() { s.abandonUpgrade(c) })
	return true
}

// abandonUpgrade drops c as the upgrade candidate, if it still is one.
func (s *Socket) abandonUpgrade(c *wsConn) {
	s.mu.Lock()
	mine := s.probe == c
	if mine {
		s.probe = nil
		s.probed = false
		if s.upgradeT != nil {
			s.upgradeT.Stop()
		}
	}
	s.mu.Unlock()
	if mine {
		c.closeWith(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	}
}

// wsMessage is a message from one of the session's websockets.
func (s *Socket) wsMessage(c *wsConn, binary bool, data []byte) {
	s.mu.Lock()
	probing, current := c == s.probe, c == s.ws
	s.mu.Unlock()
	switch {
	case probing:
		s.probeMessage(c, binary, data)
	case !current:
		// a websocket the session no longer uses
	case binary:
		s.onPacket(packet{typ: pktMessage, data: data, binary: true})
	default:
		p, err := decodeText(data)
		if err != nil {
			s.end(ReasonParseError)
			return
		}
		s.onPacket(p)
	}
}

func (s *Socket) probeMessage(c *wsConn, binary bool, data []byte) {
	switch {
	case !binary && string(data) == "2probe":
		s.mu.Lock()
		if s.probe != c {
			s.mu.Unlock()
			return
		}
		err := c.send(probeFrame)
		s.probed = true
		if s.poll != nil && s.poll.waiting != nil && !s.poll.late && len(s.poll.queue) == 0 {
			s.answerPollLocked([]byte{pktNoop}) // let the client pause polling
		}
		s.mu.Unlock()
		if err != nil {
			s.abandonUpgrade(c)
		}
	case !binary && string(data) == "5":
		s.completeUpgrade(c)
	default:
		s.abandonUpgrade(c)
	}
}

// completeUpgrade moves the session to c: the packets queued for polling
// go out first, in one write.
func (s *Socket) completeUpgrade(c *wsConn) {
	s.mu.Lock()
	if s.probe != c || s.state.Load() == stateClosed {
		s.mu.Unlock()
		return
	}
	s.upgradeT.Stop()
	s.probe, s.probed, s.upgraded, s.upgradeAt = nil, false, true, time.Now()
	old := s.poll
	s.poll, s.ws = nil, c
	var frames [][]byte
	for _, p := range old.queue {
		frames = append(frames, messageFrame(p.typ, p.data, p.binary))
	}
	if old.waiting != nil {
		if old.late {
			old.waiting <- nil // sent after the upgrade, read before it
		} else {
			old.waiting <- []byte{pktNoop}
		}
		old.waiting = nil
	}
	closing := s.state.Load() == stateClosing
	var err error
	if len(frames) > 0 {
		err = c.sendBatch(frames)
	}
	s.mu.Unlock()
	s.srv.upgraded()
	switch {
	case err != nil:
		s.end(reasonOf(err))
	case closing:
		s.end(ReasonServerDisconnect) // the orderly close keeps its reason
	default:
		s.ev.Emit("upgrade", transportView{name: transports.WEBSOCKET, writable: true, sid: s.id})
	}
}

// wsClosed is the end of one of the session's websockets.
func (s *Socket) wsClosed(c *wsConn, err error) {
	s.mu.Lock()
	probing, current := c == s.probe, c == s.ws
	s.mu.Unlock()
	switch {
	case probing:
		s.abandonUpgrade(c)
	case current && err == nil:
		s.end(ReasonTransportClose)
	case current:
		s.end(ReasonTransportError)
	}
}

// closeBody is the close frame a session's websocket ends with.
func closeBody(r Reason) []byte {
	switch r {
	case ReasonDrain, ReasonServerClose:
		return ws.NewCloseFrameBody(ws.StatusGoingAway, "")
	case ReasonParseError:
		return ws.NewCloseFrameBody(ws.StatusProtocolError, "")
	default:
		return ws.NewCloseFrameBody(ws.StatusNormalClosure, "")
	}
}
