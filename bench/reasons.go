package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/frutos/frutos/internal/sioclient"
)

// FailReason names why a handshake failed, in few enough words to count
// failures by reason.
func FailReason(err error, run context.Context) string {
	var ce *sioclient.ConnectError
	var he *sioclient.HTTPError
	switch {
	case run.Err() != nil:
		return "run ended during the handshake"
	case errors.As(err, &ce):
		return "connect_error: " + ce.Message
	case errors.As(err, &he):
		if he.Message != "" {
			return fmt.Sprintf("http %d: %s", he.Status, he.Message)
		}
		return fmt.Sprintf("http %d", he.Status)
	}
	return netReason(err)
}

// closeReason names why an established connection ended.
func closeReason(err error) string {
	if err == nil {
		return "closed"
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "disconnected by the server"):
		return "disconnected by the server"
	case strings.Contains(s, "server closed the session"):
		return "server closed the session"
	case strings.Contains(s, "close 1006"), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection lost (1006)"
	}
	var he *sioclient.HTTPError
	if errors.As(err, &he) {
		return fmt.Sprintf("http %d: %s", he.Status, he.Message)
	}
	return netReason(err)
}

func netReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port (EADDRNOTAVAIL): add --sources"
	case errors.Is(err, syscall.EADDRINUSE):
		return "local address in use (EADDRINUSE): add --sources"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files: raise ulimit -n or add --procs"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed by the server (EOF)"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }
