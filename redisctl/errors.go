package redisctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Cause is why Redis could not be used, in words an operator acts on.
type Cause string

// The causes. Their text is stable: scripts may match it.
const (
	CauseRefused   Cause = "refused"     // nothing listens at the address
	CauseTimeout   Cause = "timeout"     // something listens but does not answer in time
	CauseAuth      Cause = "auth failed" // wrong or missing password, or an ACL refusal
	CauseTLS       Cause = "TLS error"   // handshake or certificate failure
	CauseWrongMode Cause = "wrong mode"  // e.g. a cluster URL for a standalone server
	CauseDNS       Cause = "DNS"         // the host name does not resolve
	CauseProtocol  Cause = "protocol"    // the peer does not speak Redis (or closed at once)
	CauseOther     Cause = "error"       // anything else, with the server's message
)

// Error is a failure to use Redis, classified. Error() is one line:
// "Redis at <redacted URL>: <cause>: <detail>".
type Error struct {
	Cause Cause
	// URL is the target's redacted URL.
	URL string
	// Detail says what happened, in one line.
	Detail string
	// Hint says what to do about it.
	Hint string
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("Redis at %s: %s", e.URL, e.Reason())
}

// Reason is Error without the URL, "<cause>: <detail>", for a message
// that names the URL already.
func (e *Error) Reason() string {
	return fmt.Sprintf("%s: %s", e.Cause, e.Detail)
}

func (e *Error) Unwrap() error { return e.Err }

// Classify turns an error from a client of t into an *Error (nil stays nil;
// an *Error is returned as it is).
func (t *Target) Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var done *Error
	if errors.As(err, &done) {
		return done
	}
	e := &Error{URL: t.URL, Err: err, Cause: CauseOther}
	addr := t.addrOf(err)
	var dnsErr *net.DNSError
	var recErr tls.RecordHeaderError
	var alert tls.AlertError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var redisErr redis.Error
	var hsErr *handshakeError
	msg := oneLine(err.Error())

	switch {
	case errors.As(err, &dnsErr):
		e.Cause = CauseDNS
		e.Detail = fmt.Sprintf("cannot resolve host %q (%s)", dnsErr.Name, dnsErr.Err)
		e.Hint = "check the host name in the URL (from inside a container, a service name only resolves on its network)"

	case errors.Is(err, syscall.ECONNREFUSED):
		e.Cause = CauseRefused
		e.Detail = fmt.Sprintf("nothing accepts connections at %s", addr)
		e.Hint = "is redis-server running there? Start it, or fix the host and port (--redis, REDIS_URL or redis.url)"

	case t.isUnix() && (errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT)):
		e.Cause = CauseRefused
		e.Detail = fmt.Sprintf("no socket at %s", addr)
		e.Hint = "is redis-server running with unixsocket set to that path?"

	case errors.As(err, &hsErr):
		e.Cause = CauseTLS
		switch {
		case hsErr.plain:
			e.Detail = fmt.Sprintf("%s is a plain-text Redis port: it does not speak TLS", hsErr.addr)
			e.Hint = "write redis:// instead of rediss://"
		case isTimeout(hsErr.err):
			e.Detail = fmt.Sprintf("no TLS handshake from %s in time", hsErr.addr)
			e.Hint = "is it a TLS port? A plain-text port needs redis://; a busy server or link: try a longer --timeout"
		default:
			e.Detail = fmt.Sprintf("TLS with %s failed: %s", hsErr.addr, tlsDetail(hsErr.err))
			e.Hint = "check the certificate (a self-signed one in development: add ?skip_verify=true), " +
				"or write redis:// if the server does not use TLS"
		}

	case errors.As(err, &recErr), errors.As(err, &alert), errors.As(err, &certErr),
		errors.As(err, &unknownAuth), errors.As(err, &hostErr), errors.As(err, &invalid),
		strings.HasPrefix(msg, "tls: "), strings.Contains(msg, " tls: "):
		e.Cause = CauseTLS
		e.Detail = fmt.Sprintf("TLS with %s failed: %s", addr, tlsDetail(err))
		e.Hint = "if the server does not use TLS, write redis:// instead of rediss://; " +
			"for a self-signed certificate in development add ?skip_verify=true"
		if errors.As(err, &recErr) {
			e.Detail = fmt.Sprintf("%s did not answer with TLS (it looks like a plain-text port)", addr)
			e.Hint = "this server does not use TLS: write redis:// instead of rediss://"
		}

	case errors.Is(err, redis.Nil) && t.Mode == Sentinel:
		e.Cause = CauseWrongMode
		e.Detail = fmt.Sprintf("the Sentinels at %s know no master named %q", strings.Join(t.Addrs, ","), t.MasterName)
		e.Hint = "use the name of the Sentinels' `sentinel monitor` line in ?master_name= (SENTINEL MASTERS lists them)"

	case isTimeout(err):
		e.Cause = CauseTimeout
		e.Detail = fmt.Sprintf("no answer from %s in time", addr)
		e.Hint = "something accepts connections there but does not answer: is it Redis, and not a TLS port (rediss://)? " +
			"A firewall, or a busy server: try a longer --timeout"

	case errors.As(err, &redisErr):
		e.Detail = strings.TrimSpace(msg)
		switch {
		case redis.IsAuthError(err), hasAny(msg, "WRONGPASS", "NOAUTH", "invalid password",
			"invalid username-password", "AUTH <password> called without any password", "ERR AUTH"):
			e.Cause = CauseAuth
			e.Hint = "check the user and password in the URL: redis://[user]:PASSWORD@host:6379 " +
				"(percent-encode special characters); a server without a password needs none in the URL"
			if strings.Contains(msg, "without any password configured") {
				e.Hint = "this server has no password: remove it from the URL"
			}
		case redis.IsPermissionError(err):
			e.Cause = CauseAuth
			e.Hint = "the user may not run this command: its ACL needs +ping +info +publish +subscribe +psubscribe +pubsub"
		case strings.HasPrefix(msg, "DENIED"):
			e.Cause = CauseAuth
			e.Hint = "the server refuses clients from this address until it has a password (protected mode)"
		case strings.Contains(msg, "cluster support disabled"):
			e.Cause = CauseWrongMode
			e.Detail = fmt.Sprintf("this is a cluster URL but %s is not a cluster node (%s)", addr, msg)
			e.Hint = "use redis://host:port for a standalone server"
		case strings.Contains(strings.ToLower(msg), "unknown command") && strings.Contains(strings.ToLower(msg), "sentinel"):
			e.Cause = CauseWrongMode
			e.Detail = fmt.Sprintf("this is a Sentinel URL but %s is not a Sentinel (%s)", addr, msg)
			e.Hint = "use redis://host:port for a standalone server; a Sentinel usually listens on port 26379"
		case strings.HasPrefix(msg, "MOVED"), strings.HasPrefix(msg, "ASK"), strings.HasPrefix(msg, "CLUSTERDOWN"):
			e.Cause = CauseWrongMode
			e.Detail = fmt.Sprintf("%s is a Redis Cluster node (%s)", addr, msg)
			e.Hint = "use redis+cluster://host:port"
		default:
			e.Hint = "the server refused the command; see its message"
		}

	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE):
		e.Cause = CauseProtocol
		e.Detail = fmt.Sprintf("%s closed the connection without a Redis answer", addr)
		e.Hint = "is it a Redis server? A TLS-only port needs rediss://; a full server (maxclients) also closes at once"

	case hasAny(msg, "can't parse", "invalid reply", "proto", "unexpected", "RESP"):
		e.Cause = CauseProtocol
		e.Detail = fmt.Sprintf("%s does not speak the Redis protocol (%s)", addr, msg)
		e.Hint = "check the port: it is not a Redis server"

	default:
		e.Detail = msg
		e.Hint = "check the URL and that the server is healthy (redis-cli -u URL ping)"
	}
	return e
}

func (t *Target) isUnix() bool { return t.single != nil && t.single.Network == "unix" }

// addrOf finds the address an error is about, else the target's addresses.
func (t *Target) addrOf(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	return strings.Join(t.Addrs, ",")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrPoolTimeout) ||
		errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func tlsDetail(err error) string {
	msg := oneLine(err.Error())
	if i := strings.Index(msg, "tls: "); i >= 0 {
		return msg[i:]
	}
	if i := strings.Index(msg, "x509: "); i >= 0 {
		return msg[i:]
	}
	return msg
}

func hasAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// oneLine joins a multi-line message (errors.Join) into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
