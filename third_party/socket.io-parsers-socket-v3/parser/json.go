package parser

// frutos patch (third_party/PATCHES.md, "JSON of plain data without
// reflection"): the data of nearly every packet a server sends is made of
// the values a decoder produces (maps of strings, arrays, strings, numbers,
// booleans, nil). appendJSON writes those straight into the packet's bytes,
// byte for byte what encoding/json.Marshal writes for them (HTML characters
// escaped, map keys sorted, the same number formats); anything else makes it
// report false and the caller falls back to encoding/json. A json.RawMessage
// is copied as it is (see appendJSONDepth).

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// maxJSONDepth bounds the recursion: deeper data (or a map that holds
// itself) goes to encoding/json, which reports the cycle.
const maxJSONDepth = 256

// appendJSON appends the JSON of v to b. ok is false when v holds a value
// it does not handle; b is then to be discarded.
func appendJSON(b []byte, v any) (_ []byte, ok bool) {
	return appendJSONDepth(b, v, 0)
}

func appendJSONDepth(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxJSONDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case json.RawMessage:
		// JSON written by the caller, copied as it is: frutos's Redis
		// adapter transcodes the msgpack of the events it relays into
		// compact, valid JSON, escaped as below, which is what
		// encoding/json would write for it. (encoding/json would compact,
		// HTML-escape and validate any other RawMessage; this does not, so
		// none but those must reach the encoder.)
		if len(x) == 0 {
			return append(b, "null"...), true
		}
		return append(b, x...), true
	case string:
		return appendJSONString(b, x), true
	case bool:
		return strconv.AppendBool(b, x), true
	case float64:
		return appendJSONFloat(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case int32:
		return strconv.AppendInt(b, int64(x), 10), true
	case int16:
		return strconv.AppendInt(b, int64(x), 10), true
	case int8:
		return strconv.AppendInt(b, int64(x), 10), true
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint64:
		return strconv.AppendUint(b, x, 10), true
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), true
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, item := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSONDepth(b, item, depth+1); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		var small [8]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendJSONString(b, k), ':')
			var ok bool
			if b, ok = appendJSONDepth(b, x[k], depth+1); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

// AppendJSONString and AppendJSONFloat are appendJSONString and
// appendJSONFloat, for frutos's msgpack-to-JSON transcoder
// (cluster/redisadapter), which must write strings and numbers exactly as
// this encoder does.
func AppendJSONString(b []byte, s string) []byte { return appendJSONString(b, s) }

func AppendJSONFloat(b []byte, f float64) ([]byte, bool) { return appendJSONFloat(b, f) }

// appendJSONFloat formats as encoding/json does: like ES6, exponent
// notation outside [1e-6, 1e21), no NaN or infinity (not JSON).
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-09 -> e-9, as encoding/json
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const jsonHex = "0123456789abcdef"

// jsonSafe reports the ASCII bytes encoding/json writes as they are (with
// HTML escaping on, its default in Marshal).
func jsonSafe(c byte) bool {
	return c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendJSONString quotes s as encoding/json does: invalid UTF-8 becomes
// U+FFFD, and U+2028, U+2029 and <, >, & are escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe(c) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', jsonHex[c>>4], jsonHex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', jsonHex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
