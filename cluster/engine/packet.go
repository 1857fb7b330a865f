package engine

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// Engine.IO v4 packet types, as their one-character text encoding.
const (
	pktOpen    = '0'
	pktClose   = '1'
	pktPing    = '2'
	pktPong    = '3'
	pktMessage = '4'
	pktUpgrade = '5'
	pktNoop    = '6'
)

// recordSeparator joins the packets of a long-polling payload.
const recordSeparator = 0x1e

var errBadPacket = errors.New("invalid packet")

// packet is one Engine.IO packet. For a message, data is its payload
// (text, or the raw bytes of a binary message). A decoded packet's data
// may alias the read buffer and is valid only until the handler returns;
// a packet queued for long-polling owns its data, never modified after.
type packet struct {
	typ    byte
	data   []byte
	binary bool
}

// decodeText decodes a text packet: a type character and its data.
func decodeText(b []byte) (packet, error) {
	if len(b) == 0 || b[0] < pktOpen || b[0] > pktNoop {
		return packet{}, errBadPacket
	}
	return packet{typ: b[0], data: b[1:]}, nil
}

// decodePayload splits a long-polling payload and decodes each packet
// (binary ones arrive base64-encoded after a 'b').
func decodePayload(body []byte, each func(packet) bool) error {
	for len(body) > 0 {
		var one []byte
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			one, body = body[:i], body[i+1:]
		} else {
			one, body = body, nil
		}
		var p packet
		if len(one) > 0 && one[0] == 'b' {
			raw := make([]byte, base64.StdEncoding.DecodedLen(len(one)-1))
			n, err := base64.StdEncoding.Decode(raw, one[1:])
			if err != nil {
				return errBadPacket
			}
			p = packet{typ: pktMessage, data: raw[:n], binary: true}
		} else {
			var err error
			if p, err = decodeText(one); err != nil {
				return err
			}
		}
		if !each(p) {
			return nil
		}
	}
	return nil
}

// appendPollPacket appends one packet to a long-polling payload being
// built, with the separator when it is not the first.
func appendPollPacket(dst []byte, p packet) []byte {
	if len(dst) > 0 {
		dst = append(dst, recordSeparator)
	}
	if p.binary {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.data)
	}
	dst = append(dst, p.typ)
	return append(dst, p.data...)
}
