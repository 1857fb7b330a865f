package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	eioparser "github.com/zishang520/socket.io/parsers/engine/v3/parser"
	sioparser "github.com/zishang520/socket.io/parsers/socket/v3/parser"
	"github.com/zishang520/socket.io/v3/pkg/types"

	"github.com/frutos/frutos/internal/testutil/redistest"
)

// Fuzz targets for what a worker reads from clients: Engine.IO packets
// (websocket frames, polling bodies) and the Socket.IO packets inside
// them, first through the parsers as the worker configures them (the
// library's defaults: Engine.IO v4, the default Socket.IO parser), then
// sent to a real worker.
//
//	go test -run '^$' -fuzz '^FuzzEngineIOParser$' -fuzztime 60s -parallel 1 ./cluster/
//	go test -run '^$' -fuzz '^FuzzSocketIOParser$' -fuzztime 60s -parallel 1 ./cluster/
//	go test -run '^$' -fuzz '^FuzzWorkerFrames$' -fuzztime 60s -parallel 1 ./cluster/

// clientFrames are real frames of socket.io-client 4 (and a few that no
// client should send), used as seeds by every target here.
var clientFrames = []string{
	"2", "3", "3probe", "5", "6", "1",
	`40{"token":"9|student"}`,
	`40/admin,{"token":"9|admin"}`,
	`42["ev",1,"ñ",{"a":[true,null]}]`,
	`421["ack-me",{"x":1}]`,
	`43/admin,7[{"ok":true}]`,
	`451-["bin",{"_placeholder":true,"num":0}]`,
	`452-/admin,3["bin",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
	`41`, `44{"message":"x"}`,
	"bAQID", "b", "b====",
	"42[\"a\"]\x1e42[\"b\"]\x1e2",
	"garbage", "4", "42", "42[", `42{"a":1}`, "4999999999999", "44", "45-[]", "\x00\xff",
	`45999999999999999999999-["x"]`, `4218446744073709551616["x"]`, `42/` + strings.Repeat("a", 600) + `,["x"]`,
	`42["connect"]`, `42[1,2]`, `42[]`, `40{"token":`, strings.Repeat("[", 64),
}

// FuzzEngineIOParser decodes a websocket frame (text or binary) and a
// polling body with the Engine.IO v4 parser, and hands every message to a
// Socket.IO decoder, as the worker does. Properties: no panic; a decoded
// text packet encodes back to a frame that decodes to the same packet.
func FuzzEngineIOParser(f *testing.F) {
	for _, s := range clientFrames {
		f.Add([]byte(s), false)
	}
	f.Add([]byte{1, 2, 3}, true)
	f.Fuzz(func(t *testing.T, frame []byte, binary bool) {
		p := eioparser.Parserv4()
		var data types.BufferInterface = types.NewStringBuffer(bytes.Clone(frame))
		if binary {
			data = types.NewBytesBuffer(bytes.Clone(frame))
		}
		pkt, err := p.DecodePacket(data)
		if err == nil && !binary && frame[0] != 'b' {
			payload := readAll(t, pkt.Data)
			pkt.Data = types.NewStringBuffer(payload)
			enc, err := p.EncodePacket(pkt, true)
			if err != nil {
				t.Fatalf("decoded %q does not encode: %v", frame, err)
			}
			again, err := p.DecodePacket(types.NewStringBuffer(readAll(t, enc)))
			if err != nil || again.Type != pkt.Type || !bytes.Equal(readAll(t, again.Data), payload) {
				t.Fatalf("%q: decode, encode, decode changed the packet: %v %v", frame, again, err)
			}
			pkt.Data = types.NewStringBuffer(payload)
		}
		if err == nil {
			feedSocketIO(pkt.Data)
		}
		packets, _ := p.DecodePayload(types.NewStringBuffer(bytes.Clone(frame)))
		d := sioparser.NewDecoder()
		for _, pkt := range packets {
			if pkt != nil && pkt.Data != nil {
				_ = d.Add(pkt.Data)
			}
		}
		d.Destroy()
	})
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	if r == nil {
		return nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// feedSocketIO gives an Engine.IO message to a fresh Socket.IO decoder.
func feedSocketIO(data io.Reader) {
	if data == nil {
		return
	}
	d := sioparser.NewDecoder()
	defer d.Destroy()
	_ = d.Add(data)
}

// FuzzSocketIOParser decodes a Socket.IO packet, then binary attachments
// (the attachments bytes cut in n pieces), with the default decoder.
// Properties: no panic; every decoded packet is one a server may act on
// (an event has a name) and encodes back to frames that decode to the
// same packet.
func FuzzSocketIOParser(f *testing.F) {
	for _, s := range clientFrames {
		if len(s) > 1 && s[0] == '4' {
			f.Add(s[1:], []byte("\x01\x02\x03\x04"), uint8(2))
		}
	}
	f.Fuzz(func(t *testing.T, text string, attachments []byte, n uint8) {
		decoded := decodeSocketIO(text, attachments, n)
		for _, pkt := range decoded {
			if (pkt.Type == sioparser.EVENT || pkt.Type == sioparser.BINARY_EVENT) && !isEvent(pkt.Data) {
				t.Fatalf("%q decoded to an event without a name: %#v", text, pkt.Data)
			}
			want := show(pkt)
			// As a server sends it: an EVENT or ACK, which the encoder
			// makes binary when it carries bytes (so a BINARY_EVENT with
			// no attachment comes back as an EVENT).
			pkt.Type = plainType(pkt.Type)
			frames := sioparser.NewEncoder().Encode(pkt)
			d := sioparser.NewDecoder()
			var again []*sioparser.Packet
			_ = d.On("decoded", func(args ...any) { again = append(again, args[0].(*sioparser.Packet)) })
			for i, fr := range frames {
				var err error
				if i == 0 {
					err = d.Add(fr.String())
				} else {
					err = d.Add(fr.Bytes())
				}
				if err != nil {
					t.Fatalf("%q: re-encoded frame %d (%q) does not decode: %v", text, i, fr.Bytes(), err)
				}
			}
			d.Destroy()
			if len(again) != 1 || plainType(again[0].Type) != pkt.Type || show(again[0]) != want {
				t.Fatalf("%q: decode, encode, decode changed the packet:\n %s\n %s", text, want, show(again...))
			}
		}
	})
}

func plainType(t sioparser.PacketType) sioparser.PacketType {
	switch t {
	case sioparser.BINARY_EVENT:
		return sioparser.EVENT
	case sioparser.BINARY_ACK:
		return sioparser.ACK
	}
	return t
}

func decodeSocketIO(text string, attachments []byte, n uint8) []*sioparser.Packet {
	d := sioparser.NewDecoder()
	defer d.Destroy()
	var out []*sioparser.Packet
	_ = d.On("decoded", func(args ...any) { out = append(out, args[0].(*sioparser.Packet)) })
	if d.Add(text) != nil {
		return out
	}
	pieces := int(n%8) + 1
	size := len(attachments)/pieces + 1
	for len(attachments) > 0 {
		k := min(size, len(attachments))
		if d.Add(bytes.Clone(attachments[:k])) != nil {
			break
		}
		attachments = attachments[k:]
	}
	return out
}

// isEvent: [name, ...args], the name a string (not a reserved one) or a
// number, as socket.io-parser checks it.
func isEvent(data any) bool {
	arr, ok := data.([]any)
	if !ok || len(arr) == 0 {
		return false
	}
	switch name := arr[0].(type) {
	case string:
		return !sioparser.ReservedEvents.Has(name)
	case float64, json.Number:
		return true
	}
	return false
}

// show is a packet's content: attachments by their bytes, the id by value.
func show(pkts ...*sioparser.Packet) string {
	var sb strings.Builder
	for _, p := range pkts {
		b, _ := json.Marshal(jsonable(p.Data))
		id := "none"
		if p.Id != nil {
			id = fmt.Sprint(*p.Id)
		}
		fmt.Fprintf(&sb, "{nsp %q id %s data %s}", p.Nsp, id, b)
	}
	return sb.String()
}

// jsonable turns attachment buffers into their bytes, so that JSON shows
// them by content.
func jsonable(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonable(x[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case interface{ Bytes() []byte }:
		return x.Bytes()
	}
	return v
}

// FuzzWorkerFrames sends the input to a real worker (in this process, on
// a real Redis) as a websocket text frame and a binary frame after a
// valid connect, and as the body of a polling POST, then checks that a
// well-behaved client still connects and receives an event.
func FuzzWorkerFrames(f *testing.F) {
	for _, s := range clientFrames {
		f.Add([]byte(s))
	}
	rs := redistest.Start(f)
	w := startWorker(f, rs.URL(), hostileLimits)
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, frame []byte) {
		c := rawWS(t, w.URL)
		_ = c.WriteMessage(websocket.TextMessage, []byte(`40{"token":"hostile|student"}`))
		_ = c.WriteMessage(websocket.TextMessage, frame)
		_ = c.WriteMessage(websocket.BinaryMessage, frame)
		c.Close()
		pollPOST(t, w.URL, frame)

		// The library sends CONNECT before the worker's connection handler
		// has joined the user's room: emit until it arrives.
		sub := fmt.Sprint("good-", n.Add(1))
		_, rec := mustDial(t, w.URL, tok(sub, "student"))
		waitFor(t, 10*time.Second, "an event for the well-behaved client", func() bool {
			if err := w.EmitToUser(sub, "still-served"); err != nil {
				t.Fatal(err)
			}
			return len(rec.Named("still-served")) > 0
		})
	})
}

// pollPOST opens a polling session and posts body as its payload.
func pollPOST(t *testing.T, url string, body []byte) {
	t.Helper()
	base := url + "/socket.io/?EIO=4&transport=polling"
	resp, err := http.Get(base)
	if err != nil {
		t.Fatalf("polling handshake: %v", err)
	}
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct {
		SID string `json:"sid"`
	}
	if len(open) < 2 || open[0] != '0' || json.Unmarshal(open[1:], &hs) != nil || hs.SID == "" {
		t.Fatalf("polling handshake answered %d %q", resp.StatusCode, open)
	}
	resp, err = http.Post(base+"&sid="+hs.SID, "text/plain;charset=UTF-8", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("polling POST: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}
