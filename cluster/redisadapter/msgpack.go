package redisadapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// This file is the msgpack codec of the wire format. It is written for the
// values Socket.IO carries (JSON-like trees plus binary) and for the dialect
// of notepack.io, the serializer of @socket.io/redis-adapter and
// @socket.io/redis-emitter:
//   - Buffers are msgpack bin; Dates are the timestamp extension (-1);
//   - old notepack versions write `undefined` as fixext1 type 0 (d4 00 00);
//   - integers use the smallest encoding, other numbers float64.
// Decoding never fails a message over an extension it does not know: such a
// value becomes nil, as JSON would make of it.

const (
	maxDecodeDepth = 128
	extTimestamp   = -1
	extUndefined   = 0
)

var errShort = errors.New("msgpack: unexpected end of data")

// appendValue appends the msgpack encoding of v. Values outside the JSON-like
// set (structs, typed maps, json.RawMessage...) are encoded as their JSON
// form, which is what the Socket.IO encoder would send to a client.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0), nil
	case bool:
		if x {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case string:
		return appendString(b, x), nil
	case []byte:
		return appendBinary(b, x), nil
	case int:
		return appendInt(b, int64(x)), nil
	case int8:
		return appendInt(b, int64(x)), nil
	case int16:
		return appendInt(b, int64(x)), nil
	case int32:
		return appendInt(b, int64(x)), nil
	case int64:
		return appendInt(b, x), nil
	case uint:
		return appendUint(b, uint64(x)), nil
	case uint8:
		return appendUint(b, uint64(x)), nil
	case uint16:
		return appendUint(b, uint64(x)), nil
	case uint32:
		return appendUint(b, uint64(x)), nil
	case uint64:
		return appendUint(b, x), nil
	case float32:
		return appendFloat(b, float64(x)), nil
	case float64:
		return appendFloat(b, x), nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return appendInt(b, i), nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return appendUint(b, u), nil
		}
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("msgpack: bad json.Number %q", string(x))
		}
		return appendFloat(b, f), nil
	case time.Time:
		return appendTimestamp(b, x), nil
	case json.RawMessage: // an argument decodeBroadcast transcoded
		if len(x) == 0 {
			return append(b, 0xc0), nil
		}
		return appendJSONValue(b, x)
	case []any:
		b = appendArrayHeader(b, len(x))
		for _, e := range x {
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case []string:
		b = appendArrayHeader(b, len(x))
		for _, e := range x {
			b = appendString(b, e)
		}
		return b, nil
	case map[string]any:
		b = appendMapHeader(b, len(x))
		for k, e := range x {
			b = appendString(b, k)
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]string:
		b = appendMapHeader(b, len(x))
		for k, e := range x {
			b = appendString(b, k)
			b = appendString(b, e)
		}
		return b, nil
	case interface{ Bytes() []byte }: // zishang520's types.BytesBuffer and friends
		return appendBinary(b, x.Bytes()), nil
	}
	return appendReflected(b, v)
}

// appendReflected handles typed slices and maps, then falls back to JSON.
func appendReflected(b []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return append(b, 0xc0), nil
		}
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(b, 0xc0), nil
		}
		b = appendArrayHeader(b, rv.Len())
		for i := range rv.Len() {
			var err error
			if b, err = appendValue(b, rv.Index(i).Interface()); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String && !rv.Type().Implements(jsonMarshalerType) {
			if rv.IsNil() {
				return append(b, 0xc0), nil
			}
			b = appendMapHeader(b, rv.Len())
			it := rv.MapRange()
			for it.Next() {
				b = appendString(b, it.Key().String())
				var err error
				if b, err = appendValue(b, it.Value().Interface()); err != nil {
					return nil, err
				}
			}
			return b, nil
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("msgpack: encode %T: %w", v, err)
	}
	b, err = appendJSONValue(b, raw)
	if err != nil {
		return nil, fmt.Errorf("msgpack: encode %T: %w", v, err)
	}
	return b, nil
}

// appendJSONValue appends the msgpack of a JSON text's value (integers
// stay integers).
func appendJSONValue(b []byte, raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return appendValue(b, tree)
}

var jsonMarshalerType = reflect.TypeFor[json.Marshaler]()

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, s...)
}

func appendBinary(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	return append(b, p...)
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
	}
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
	}
}

func appendInt(b []byte, n int64) []byte {
	if n >= 0 {
		return appendUint(b, uint64(n))
	}
	switch {
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(n))
	}
}

func appendUint(b []byte, n uint64) []byte {
	switch {
	case n < 128:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), n)
	}
}

func appendFloat(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// appendTimestamp writes the msgpack timestamp extension, as notepack does
// for a Date.
func appendTimestamp(b []byte, t time.Time) []byte {
	sec, nsec := t.Unix(), int64(t.Nanosecond())
	if sec >= 0 && sec>>34 == 0 {
		data := uint64(nsec)<<34 | uint64(sec)
		if data&0xffffffff00000000 == 0 {
			return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(data))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), data)
	}
	b = append(b, 0xc7, 12, 0xff)
	b = binary.BigEndian.AppendUint32(b, uint32(nsec))
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}

// decoder reads msgpack values from a byte slice.
type decoder struct {
	b   []byte
	pos int
}

// decodeValue decodes exactly one value and refuses trailing bytes.
func decodeValue(b []byte) (any, error) {
	d := &decoder{b: b}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(d.b) {
		return nil, fmt.Errorf("msgpack: %d trailing bytes", len(d.b)-d.pos)
	}
	return v, nil
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > len(d.b)-d.pos {
		return nil, errShort
	}
	p := d.b[d.pos : d.pos+n]
	d.pos += n
	return p, nil
}

func (d *decoder) byte() (byte, error) {
	p, err := d.take(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (d *decoder) uint(size int) (uint64, error) {
	p, err := d.take(size)
	if err != nil {
		return 0, err
	}
	switch size {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	default:
		return binary.BigEndian.Uint64(p), nil
	}
}

// length reads a size-byte length and checks that at least min*n bytes
// remain, so a hostile header cannot make us allocate gigabytes.
func (d *decoder) length(size, min int) (int, error) {
	n, err := d.uint(size)
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.b)-d.pos) || int(n)*min > len(d.b)-d.pos {
		return 0, errShort
	}
	return int(n), nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDecodeDepth {
		return nil, errors.New("msgpack: nesting too deep")
	}
	c, err := d.byte()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return d.mapOf(int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		return d.arrayOf(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.length(1<<(c-0xc4), 1)
		if err != nil {
			return nil, err
		}
		p, err := d.take(n)
		if err != nil {
			return nil, err
		}
		return append([]byte(nil), p...), nil
	case 0xc7, 0xc8, 0xc9:
		n, err := d.length(1<<(c-0xc7), 1)
		if err != nil {
			return nil, err
		}
		return d.ext(n)
	case 0xca:
		u, err := d.uint(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := d.uint(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0:
		u, err := d.uint(1)
		return int64(int8(u)), err
	case 0xd1:
		u, err := d.uint(2)
		return int64(int16(u)), err
	case 0xd2:
		u, err := d.uint(4)
		return int64(int32(u)), err
	case 0xd3:
		u, err := d.uint(8)
		return int64(u), err
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1 << (c - 0xd4))
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1<<(c-0xd9), 1)
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.length(2<<(c-0xdc), 1)
		if err != nil {
			return nil, err
		}
		return d.arrayOf(n, depth)
	case 0xde, 0xdf:
		n, err := d.length(2<<(c-0xde), 2)
		if err != nil {
			return nil, err
		}
		return d.mapOf(n, depth)
	}
	return nil, fmt.Errorf("msgpack: invalid code 0x%02x", c)
}

func (d *decoder) str(n int) (string, error) {
	p, err := d.take(n)
	return string(p), err
}

func (d *decoder) arrayOf(n, depth int) ([]any, error) {
	if n > len(d.b)-d.pos {
		return nil, errShort
	}
	out := make([]any, n)
	for i := range out {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (d *decoder) mapOf(n, depth int) (map[string]any, error) {
	if 2*n > len(d.b)-d.pos {
		return nil, errShort
	}
	out := make(map[string]any, n)
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out[keyString(k)] = v
	}
	return out, nil
}

// keyString turns a map key into a string as JavaScript would.
func keyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(k)
}

// ext decodes an extension body of n bytes: the timestamp becomes a
// time.Time; everything else (notepack's undefined, unknown types) nil.
func (d *decoder) ext(n int) (any, error) {
	typ, err := d.byte()
	if err != nil {
		return nil, err
	}
	p, err := d.take(n)
	if err != nil {
		return nil, err
	}
	if int8(typ) != extTimestamp {
		return nil, nil
	}
	switch n {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0).UTC(), nil
	case 8:
		v := binary.BigEndian.Uint64(p)
		return time.Unix(int64(v&0x3ffffffff), int64(v>>34)).UTC(), nil
	case 12:
		nsec := binary.BigEndian.Uint32(p[:4])
		sec := int64(binary.BigEndian.Uint64(p[4:]))
		return time.Unix(sec, int64(nsec)).UTC(), nil
	}
	return nil, nil
}
