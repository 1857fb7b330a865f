package engine

import (
	"fmt"
	"testing"

	eiopacket "github.com/zishang520/socket.io/parsers/engine/v3/packet"
	"github.com/zishang520/socket.io/v3/pkg/types"
	"golang.org/x/sys/unix"
)

// benchSessions opens n websocket sessions on socket pairs (no network,
// no handshake): the server's side is served by srv, the peer's side is
// returned, non-blocking, to be drained.
func benchSessions(b *testing.B, srv *Server, n int) ([]*Socket, []int) {
	b.Helper()
	socks := make([]*Socket, n)
	peers := make([]int, n)
	for i := range n {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		_ = unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
		s := newSocket(srv, fmt.Sprint(i), nil, "")
		c := newWSConn(fds[0], srv.poller, s, 1<<20, -1)
		s.ws = c
		if err := c.start(nil); err != nil {
			b.Fatal(err)
		}
		srv.register(s)
		socks[i], peers[i] = s, fds[1]
	}
	b.Cleanup(func() {
		for i, s := range socks {
			s.end(ReasonServerClose)
			unix.Close(peers[i])
		}
	})
	return socks, peers
}

func drain(peers []int) {
	buf := make([]byte, 64<<10)
	for _, fd := range peers {
		for {
			if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// BenchmarkBroadcast writes one Socket.IO broadcast (its packet encoded
// once, as the library's adapter does) to 1,000 websocket sessions: the
// engine's cost per recipient.
func BenchmarkBroadcast(b *testing.B) {
	srv, err := NewServer(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	socks, peers := benchSessions(b, srv, 1000)
	payload := `2["sistema_mantenimiento",{"mensaje":"La plataforma entra en mantenimiento a las 22:00","minutos":30}]`
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		packet := types.NewStringBufferString(payload)
		pre := types.NewStringBufferString("4" + payload)
		opts := &eiopacket.Options{WsPreEncodedFrame: pre}
		for _, s := range socks {
			s.Write(packet, opts, nil)
		}
		b.StopTimer()
		drain(peers)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(socks)), "ns/recipient")
}

// BenchmarkTargetedEmit writes one packet to one session at a time (a
// targeted emit: no frame shared).
func BenchmarkTargetedEmit(b *testing.B) {
	srv, err := NewServer(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	socks, peers := benchSessions(b, srv, 100)
	payload := `2["evidencia_aprobada",{"evidenciaId":7,"mensaje":"¡Aprobada!"}]`
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		socks[i%len(socks)].Write(types.NewStringBufferString(payload), nil, nil)
		if i%len(socks) == len(socks)-1 {
			b.StopTimer()
			drain(peers)
			b.StartTimer()
		}
	}
}
