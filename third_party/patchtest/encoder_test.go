// Package patchtest tests the frutos patches of the library copies under
// third_party (PATCHES.md) through their public API; the copies are
// modules of their own, outside `go test ./...`.
package patchtest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// encoded is what the library's encoder writes for data as the first
// buffer of an EVENT packet of namespace nsp with ack id.
func encoded(t testing.TB, data any, nsp string, id *uint64) string {
	t.Helper()
	bufs := parser.NewEncoder().Encode(&parser.Packet{Type: parser.EVENT, Nsp: nsp, Id: id, Data: data})
	if len(bufs) != 1 {
		t.Fatalf("%d buffers for %#v", len(bufs), data)
	}
	return bufs[0].String()
}

// marshalled is what upstream wrote: encoding/json's bytes after the header.
func marshalled(header string, data any) string {
	b, err := json.Marshal(data)
	if err != nil {
		return header
	}
	return header + string(b)
}

var runes = []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\b", "\f",
	"\x00", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\u2029", "\xff", "\xc3", "\xed\xa0\x80", "\ufffd"}

func randString(r *rand.Rand) string {
	var sb strings.Builder
	for range r.IntN(12) {
		sb.WriteString(runes[r.IntN(len(runes))])
	}
	return sb.String()
}

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(6) {
	case 0:
		return float64(r.IntN(2000) - 1000)
	case 1:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
	case 2:
		return []float64{0, math.Copysign(0, -1), 1e-6, 1e-7, 9.99999e-7, 1e20, 1e21, 1e22, -1e21, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1, 1.0 / 3}[r.IntN(13)]
	default:
		return r.Float64() * 1e6
	}
}

func randValue(r *rand.Rand, depth int) any {
	n := 10
	if depth > 3 {
		n = 8 // no more containers
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2, 3:
		return randString(r)
	case 4:
		return randFloat(r)
	case 5:
		return []any{int64(r.Uint64()), uint64(r.Uint64()), int(r.Int32()), int32(r.Int32()), uint32(r.Uint32()), int16(r.IntN(1 << 15)), int8(r.IntN(127)), uint16(r.IntN(1 << 16)), uint(r.Uint32())}[r.IntN(9)]
	case 6:
		return []any(nil)
	case 7:
		return map[string]any(nil)
	case 8:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randValue(r, depth+1)
		}
		return a
	default:
		m := map[string]any{}
		for range r.IntN(12) {
			m[randString(r)] = randValue(r, depth+1)
		}
		return m
	}
}

// JSON of plain data without reflection: the same bytes as encoding/json,
// for every kind of value a decoder produces.
func TestEncoderWritesWhatEncodingJSONWrites(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	id := uint64(17)
	for i := range 20000 {
		data := []any{"event", randValue(r, 0), randValue(r, 0)}
		nsp, header, ack := "/", "2", (*uint64)(nil)
		if i%3 == 0 {
			nsp, header, ack = "/admin", "2/admin,17", &id
		}
		if got, want := encoded(t, data, nsp, ack), marshalled(header, data); got != want {
			t.Fatalf("value %d (%#v):\n got %q\nwant %q", i, data, got, want)
		}
	}
}

type custom struct {
	A int    `json:"a"`
	B string `json:"b,omitempty"`
}

type tagged string

func (tagged) MarshalJSON() ([]byte, error) { return []byte(`"tagged"`), nil }

// Values the fast path does not know go to encoding/json, as upstream.
func TestEncoderFallsBackToEncodingJSON(t *testing.T) {
	cases := []any{
		[]any{"e", custom{A: 1}},
		[]any{"e", map[string]any{"x": []string{"a", "b"}}},
		[]any{"e", tagged("x")},
		[]any{"e", &custom{A: 2, B: "<b>"}},
		[]any{"e", float32(0.1)},
		[]any{"e", uint8(7)},
		[]any{"e", math.NaN()}, // not JSON: no data, as upstream
		[]any{"e", map[string]any{"deep": math.Inf(1)}},
		// JSON already written (frutos's transcoded arguments): as is.
		[]any{"e", json.RawMessage(`{"b":[1,"\u003c"],"a":null}`), json.RawMessage(nil)},
		[]any{"e", map[string]any{"raw": json.RawMessage(`2.5`)}},
	}
	for _, data := range cases {
		if got, want := encoded(t, data, "/", nil), marshalled("2", data); got != want {
			t.Errorf("%#v:\n got %q\nwant %q", data, got, want)
		}
	}
	if got := encoded(t, []any{"e", strings.NewReader("read")}, "/", nil); !strings.Contains(got, "read") {
		t.Errorf("a *strings.Reader is written as its text: %q", got)
	}
	var deep any = "bottom" // deeper than appendJSON goes: encoding/json writes it
	for range 300 {
		deep = []any{deep}
	}
	if got, want := encoded(t, []any{"e", deep}, "/", nil), marshalled("2", []any{"e", deep}); got != want {
		t.Errorf("300 nested arrays: got %d bytes, want %d", len(got), len(want))
	}
}

func FuzzEncoderString(f *testing.F) {
	for _, s := range runes {
		f.Add(s)
	}
	f.Add("<script>\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		data := []any{s, map[string]any{s: s, "k": []any{s}}}
		if got, want := encoded(t, data, "/", nil), marshalled("2", data); got != want {
			t.Fatalf("%q:\n got %q\nwant %q", s, got, want)
		}
	})
}

func BenchmarkEncodeEvent(b *testing.B) {
	data := []any{"evidence:approved", map[string]any{"id": "ev-1234", "student": float64(42), "mentor": "m-7",
		"at": "2026-12-04T10:00:00Z", "note": "Buen trabajo <3", "files": []any{"a.pdf", "b.png"}}, "offset-abc"}
	enc := parser.NewEncoder()
	b.ReportAllocs()
	for b.Loop() {
		enc.Encode(&parser.Packet{Type: parser.EVENT, Nsp: "/", Data: data})
	}
}
