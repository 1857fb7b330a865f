package redisadapter

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// RecoveringParser wraps the server's Socket.IO parser so that a client
// that asks for its session back with no offset, because it had received
// no event yet (socket.io-client then sends its pid alone), asks from its
// session's start (FromSessionStart). The library tries recovery only
// with an offset: such a client would otherwise come back as a new session
// and lose what was emitted to it while it was away, in a reload too.
// A nil p wraps the library's default parser.
func RecoveringParser(p parser.Parser) parser.Parser {
	if p == nil {
		p = parser.NewParser()
	}
	return recoveringParser{p}
}

type recoveringParser struct{ parser.Parser }

func (p recoveringParser) NewDecoder() parser.Decoder {
	return recoveringDecoder{p.Parser.NewDecoder()}
}

type recoveringDecoder struct{ parser.Decoder }

// On sees every decoded packet before the server does.
func (d recoveringDecoder) On(ev types.EventName, listeners ...types.EventListener) error {
	if ev == "decoded" {
		for i, l := range listeners {
			listeners[i] = func(args ...any) {
				if len(args) > 0 {
					if p, ok := args[0].(*parser.Packet); ok {
						askFromStart(p)
					}
				}
				l(args...)
			}
		}
	}
	return d.Decoder.On(ev, listeners...)
}

// askFromStart gives a CONNECT with a pid and no offset the offset
// FromSessionStart.
func askFromStart(p *parser.Packet) {
	if p.Type != parser.CONNECT {
		return
	}
	auth, ok := p.Data.(map[string]any)
	if !ok {
		return
	}
	if pid, _ := auth["pid"].(string); pid == "" {
		return
	}
	if off, _ := auth["offset"].(string); off == "" {
		auth["offset"] = FromSessionStart
	}
}
