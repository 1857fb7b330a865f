package redisadapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// randomValue is a value of what decodeValue returns, maps of at most one
// key when single (so that encoding/json's sorted keys and msgpack's order
// agree), with the strings and numbers where JSON writers differ: HTML
// characters, control characters, invalid UTF-8, U+2028, exponents.
func randomValue(r *rand.Rand, depth int, single bool) any {
	k := r.IntN(10)
	if depth > 4 {
		k = r.IntN(6)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return []int64{0, 1, -1, 127, 128, -32, -33, 255, 256, -129, 65535, 65536, -32769, math.MaxInt32, math.MinInt32, math.MaxInt64, math.MinInt64, r.Int64()}[r.IntN(18)]
	case 3:
		return []float64{0.5, -1.25, 1e-7, 1e21, 123456789.125, 1e-6, 5e-324, math.MaxFloat64, 1, r.Float64() * 1e10}[r.IntN(10)]
	case 4:
		return []any{uint64(math.MaxUint64), uint64(math.MaxInt64) + 1}[r.IntN(2)]
	case 5:
		return randomString(r)
	case 6, 7:
		out := make([]any, r.IntN(4))
		for i := range out {
			out[i] = randomValue(r, depth+1, single)
		}
		return out
	default:
		n := r.IntN(4)
		if single {
			n = min(n, 1)
		}
		out := map[string]any{}
		for i := range n {
			out[string(rune('a'+i))+randomString(r)] = randomValue(r, depth+1, single)
		}
		return out
	}
}

func randomString(r *rand.Rand) string {
	parts := []string{"a", "é", "<", ">", "&", "\"", "\\", "\n", "\t", "\x01", "\x7f", "\xff", "\u2028", "\u2029", "日本", strings.Repeat("x", 40)}
	var b strings.Builder
	for range r.IntN(6) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// The JSON of a transcoded value is byte for byte what the Socket.IO
// encoder writes for the decoded value (encoding/json's bytes, see
// third_party/patchtest) where key order cannot differ, and the same
// value otherwise.
func TestTranscodeMatchesDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		single := i%2 == 0
		v := randomValue(r, 0, single)
		b, err := appendValue(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		d := &decoder{b: b}
		got, ok := d.json(nil, 0)
		if !ok || d.pos != len(b) {
			t.Fatalf("%#v: not transcoded (ok %v, %d of %d bytes)", v, ok, d.pos, len(b))
		}
		decoded, err := decodeValue(b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(decoded)
		if err != nil {
			t.Fatal(err)
		}
		if single && !bytes.Equal(got, want) {
			t.Fatalf("%#v:\n got %s\nwant %s", v, got, want)
		}
		if !looseValue(json.RawMessage(got), json.RawMessage(want)) {
			t.Fatalf("%#v:\n got %s\nwant %s (as values)", v, got, want)
		}
	}
}

// What JSON cannot carry as such is left to decodeValue: binary, extension
// types (a Date), NaN and infinities, maps with keys that are not strings;
// so is anything malformed.
func TestTranscodeRefuses(t *testing.T) {
	f32 := func(f float32) []byte { return binary.BigEndian.AppendUint32([]byte{0xca}, math.Float32bits(f)) }
	for name, b := range map[string][]byte{
		"binary":          appendBinary(nil, []byte{1, 2}),
		"binary in array": append([]byte{0x92, 0x01}, appendBinary(nil, []byte{1})...),
		"timestamp":       appendTimestamp(nil, time.Unix(1, 0)),
		"NaN":             appendFloat(nil, math.NaN()),
		"-Inf float32":    f32(float32(math.Inf(-1))),
		"int key":         {0x81, 0x01, 0x02},
		"nil key":         {0x81, 0xc0, 0x02},
		"truncated":       {0x92, 0x01},
		"short string":    {0xa5, 'a'},
		"0xc1":            {0xc1},
		"deep":            bytes.Repeat([]byte{0x91}, maxDecodeDepth+2),
	} {
		if got, ok := (&decoder{b: b}).json(nil, 0); ok {
			t.Errorf("%s: transcoded to %s", name, got)
		}
	}
	if got, ok := (&decoder{b: f32(1.5)}).json(nil, 0); !ok || string(got) != "1.5" {
		t.Errorf("float32 1.5: %s, %v", got, ok)
	}
}

// A broadcast's arguments arrive as JSON where they can, decoded where
// they cannot (a binary one stays bytes, so Socket.IO sends it as an
// attachment), and the broadcast keeps its payload for the recovery store.
func TestDecodeBroadcastTranscodes(t *testing.T) {
	data := []any{"ev", map[string]any{"n": int64(1), "s": "<b>"}, []byte{7}, []any{1.5, nil}}
	b, err := encodeBroadcast(message{Kind: kindBroadcast, UID: "u", Nsp: "/chat", Data: data, Target: target{Rooms: []string{"r"}}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeBroadcast(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Data[0] != "ev" || m.Nsp != "/chat" || m.UID != "u" || !bytes.Equal(m.raw, b) {
		t.Fatalf("decoded %#v", m)
	}
	if raw, ok := m.Data[1].(json.RawMessage); !ok || string(raw) != `{"n":1,"s":"\u003cb\u003e"}` && string(raw) != `{"s":"\u003cb\u003e","n":1}` {
		t.Errorf("map argument: %#v", m.Data[1])
	}
	if bin, ok := m.Data[2].([]byte); !ok || !bytes.Equal(bin, []byte{7}) {
		t.Errorf("binary argument: %#v", m.Data[2])
	}
	if raw, ok := m.Data[3].(json.RawMessage); !ok || string(raw) != `[1.5,null]` {
		t.Errorf("array argument: %#v", m.Data[3])
	}
	// Re-encoded (a handover answer, a stored session), the arguments are
	// values again.
	again, err := appendValue(nil, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := decodeValue(again); err != nil || !sameValue(v, data) {
		t.Errorf("re-encoded as %#v, %v", v, err)
	}
}

func BenchmarkDecodeBroadcast(b *testing.B) {
	payload := map[string]any{"s": 1.0, "q": 12345.0, "t": 1764864000000000.0, "text": "nueva tarea"}
	msg, err := encodeBroadcast(message{Kind: kindBroadcast, UID: "emitter", Nsp: "/", Data: []any{"nueva_tarea", payload}, Target: target{Rooms: []string{"user:42"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeBroadcast(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// Whatever the bytes, what the transcoder accepts is valid JSON with the
// value decodeValue reads from the same bytes.
func FuzzTranscode(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		b, _ := appendValue(nil, randomValue(r, 0, false))
		f.Add(b)
	}
	f.Add([]byte{0x81, 0xa1, 'k', 0xc4, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &decoder{b: b}
		out, ok := d.json(nil, 0)
		if !ok {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%x transcoded to invalid JSON %q", b, out)
		}
		v, err := (&decoder{b: b[:d.pos]}).value(0)
		if err != nil {
			t.Fatalf("%x: transcoded to %s, but decodeValue fails: %v", b, out, err)
		}
		if want, err := json.Marshal(v); err == nil && !looseValue(json.RawMessage(out), json.RawMessage(want)) {
			t.Fatalf("%x:\n got %s\nwant %s", b, out, want)
		}
	})
}
