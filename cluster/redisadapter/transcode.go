package redisadapter

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// A broadcast from Redis is relayed to clients as JSON. Decoding its
// arguments into Go values (maps, slices, strings) only for the Socket.IO
// encoder to write them out again cost a worker about a tenth of its CPU
// at 10,000 emits/s, and most of its garbage. So each argument is
// transcoded from msgpack straight to JSON, into a json.RawMessage the
// encoder copies as it is (third_party/PATCHES.md). The JSON is what the
// encoder would have written for the decoded value, byte for byte, except
// that map keys keep their msgpack order (as Node's JSON.stringify does)
// instead of being sorted. An argument JSON cannot carry as such (binary,
// which Socket.IO sends as an attachment; extensions; NaN and infinities;
// maps with keys that are not strings) is decoded as before.

// decodeBroadcast reads a message of a broadcast channel,
// [uid, {type, data, nsp}, {rooms, except, flags}]. A missing nsp means
// "/", as in Node. The payload is kept (raw) for the recovery store.
func decodeBroadcast(payload []byte) (message, error) {
	d := &decoder{b: payload}
	n, err := d.arrayHeader()
	if err != nil || n < 3 {
		return message{}, errors.New("broadcast: not an array of 3")
	}
	m := message{Kind: kindBroadcast, Nsp: "/", raw: payload}
	uid, err := d.value(1)
	if err != nil {
		return message{}, err
	}
	m.UID, _ = uid.(string)
	if m.Data, err = d.eventPacket(&m.Nsp); err != nil {
		return message{}, fmt.Errorf("broadcast: %w", err)
	}
	if m.Target, err = d.target(); err != nil {
		return message{}, err
	}
	for range n - 3 {
		if _, err := d.value(1); err != nil {
			return message{}, err
		}
	}
	if d.pos != len(d.b) {
		return message{}, fmt.Errorf("msgpack: %d trailing bytes", len(d.b)-d.pos)
	}
	return m, nil
}

// classicTarget reads only the selector of a broadcast message (see
// decodeBroadcast), skipping its sender and packet.
func classicTarget(payload []byte) (target, error) {
	d := &decoder{b: payload}
	n, err := d.arrayHeader()
	if err != nil || n < 3 {
		return target{}, errors.New("broadcast: not an array of 3")
	}
	if err := d.skip(1); err != nil {
		return target{}, err
	}
	if err := d.skip(1); err != nil {
		return target{}, err
	}
	return d.target()
}

// skip moves past one value without decoding it.
func (d *decoder) skip(depth int) error {
	if depth > maxDecodeDepth {
		return errors.New("msgpack: nesting too deep")
	}
	c, err := d.byte()
	if err != nil {
		return err
	}
	n, items := 0, 0 // bytes to skip, values to skip
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
	case c&0xf0 == 0x80:
		items = 2 * int(c&0x0f)
	case c&0xf0 == 0x90:
		items = int(c & 0x0f)
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xc4 || c == 0xc5 || c == 0xc6:
		n, err = d.length(1<<(c-0xc4), 1)
	case c == 0xc7 || c == 0xc8 || c == 0xc9:
		n, err = d.length(1<<(c-0xc7), 1)
		n++ // the type byte
	case c == 0xca, c == 0xce, c == 0xd2:
		n = 4
	case c == 0xcb, c == 0xcf, c == 0xd3:
		n = 8
	case c == 0xcc, c == 0xd0:
		n = 1
	case c == 0xcd, c == 0xd1:
		n = 2
	case c >= 0xd4 && c <= 0xd8:
		n = 1 + 1<<(c-0xd4)
	case c == 0xd9 || c == 0xda || c == 0xdb:
		n, err = d.length(1<<(c-0xd9), 1)
	case c == 0xdc || c == 0xdd:
		items, err = d.length(2<<(c-0xdc), 1)
	case c == 0xde || c == 0xdf:
		items, err = d.length(2<<(c-0xde), 2)
		items *= 2
	default:
		return fmt.Errorf("msgpack: invalid code 0x%02x", c)
	}
	if err != nil {
		return err
	}
	if _, err := d.take(n); err != nil {
		return err
	}
	for range items {
		if err := d.skip(depth + 1); err != nil {
			return err
		}
	}
	return nil
}

// eventPacket reads the packet of a broadcast, {type, data, nsp}, as
// eventData checks it: an event whose data is [event, ...args]. The
// arguments are transcoded to JSON where they can be.
func (d *decoder) eventPacket(nsp *string) ([]any, error) {
	n, ok, err := d.mapHeader()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("packet is not a map")
	}
	var data []any
	var hasData bool
	for range n {
		k, err := d.key(2)
		if err != nil {
			return nil, err
		}
		switch k {
		case "data":
			data, hasData, err = d.eventArgs()
		case "type":
			var v any
			if v, err = d.value(2); err == nil {
				if t, ok := number(v); ok && t != packetEvent && t != packetBinaryEvent {
					err = fmt.Errorf("packet type %v is not an event", t)
				}
			}
		case "nsp":
			var v any
			if v, err = d.value(2); err == nil {
				if s, ok := v.(string); ok {
					*nsp = s
				}
			}
		default:
			_, err = d.value(2)
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasData || len(data) == 0 {
		return nil, errors.New("packet data is not [event, ...args]")
	}
	return data, nil
}

// eventArgs reads an event's data: the event as decoded, each argument as
// JSON where it can be. ok is false when the data is not an array.
func (d *decoder) eventArgs() (_ []any, ok bool, _ error) {
	n, isArray, err := d.arrayHeaderIf()
	if err != nil {
		return nil, false, err
	}
	if !isArray {
		_, err := d.value(2)
		return nil, false, err
	}
	data := make([]any, n)
	buf := make([]byte, 0, len(d.b)-d.pos+64) // every argument's JSON, one after the other: about the msgpack's size
	for i := range data {
		if i > 0 {
			at, from := d.pos, len(buf)
			var ok bool
			if buf, ok = d.json(buf, 3); ok {
				data[i] = json.RawMessage(buf[from:len(buf):len(buf)])
				continue
			}
			d.pos, buf = at, buf[:from]
		}
		if data[i], err = d.value(3); err != nil {
			return nil, false, err
		}
	}
	return data, true, nil
}

// json appends the JSON of the msgpack value at d's position, as
// parser.appendJSON writes the value d.value would return (map keys in
// their msgpack order). ok is false for a value JSON cannot carry as such
// or a malformed one; d's position and dst's tail are then undefined.
func (d *decoder) json(dst []byte, depth int) ([]byte, bool) {
	if depth > maxDecodeDepth {
		return dst, false
	}
	c, err := d.byte()
	if err != nil {
		return dst, false
	}
	switch {
	case c <= 0x7f:
		return strconv.AppendInt(dst, int64(c), 10), true
	case c >= 0xe0:
		return strconv.AppendInt(dst, int64(int8(c)), 10), true
	case c&0xf0 == 0x80:
		return d.jsonMap(dst, int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return d.jsonArray(dst, int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return d.jsonString(dst, int(c&0x1f))
	}
	switch c {
	case 0xc0:
		return append(dst, "null"...), true
	case 0xc2:
		return append(dst, "false"...), true
	case 0xc3:
		return append(dst, "true"...), true
	case 0xca:
		u, err := d.uint(4)
		if err != nil {
			return dst, false
		}
		return parser.AppendJSONFloat(dst, float64(math.Float32frombits(uint32(u))))
	case 0xcb:
		u, err := d.uint(8)
		if err != nil {
			return dst, false
		}
		return parser.AppendJSONFloat(dst, math.Float64frombits(u))
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		return strconv.AppendUint(dst, u, 10), err == nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		u, err := d.uint(size)
		shift := 64 - 8*size // sign-extend
		return strconv.AppendInt(dst, int64(u<<shift)>>shift, 10), err == nil
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1<<(c-0xd9), 1)
		if err != nil {
			return dst, false
		}
		return d.jsonString(dst, n)
	case 0xdc, 0xdd:
		n, err := d.length(2<<(c-0xdc), 1)
		if err != nil {
			return dst, false
		}
		return d.jsonArray(dst, n, depth)
	case 0xde, 0xdf:
		n, err := d.length(2<<(c-0xde), 2)
		if err != nil {
			return dst, false
		}
		return d.jsonMap(dst, n, depth)
	}
	return dst, false // binary, extensions, 0xc1
}

func (d *decoder) jsonString(dst []byte, n int) ([]byte, bool) {
	p, err := d.take(n)
	if err != nil {
		return dst, false
	}
	// p is only read, during the call: no copy to a string.
	return parser.AppendJSONString(dst, unsafe.String(unsafe.SliceData(p), len(p))), true
}

func (d *decoder) jsonArray(dst []byte, n, depth int) ([]byte, bool) {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = d.json(dst, depth+1); !ok {
			return dst, false
		}
	}
	return append(dst, ']'), true
}

// jsonMap writes a map whose keys are all strings; duplicate keys stay
// (JSON.parse keeps the last, as decoding does).
func (d *decoder) jsonMap(dst []byte, n, depth int) ([]byte, bool) {
	dst = append(dst, '{')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		c, err := d.byte()
		if err != nil {
			return dst, false
		}
		size := 0
		switch {
		case c&0xe0 == 0xa0:
			size = int(c & 0x1f)
		case c >= 0xd9 && c <= 0xdb:
			if size, err = d.length(1<<(c-0xd9), 1); err != nil {
				return dst, false
			}
		default:
			return dst, false // a key that is not a string
		}
		var ok bool
		if dst, ok = d.jsonString(dst, size); !ok {
			return dst, false
		}
		dst = append(dst, ':')
		if dst, ok = d.json(dst, depth+1); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// target reads a broadcast's selector, {rooms, except, flags}, as
// targetFrom does.
func (d *decoder) target() (target, error) {
	n, ok, err := d.mapHeader()
	if err != nil {
		return target{}, err
	}
	if !ok {
		v, err := d.value(1)
		return targetFrom(v), err
	}
	var t target
	for range n {
		k, err := d.key(2)
		if err != nil {
			return target{}, err
		}
		v, err := d.value(2)
		if err != nil {
			return target{}, err
		}
		switch k {
		case "rooms":
			t.Rooms = stringList(v)
		case "except":
			t.Except = stringList(v)
		case "flags":
			t.Flags = flagsFrom(v)
		}
	}
	return t, nil
}

// key reads a map key to compare with known names: a string key is not
// copied (the result is only valid while d.b is, and must not be kept),
// any other is written as keyString writes it.
func (d *decoder) key(depth int) (string, error) {
	start := d.pos
	c, err := d.byte()
	if err != nil {
		return "", err
	}
	if c&0xe0 == 0xa0 || c == 0xd9 {
		n := int(c & 0x1f)
		if c == 0xd9 {
			if n, err = d.length(1, 1); err != nil {
				return "", err
			}
		}
		p, err := d.take(n)
		return unsafe.String(unsafe.SliceData(p), len(p)), err
	}
	d.pos = start
	v, err := d.value(depth)
	return keyString(v), err
}

// arrayHeader reads an array's header.
func (d *decoder) arrayHeader() (int, error) {
	n, ok, err := d.arrayHeaderIf()
	if err == nil && !ok {
		err = errors.New("msgpack: not an array")
	}
	return n, err
}

// arrayHeaderIf reads an array's header, if the value at d's position is
// an array (ok); otherwise d's position is unchanged.
func (d *decoder) arrayHeaderIf() (n int, ok bool, err error) {
	c, err := d.byte()
	switch {
	case err != nil:
		return 0, false, err
	case c&0xf0 == 0x90:
		return int(c & 0x0f), true, nil
	case c == 0xdc, c == 0xdd:
		n, err := d.length(2<<(c-0xdc), 1)
		return n, err == nil, err
	}
	d.pos--
	return 0, false, nil
}

// mapHeader reads a map's header, if the value at d's position is a map
// (ok); otherwise d's position is unchanged.
func (d *decoder) mapHeader() (n int, ok bool, err error) {
	c, err := d.byte()
	switch {
	case err != nil:
		return 0, false, err
	case c&0xf0 == 0x80:
		return int(c & 0x0f), true, nil
	case c == 0xde, c == 0xdf:
		n, err := d.length(2<<(c-0xde), 2)
		return n, err == nil, err
	}
	d.pos--
	return 0, false, nil
}
