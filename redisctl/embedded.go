package redisctl

import (
	"bufio"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
)

// EmbeddedURLFile is the file in the state home that holds the URL of the
// running embedded Redis; other processes (ping, emit, workers) read it.
const EmbeddedURLFile = "redis.url"

// embeddedProbe bounds how long FindEmbedded waits for the server to answer.
const embeddedProbe = time.Second

// Embedded is an in-process Redis-protocol server (miniredis) for
// development on one machine: it listens on 127.0.0.1 on the port of its
// state home (see StartEmbedded), has no password and keeps no data on
// disk.
//
// It supports what the Socket.IO adapter and emitter use (PUBLISH,
// SUBSCRIBE, PSUBSCRIBE, PUBSUB NUMSUB, PING, INFO with a server section of
// its own: EmbeddedVersion, standalone)
// but not sharded pub/sub (SPUBLISH, SSUBSCRIBE), so redis.sharded must stay
// off with it. Production refuses it: hosts must share one real Redis.
type Embedded struct {
	srv  *miniredis.Miniredis
	url  string
	file string

	once sync.Once
	err  error
}

// StartEmbedded starts an embedded Redis and publishes its URL in
// <home>/redis.url (written atomically, mode 0600). It fails when a live
// embedded Redis already serves that home.
//
// A home keeps its port across restarts, so that a local emitter (a Node
// backend in development) can be pointed at it once. The first free of:
// where the last one of the home listened (the stale redis.url of a daemon
// that died: workers that outlived it, waiting to be adopted, find their
// Redis again), the port the home used last (<home>/redis.port), the port
// derived from the home's path (homePort), then an ephemeral one, which
// the home keeps from then on.
func StartEmbedded(home string) (*Embedded, error) {
	for _, addr := range []string{staleAddr(home), rememberedAddr(home), homeAddr(home)} {
		if addr == "" {
			continue
		}
		if e, err := StartEmbeddedAt(home, addr); err == nil {
			return e, nil
		}
	}
	return StartEmbeddedAt(home, "127.0.0.1:0")
}

// EmbeddedPortFile is the file in the state home that remembers the port
// its embedded Redis used last. Unlike redis.url it stays when the server
// stops.
const EmbeddedPortFile = "redis.port"

// rememberedAddr is the loopback address of the port in home's redis.port,
// if any.
func rememberedAddr(home string) string {
	b, err := os.ReadFile(filepath.Join(home, EmbeddedPortFile))
	if err != nil {
		return ""
	}
	port, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || port < 1 || port > 65535 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// Home ports are derived in [homePortBase, homePortBase+homePortSpan):
// below Linux's ephemeral range (32768-60999), so that no outgoing
// connection holds one by chance, and away from Redis's 6379.
const (
	homePortBase = 20000
	homePortSpan = 10000
)

// homePort is the port derived from home's absolute path: the same home
// gets the same port on every machine start, two homes most likely differ.
func homePort(home string) int {
	abs, err := filepath.Abs(home)
	if err != nil {
		abs = home
	}
	h := fnv.New32a()
	h.Write([]byte(abs))
	return homePortBase + int(h.Sum32()%homePortSpan)
}

func homeAddr(home string) string {
	if home == "" {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(homePort(home)))
}

// staleAddr is the loopback address in home's redis.url, if any.
func staleAddr(home string) string {
	b, err := os.ReadFile(filepath.Join(home, EmbeddedURLFile))
	if err != nil {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(string(b)))
	if err != nil || u.Scheme != "redis" || u.Hostname() != "127.0.0.1" || u.Port() == "" {
		return ""
	}
	return u.Host
}

// StartEmbeddedAt is StartEmbedded on addr (127.0.0.1:port; port 0 for
// an ephemeral one): an update starts the embedded Redis of the old daemon
// again at its address.
func StartEmbeddedAt(home, addr string) (*Embedded, error) {
	if host, _, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" {
		return nil, fmt.Errorf("embedded redis: %q is not a loopback address (127.0.0.1:port)", addr)
	}
	if home == "" {
		return nil, errors.New("embedded redis: no state home")
	}
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, fmt.Errorf("embedded redis: create the state home: %w", err)
	}
	if u, ok := FindEmbedded(home); ok {
		return nil, fmt.Errorf("embedded redis: one already runs for %s at %s", home, u)
	}
	home, err := filepath.Abs(home)
	if err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	srv := miniredis.NewMiniRedis()
	if err := srv.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("embedded redis: listen on %s: %w", addr, err)
	}
	// FindEmbedded asks this to tell our server from whatever took the
	// port of a dead one. A command, unlike a key, survives FLUSHALL.
	if err := srv.Server().Register(homeCommand, func(c *server.Peer, _ string, _ []string) { c.WriteBulk(home) }); err != nil {
		srv.Close()
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	srv.Server().SetPreHook(embeddedInfo(srv))
	e := &Embedded{srv: srv, url: "redis://" + srv.Addr(), file: filepath.Join(home, EmbeddedURLFile)}
	if err := writeFileAtomic(e.file, []byte(e.url+"\n"), 0o600); err != nil {
		srv.Close()
		return nil, fmt.Errorf("embedded redis: publish its URL: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(home, EmbeddedPortFile), []byte(srv.Port()+"\n"), 0o600); err != nil {
		e.Close()
		return nil, fmt.Errorf("embedded redis: remember its port: %w", err)
	}
	return e, nil
}

// EmbeddedVersion is the redis_version the embedded Redis reports in INFO:
// not a Redis release (it lacks sharded pub/sub, persistence, ...), so
// that nothing mistakes it for one.
const EmbeddedVersion = "0.0.0-embedded"

// embeddedInfo answers INFO, INFO server and INFO all/default/everything
// with a server section (miniredis has none: `ping --json` reported an
// empty version and mode) followed by the clients section; other sections
// go to miniredis.
func embeddedInfo(srv *miniredis.Miniredis) server.Hook {
	return func(c *server.Peer, cmd string, args ...string) bool {
		if !strings.EqualFold(cmd, "INFO") || len(args) > 1 {
			return false
		}
		section := ""
		if len(args) == 1 {
			section = strings.ToLower(args[0])
		}
		serverSection := "# Server\r\nredis_version:" + EmbeddedVersion + "\r\nredis_mode:standalone\r\nfrutos_embedded:1\r\n"
		switch section {
		case "server":
			c.WriteBulk(serverSection)
		case "", "all", "default", "everything":
			c.WriteBulk(serverSection + "\r\n# Clients\r\nconnected_clients:" + strconv.Itoa(srv.Server().ClientsLen()) + "\r\n")
		default:
			return false
		}
		return true
	}
}

// URL is the server's redis:// URL.
func (e *Embedded) URL() string { return e.url }

// Addr is the server's host:port.
func (e *Embedded) Addr() string { return e.srv.Addr() }

// Close removes <home>/redis.url (when it still names this server) and
// stops the server, closing its clients' connections. Safe to call twice.
func (e *Embedded) Close() error {
	e.once.Do(func() {
		if b, err := os.ReadFile(e.file); err == nil && strings.TrimSpace(string(b)) == e.url {
			if err := os.Remove(e.file); err != nil && !errors.Is(err, os.ErrNotExist) {
				e.err = fmt.Errorf("embedded redis: remove %s: %w", e.file, err)
			}
		}
		e.srv.Close()
	})
	return e.err
}

// FindEmbedded returns the URL of the embedded Redis serving home, if one
// answers. A file left by a process that died is stale: nothing answers at
// its address, or something else does (the server is asked which home it
// serves), and ok is false.
func FindEmbedded(home string) (string, bool) {
	if home == "" {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(home, EmbeddedURLFile))
	if err != nil {
		return "", false
	}
	raw := strings.TrimSpace(string(b))
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis" || u.Host == "" {
		return "", false
	}
	abs, err := filepath.Abs(home)
	if err != nil || servesHome(u.Host, embeddedProbe) != abs {
		return "", false
	}
	return raw, true
}

// homeCommand answers with the state home an embedded Redis serves.
const homeCommand = "FRUTOS.HOME"

// servesHome asks the server at addr which home it serves ("" when it does
// not answer, or is not an embedded Redis of frutos).
func servesHome(addr string, timeout time.Duration) string {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(c, "*1\r\n$%d\r\n%s\r\n", len(homeCommand), homeCommand); err != nil {
		return ""
	}
	r := bufio.NewReader(c)
	head, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		return ""
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	if err != nil || n < 0 || n > 4096 {
		return ""
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return ""
	}
	return string(body[:n])
}

// writeFileAtomic writes data to a temporary file in name's folder and
// renames it over name, so readers see the old content or the new one.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
