package redisctl

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// plainProbe bounds the plain-text PING tried when a TLS handshake fails
// or is slow; plainProbeAfter is how slow.
const (
	plainProbe      = 500 * time.Millisecond
	plainProbeAfter = 200 * time.Millisecond
)

// handshakeError is a TLS handshake that failed after the TCP connection
// was made, so Classify can tell it from a refused or silent port.
type handshakeError struct {
	addr string
	// plain is set when the port answered a plain-text PING: it is a
	// Redis port without TLS.
	plain bool
	err   error
}

func (e *handshakeError) Error() string {
	return fmt.Sprintf("TLS handshake with %s: %v", e.addr, e.err)
}

func (e *handshakeError) Unwrap() error { return e.err }

// tlsDialer replaces go-redis's TLS dialer: it honours ctx during the
// handshake (go-redis's does not) and, when the handshake fails, checks
// whether the port speaks plain-text Redis, the usual mistake (a Redis
// server reads a TLS hello as an unfinished command and never answers).
func tlsDialer(cfg *tls.Config, dialTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if dialTimeout <= 0 {
		dialTimeout = 5 * time.Second
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Timeout: dialTimeout, KeepAlive: 5 * time.Minute}
		raw, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				c.ServerName = host
			}
		}
		hctx, cancel := context.WithTimeout(ctx, dialTimeout)
		defer cancel()
		conn := tls.Client(raw, c)
		done := make(chan error, 1)
		go func() { done <- conn.HandshakeContext(hctx) }()

		probe := time.NewTimer(plainProbeAfter)
		defer probe.Stop()
		select {
		case err = <-done:
		case <-probe.C:
			// A plain-text Redis port never answers a TLS hello: it waits
			// for the end of a command. Ask it in plain text instead of
			// waiting out the whole timeout.
			if speaksPlainRedis(network, addr) {
				cancel()
				<-done
				raw.Close()
				return nil, &handshakeError{addr: addr, plain: true, err: errors.New("no TLS handshake")}
			}
			err = <-done
		}
		if err != nil {
			raw.Close()
			return nil, &handshakeError{addr: addr, plain: speaksPlainRedis(network, addr), err: err}
		}
		return conn, nil
	}
}

// speaksPlainRedis reports whether addr answers a plain-text PING like a
// Redis server (PONG, or an error such as NOAUTH).
func speaksPlainRedis(network, addr string) bool {
	c, err := net.DialTimeout(network, addr, plainProbe)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(plainProbe))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	reply := string(buf[:n])
	return strings.HasPrefix(reply, "+PONG") || strings.HasPrefix(reply, "-NOAUTH") ||
		strings.HasPrefix(reply, "-ERR") || strings.HasPrefix(reply, "-DENIED")
}
