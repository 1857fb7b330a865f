// nullsrv: the common parts of the probe servers (stats endpoint on
// net/http, front door + SCM_RIGHTS receive) with no websocket library and
// no epoll loop. Only for the binary-size and idle-RSS reference.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"probe/internal/frontdoor"
	"probe/internal/stats"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8200", "listen address")
	ctl := flag.String("ctl", "127.0.0.1:9200", "control/stats listen address")
	flag.Parse()
	stats.RaiseNofile()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if err := frontdoor.Start(ln, func(fd int, head []byte) { unix.Close(fd) }); err != nil {
		log.Fatal(err)
	}
	stats.Serve(*ctl, stats.Hooks{
		Conns:     func() int { return 0 },
		Broadcast: func(int) stats.BroadcastResult { return stats.BroadcastResult{} },
		Emits:     func(int) stats.EmitsResult { return stats.EmitsResult{} },
	})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
