package engine

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// recorder is a wsHandler that keeps what it is given.
type recorder struct {
	messages [][]byte
	closed   bool
}

func (r *recorder) wsMessage(_ *wsConn, _ bool, data []byte) {
	r.messages = append(r.messages, bytes.Clone(data))
}
func (r *recorder) wsClosed(*wsConn, error) { r.closed = true }

// FuzzWebsocketFrames feeds bytes from a client to a connection's frame
// reader: it must not panic, and never deliver a message larger than
// max_payload.
func FuzzWebsocketFrames(f *testing.F) {
	masked := func(op byte, fin bool, payload string) []byte {
		var b bytes.Buffer
		writeFrameTo(&b, op, fin, []byte(payload))
		return b.Bytes()
	}
	f.Add(masked(0x1, true, "4hello"))
	f.Add(append(masked(0x1, false, "4he"), masked(0x0, true, "llo")...))
	f.Add(append(masked(0x9, true, "ping"), masked(0x8, true, "\x03\xe8")...))
	f.Add(masked(0x2, true, "\x01\x02\x03"))
	f.Add([]byte{0x81, 0xfe, 0x03, 0xe9, 1, 2, 3, 4})
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0})
	p, err := newPoller()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(p.close)
	const maxPayload = 1000
	f.Fuzz(func(t *testing.T, data []byte) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip(err)
		}
		defer unix.Close(fds[1])
		rec := &recorder{}
		c := newWSConn(fds[0], p, rec, maxPayload, 1<<16)
		// in two reads, split anywhere, as the network may
		half := len(data) / 2
		err = c.consume(bytes.Clone(data[:half]))
		if err == nil {
			rest := append(c.partial, data[half:]...)
			c.partial = nil
			err = c.consume(rest)
		}
		c.fail(err)
		for _, m := range rec.messages {
			if len(m) > maxPayload {
				t.Fatalf("a message of %d bytes passed max_payload %d", len(m), maxPayload)
			}
		}
	})
}

// FuzzPollingPayload decodes a long-polling body: no panic, and a body
// that decodes encodes back to one that decodes to the same packets.
func FuzzPollingPayload(f *testing.F) {
	for _, s := range []string{"4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA==", "3", "1", "abc", "b!!", "\x1e\x1e", "40{\"token\":\"x\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []packet
		if err := decodePayload(body, func(p packet) bool {
			p.data = bytes.Clone(p.data)
			got = append(got, p)
			return true
		}); err != nil {
			return
		}
		var again []byte
		for _, p := range got {
			again = appendPollPacket(again, p)
		}
		var round []packet
		if err := decodePayload(again, func(p packet) bool {
			p.data = bytes.Clone(p.data)
			round = append(round, p)
			return true
		}); err != nil {
			t.Fatalf("%q decoded, re-encoded as %q, which does not decode: %v", body, again, err)
		}
		if len(round) != len(got) {
			t.Fatalf("%q: %d packets, %d after a round trip", body, len(got), len(round))
		}
		for i := range got {
			if got[i].typ != round[i].typ || got[i].binary != round[i].binary || !bytes.Equal(got[i].data, round[i].data) {
				t.Fatalf("%q: packet %d changed in a round trip: %+v -> %+v", body, i, got[i], round[i])
			}
		}
	})
}
