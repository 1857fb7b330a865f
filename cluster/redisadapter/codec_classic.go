package redisadapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The classic protocol: @socket.io/redis-adapter v8 (createAdapter) and
// @socket.io/redis-emitter v5, read from their sources (dist/index.js) and
// checked against the running packages in this package's tests.
//
//	broadcast   PUBLISH <key>#<nsp>#          msgpack [uid, packet, opts]
//	            PUBLISH <key>#<nsp>#<room>#   (exactly one room)
//	requests    PUBLISH <key>-request#<nsp>#  JSON (msgpack for BROADCAST)
//	responses   PUBLISH <key>-response#<nsp>#[<uid>#]  JSON (msgpack for BROADCAST_ACK)
//
// packet = {type: 2, data: [event, ...args], nsp}; opts = {rooms, except, flags}.
// A server's uid is random per namespace adapter; the emitter's is "emitter";
// a receiver skips only messages carrying its own uid. Servers PSUBSCRIBE
// <key>#<nsp>#* and SUBSCRIBE to the request and both response channels;
// the number of servers is PUBSUB NUMSUB of the request channel.

// Request types of the classic protocol.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// channels are the classic channel names of one namespace.
type channels struct {
	broadcast string // <key>#<nsp>#; a room is appended as <room>#
	pattern   string // broadcast + "*"
	request   string // <key>-request#<nsp>#
	response  string // <key>-response#<nsp>#
}

func channelsFor(key, nsp string) channels {
	b := key + "#" + nsp + "#"
	return channels{
		broadcast: b,
		pattern:   b + "*",
		request:   key + "-request#" + nsp + "#",
		response:  key + "-response#" + nsp + "#",
	}
}

// broadcastChannel is where a broadcast to rooms goes: the room's own channel
// when there is exactly one (receivers without the room skip it unread).
func (c channels) broadcastChannel(rooms []string) string {
	if len(rooms) == 1 {
		return c.broadcast + rooms[0] + "#"
	}
	return c.broadcast
}

// classicCodec is the classic protocol for one namespace.
type classicCodec struct {
	nsp string
	uid string
	ch  channels
}

func newClassicCodec(key, nsp, uid string) *classicCodec {
	return &classicCodec{nsp: nsp, uid: uid, ch: channelsFor(key, nsp)}
}

func (c *classicCodec) subscriptions() []subscription {
	return []subscription{
		{subPattern, c.ch.pattern},
		{subChannel, c.ch.request},
		{subChannel, c.ch.response},
		{subChannel, c.ch.response + c.uid + "#"},
	}
}

func (c *classicCodec) roomChannels() bool { return false }

func (c *classicCodec) roomSubscription(string, bool) (subscription, bool) {
	return subscription{}, false // the pattern covers every room
}

func (c *classicCodec) roomOf(channel string) (string, bool) {
	if len(channel) <= len(c.ch.broadcast) || !strings.HasPrefix(channel, c.ch.broadcast) {
		return "", false
	}
	room := channel[len(c.ch.broadcast) : len(channel)-1]
	return room, room != ""
}

func (c *classicCodec) countChannel() string { return c.ch.request }

func (c *classicCodec) encode(m message) (outgoing, error) {
	var v map[string]any
	channel := c.ch.request
	switch m.Kind {
	case kindBroadcast:
		if m.RequestID == "" {
			b, err := encodeBroadcast(m)
			return outgoing{channel: c.ch.broadcastChannel(m.Target.Rooms), payload: b}, err
		}
		b, err := encodeBroadcastRequest(m)
		return outgoing{channel: c.ch.request, payload: b}, err
	case kindSocketsJoin, kindSocketsLeave:
		typ := reqRemoteJoin
		if m.Kind == kindSocketsLeave {
			typ = reqRemoteLeave
		}
		v = map[string]any{"uid": m.UID, "type": typ, "opts": targetMap(m.Target), "rooms": nonNil(m.Rooms)}
	case kindDisconnectSockets:
		v = map[string]any{"uid": m.UID, "type": reqRemoteDisconnect, "opts": targetMap(m.Target), "close": m.Close}
	case kindFetchSockets:
		v = map[string]any{"uid": m.UID, "requestId": m.RequestID, "type": reqRemoteFetch, "opts": targetMap(m.Target)}
	case kindServerSideEmit:
		v = map[string]any{"uid": m.UID, "type": reqServerSideEmit, "data": m.Data}
		if m.RequestID != "" {
			v["requestId"] = m.RequestID
		}
	default:
		channel = c.ch.response
		switch m.Kind {
		case kindFetchSocketsResponse, kindSocketsResponse:
			v = map[string]any{"requestId": m.RequestID, "sockets": nonNilAny(m.Sockets)}
		case kindAllRoomsResponse:
			v = map[string]any{"requestId": m.RequestID, "rooms": nonNil(m.Rooms)}
		case kindLegacyDone:
			v = map[string]any{"requestId": m.RequestID}
		case kindServerSideEmitResponse:
			v = map[string]any{"type": reqServerSideEmit, "requestId": m.RequestID, "data": m.Value}
		case kindBroadcastClientCount:
			v = map[string]any{"type": reqBroadcastClientCount, "requestId": m.RequestID, "clientCount": m.ClientCount}
		case kindBroadcastAck:
			b, err := encodeBroadcastAck(m.RequestID, m.Value)
			return outgoing{channel: channel, payload: b}, err
		default:
			return outgoing{}, fmt.Errorf("classic protocol: cannot send message kind %d", m.Kind)
		}
	}
	b, err := marshalJSON(v)
	return outgoing{channel: channel, payload: b}, err
}

func (c *classicCodec) decode(channel string, payload []byte) (message, error) {
	switch {
	case strings.HasPrefix(channel, c.ch.broadcast):
		return decodeBroadcast(payload)
	case channel == c.ch.request:
		r, err := decodeRequest(payload)
		if err != nil {
			return message{}, err
		}
		m, err := r.asRequest()
		m.Nsp = c.nsp
		return m, err
	case strings.HasPrefix(channel, c.ch.response):
		r, err := decodeRequest(payload)
		if err != nil {
			return message{}, err
		}
		m := r.asResponse()
		m.Nsp = c.nsp
		return m, nil
	}
	return message{}, fmt.Errorf("classic protocol: unexpected channel %q", channel)
}

// encodeBroadcast writes [uid, {type, data, nsp}, {rooms, except, flags}]
// with the key order Node uses.
func encodeBroadcast(m message) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = appendArrayHeader(b, 3)
	b = appendString(b, m.UID)
	b, err := appendPacket(b, m.Nsp, m.Data)
	if err != nil {
		return nil, err
	}
	return appendTarget(b, m.Target)
}

func appendPacket(b []byte, nsp string, data []any) ([]byte, error) {
	b = appendMapHeader(b, 3)
	b = appendString(b, "type")
	b = appendInt(b, packetEvent)
	b = appendString(b, "data")
	var err error
	if b, err = appendValue(b, data); err != nil {
		return nil, err
	}
	b = appendString(b, "nsp")
	return appendString(b, nsp), nil
}

func appendTarget(b []byte, t target) ([]byte, error) {
	b = appendMapHeader(b, 3)
	b = appendString(b, "rooms")
	b = appendStrings(b, t.Rooms)
	b = appendString(b, "except")
	b = appendStrings(b, t.Except)
	b = appendString(b, "flags")
	return appendValue(b, t.Flags.toMap())
}

func appendStrings(b []byte, s []string) []byte {
	b = appendArrayHeader(b, len(s))
	for _, e := range s {
		b = appendString(b, e)
	}
	return b
}

// sentBy reports whether a broadcast message (see decodeBroadcast) is
// uid's, reading only its first element.
func sentBy(payload []byte, uid string) bool {
	d := &decoder{b: payload}
	c, err := d.byte()
	switch {
	case err != nil:
		return false
	case c == 0xdc:
		_, err = d.take(2)
	case c == 0xdd:
		_, err = d.take(4)
	case c&0xf0 != 0x90:
		return false
	}
	if err != nil {
		return false
	}
	s, err := d.byte()
	if err != nil || s&0xe0 != 0xa0 && s != 0xd9 {
		return false // uid is a short string (fixstr or str8)
	}
	n := int(s & 0x1f)
	if s == 0xd9 {
		l, err := d.uint(1)
		if err != nil {
			return false
		}
		n = int(l)
	}
	b, err := d.take(n)
	return err == nil && string(b) == uid
}

// request is a message of the request or response channel, decoded from
// either encoding. Field names follow Node's.
type request struct {
	UID       string
	RequestID string
	Type      int            // -1 when absent (untyped responses)
	Opts      map[string]any // selector {rooms, except, flags}
	Rooms     []string       // rooms to join/leave, the SOCKETS selector, or the ALL_ROOMS answer
	HasRooms  bool
	Sid       string // legacy single-socket requests
	Room      string
	Close     bool
	Data      any // SERVER_SIDE_EMIT: the packet; its response: the ack value
	Packet    any // BROADCAST: the packet; BROADCAST_ACK: the ack value

	Sockets     []any   // SOCKETS and REMOTE_FETCH responses
	ClientCount *uint64 // BROADCAST_CLIENT_COUNT
}

// decodeRequest reads a request or response: JSON when the first byte is
// '{', msgpack otherwise (Node's rule).
func decodeRequest(payload []byte) (request, error) {
	raw, err := decodeObject(payload)
	if err != nil {
		return request{}, fmt.Errorf("request: %w", err)
	}
	t, ok := number(raw["type"])
	if !ok && raw["requestId"] == nil {
		return request{}, errors.New("request: no type")
	}
	r := request{Type: -1}
	if ok {
		if t != float64(int(t)) || t < -1 || t > 1<<16 {
			return request{}, fmt.Errorf("request: bad type %v", t)
		}
		r.Type = int(t)
	}
	r.UID, _ = raw["uid"].(string)
	r.RequestID = idString(raw["requestId"])
	r.Opts, _ = raw["opts"].(map[string]any)
	_, r.HasRooms = raw["rooms"]
	r.Rooms = stringList(raw["rooms"])
	r.Sid, _ = raw["sid"].(string)
	r.Room = keyStringOrEmpty(raw["room"])
	r.Close, _ = raw["close"].(bool)
	r.Data = raw["data"]
	r.Packet = raw["packet"]
	if s, ok := raw["sockets"].([]any); ok {
		r.Sockets = s
	}
	if n, ok := number(raw["clientCount"]); ok && n >= 0 && n < 1<<63 {
		c := uint64(n)
		r.ClientCount = &c
	}
	return r, nil
}

// decodeObject reads a JSON or msgpack object.
func decodeObject(payload []byte) (map[string]any, error) {
	if len(payload) > 0 && payload[0] == '{' {
		var raw map[string]any
		if err := json.Unmarshal(payload, &raw); err != nil {
			return nil, err
		}
		return raw, nil
	}
	v, err := decodeValue(payload)
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	return raw, nil
}

// asRequest maps a message of the request channel.
func (r request) asRequest() (message, error) {
	m := message{UID: r.UID, RequestID: r.RequestID, Target: targetFrom(r.Opts)}
	switch r.Type {
	case reqSockets:
		m.Kind, m.Rooms = kindSockets, r.Rooms
	case reqAllRooms:
		m.Kind = kindAllRooms
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		m.Kind = map[int]kind{reqRemoteJoin: kindSocketsJoin, reqRemoteLeave: kindSocketsLeave, reqRemoteDisconnect: kindDisconnectSockets}[r.Type]
		m.Rooms, m.Close = r.Rooms, r.Close
		if r.Opts == nil {
			m.Legacy, m.Sid, m.Room = true, r.Sid, r.Room
		}
	case reqRemoteFetch:
		m.Kind = kindFetchSockets
	case reqServerSideEmit:
		data, ok := r.Data.([]any)
		if !ok || len(data) == 0 {
			return message{}, errors.New("serverSideEmit: data is not [event, ...args]")
		}
		m.Kind, m.Data = kindServerSideEmit, data
	case reqBroadcast:
		data, err := eventData(r.Packet)
		if err != nil {
			return message{}, fmt.Errorf("broadcast request: %w", err)
		}
		if r.RequestID == "" {
			return message{}, errors.New("broadcast request without requestId")
		}
		m.Kind, m.Data = kindBroadcast, data
	default:
		m.Kind = kindIgnored // unknown types are ignored, as Node does
	}
	return m, nil
}

// asResponse maps a message of a response channel. Node's answers to
// SOCKETS, ALL_ROOMS and REMOTE_FETCH carry no type: their shape tells.
func (r request) asResponse() message {
	m := message{UID: r.UID, RequestID: r.RequestID}
	switch {
	case r.Type == reqServerSideEmit:
		m.Kind, m.Value = kindServerSideEmitResponse, r.Data
	case r.Type == reqBroadcastClientCount && r.ClientCount != nil:
		m.Kind, m.ClientCount = kindBroadcastClientCount, *r.ClientCount
	case r.Type == reqBroadcastAck:
		m.Kind, m.Value = kindBroadcastAck, r.Packet
	case r.Type != -1:
		m.Kind = kindIgnored
	case r.Sockets != nil:
		m.Kind, m.Sockets = kindFetchSocketsResponse, r.Sockets
	case r.HasRooms:
		m.Kind, m.Rooms = kindAllRoomsResponse, r.Rooms
	default:
		m.Kind = kindLegacyDone
	}
	return m
}

// encodeBroadcastRequest is the msgpack request of broadcast-with-ack.
func encodeBroadcastRequest(m message) ([]byte, error) {
	b := make([]byte, 0, 160)
	b = appendMapHeader(b, 5)
	b = appendString(b, "uid")
	b = appendString(b, m.UID)
	b = appendString(b, "requestId")
	b = appendString(b, m.RequestID)
	b = appendString(b, "type")
	b = appendInt(b, reqBroadcast)
	b = appendString(b, "packet")
	b, err := appendPacket(b, m.Nsp, m.Data)
	if err != nil {
		return nil, err
	}
	b = appendString(b, "opts")
	return appendTarget(b, m.Target)
}

// encodeBroadcastAck is the msgpack response carrying one client's ack.
func encodeBroadcastAck(requestID string, value any) ([]byte, error) {
	b := appendMapHeader(make([]byte, 0, 64), 3)
	b = appendString(b, "type")
	b = appendInt(b, reqBroadcastAck)
	b = appendString(b, "requestId")
	b = appendString(b, requestID)
	b = appendString(b, "packet")
	return appendValue(b, value)
}

// marshalJSON is json.Marshal without HTML escaping (Node does not escape).
func marshalJSON(v any) ([]byte, error) {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(sb.String(), "\n")), nil
}

func nonNilAny(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}
