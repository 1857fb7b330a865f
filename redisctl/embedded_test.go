package redisctl

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/frutos/frutos/cluster/redisadapter"
	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/testutil/redistest"
	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"
)

func startEmbeddedT(t *testing.T, home string) *Embedded {
	t.Helper()
	e, err := StartEmbedded(home)
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEmbeddedLifecycle(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home") // created by StartEmbedded
	if u, ok := FindEmbedded(home); ok {
		t.Fatalf("FindEmbedded in an empty home = %q", u)
	}
	e := startEmbeddedT(t, home)
	if !strings.HasPrefix(e.URL(), "redis://127.0.0.1:") {
		t.Errorf("URL = %q, want a loopback redis:// URL", e.URL())
	}
	file := filepath.Join(home, EmbeddedURLFile)
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want mode 0600", file, err, fi.Mode())
	}
	if u, ok := FindEmbedded(home); !ok || u != e.URL() {
		t.Fatalf("FindEmbedded = %q, %v; want %q", u, ok, e.URL())
	}
	var names []string
	entries, _ := os.ReadDir(home)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{EmbeddedPortFile, EmbeddedURLFile}; !slices.Equal(names, want) {
		t.Errorf("home holds %v, want only %v (no temporary files left)", names, want)
	}

	if _, err := StartEmbedded(home); err == nil || !strings.Contains(err.Error(), "already runs") {
		t.Errorf("a second StartEmbedded for the same home = %v, want a refusal", err)
	}

	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close (%v)", file, err)
	}
	if u, ok := FindEmbedded(home); ok {
		t.Errorf("FindEmbedded after Close = %q", u)
	}
	if answersPing(strings.TrimPrefix(e.URL(), "redis://"), time.Second) || servesHome(strings.TrimPrefix(e.URL(), "redis://"), time.Second) != "" {
		t.Errorf("the server still answers after Close")
	}
}

// A URL file left by a process that died names a port where nothing
// answers: it is stale, and a new embedded Redis replaces it.
func TestEmbeddedStaleFile(t *testing.T) {
	home := t.TempDir()
	file := filepath.Join(home, EmbeddedURLFile)
	other := startEmbeddedT(t, t.TempDir()) // a live embedded Redis, of another home
	plain := redistest.Start(t)             // a real Redis that took the port
	for _, content := range []string{
		fmt.Sprintf("redis://127.0.0.1:%d\n", closedPort(t)),
		"redis://" + silentServer(t) + "\n",
		other.URL() + "\n",
		plain.URL() + "\n",
		"garbage\n",
		"",
	} {
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if u, ok := FindEmbedded(home); ok {
			t.Errorf("FindEmbedded with %q = %q, want stale", content, u)
		}
	}
	e := startEmbeddedT(t, home)
	if u, ok := FindEmbedded(home); !ok || u != e.URL() {
		t.Errorf("FindEmbedded = %q, %v; want the new server %q", u, ok, e.URL())
	}
}

func TestEmbeddedPing(t *testing.T) {
	e := startEmbeddedT(t, t.TempDir())
	res, err := pingT(t, openT(t, e.URL()), 5*time.Second)
	if err != nil {
		t.Fatalf("Ping the embedded Redis: %v", err)
	}
	// Bug 11: `ping --json` on the embedded Redis gave "version": "" and
	// "server_mode": "" (miniredis's INFO has no server section).
	if res.Version != EmbeddedVersion || res.ServerMode != "standalone" {
		t.Errorf("embedded version %q, server mode %q; want %q, standalone", res.Version, res.ServerMode, EmbeddedVersion)
	}
}

// The embedded Redis must carry what the Socket.IO adapter uses: PUBLISH
// to a pattern subscription (broadcasts, PSUBSCRIBE socket.io#/#*), SUBSCRIBE
// (request and response channels) and PUBSUB NUMSUB (serverCount). It does
// not have sharded pub/sub.
func TestEmbeddedCarriesAdapterTraffic(t *testing.T) {
	e := startEmbeddedT(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := openT(t, e.URL()).Client

	// What a server's adapter subscribes to.
	ps := client.PSubscribe(ctx, "socket.io#/#*")
	defer ps.Close()
	if err := ps.Subscribe(ctx, "socket.io-request#/#"); err != nil {
		t.Fatal(err)
	}
	for confirmed := 0; confirmed < 2; {
		msg, err := ps.Receive(ctx)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			confirmed++
		}
	}
	// The adapter's health check pings on the subscribed connection.
	if err := ps.Ping(ctx); err != nil {
		t.Fatalf("PING on a subscribed connection: %v", err)
	}
	n, err := client.PubSubNumSub(ctx, "socket.io-request#/#").Result()
	if err != nil || n["socket.io-request#/#"] != 1 {
		t.Fatalf("PUBSUB NUMSUB = %v, %v; want 1 subscriber", n, err)
	}

	em := redisadapter.NewEmitter(client, "socket.io").To("user:42")
	receivers, err := em.Emit(ctx, "nueva_tarea", map[string]any{"id": 7, "título": "ñandú"})
	if err != nil || receivers != 1 {
		t.Fatalf("Emit = %d, %v; want 1 receiver", receivers, err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Channel != "socket.io#/#user:42#" || msg.Pattern != "socket.io#/#*" {
		t.Errorf("got channel %q pattern %q", msg.Channel, msg.Pattern)
	}
	var decoded []any
	if err := msgpack.Unmarshal([]byte(msg.Payload), &decoded); err != nil {
		t.Fatalf("decode: %v", err)
	}
	got, _ := json.Marshal(decoded[1:])
	want := `[{"data":["nueva_tarea",{"id":7,"título":"ñandú"}],"nsp":"/","type":2},{"except":[],"flags":{},"rooms":["user:42"]}]`
	if string(got) != want {
		t.Errorf("message = %s\nwant      %s", got, want)
	}

	if err := redisadapter.NewEmitter(client, "").ServerSideEmit(ctx, "hello", 1); err != nil {
		t.Fatalf("ServerSideEmit: %v", err)
	}
	req, err := ps.ReceiveMessage(ctx)
	if err != nil || req.Channel != "socket.io-request#/#" {
		t.Fatalf("request channel message = %v, %v", req, err)
	}

	// What the embedded Redis lacks: sharded pub/sub (redis.sharded).
	if err := client.SPublish(ctx, "socket.io#/#", "x").Err(); err == nil || !strings.Contains(strings.ToLower(err.Error()), "unknown command") {
		t.Errorf("SPUBLISH = %v; the embedded Redis was expected to lack it (update the Embedded doc)", err)
	}
}

func TestResolve(t *testing.T) {
	home := t.TempDir()
	dev := &configs.Config{Env: configs.Development, Home: home}
	if _, _, err := Resolve(dev); err == nil || !strings.Contains(err.Error(), "no embedded Redis is running") {
		t.Errorf("Resolve with nothing running = %v", err)
	}
	e := startEmbeddedT(t, home)
	if u, emb, err := Resolve(dev); err != nil || !emb || u != e.URL() {
		t.Errorf("Resolve = %q, %v, %v; want the embedded %q", u, emb, err, e.URL())
	}
	withURL := &configs.Config{Env: configs.Development, Home: home, Redis: configs.Redis{URL: "redis://h:1"}}
	if u, emb, err := Resolve(withURL); err != nil || emb || u != "redis://h:1" {
		t.Errorf("Resolve with a URL = %q, %v, %v", u, emb, err)
	}
	prod := &configs.Config{Env: configs.Production, Home: home}
	if _, _, err := Resolve(prod); err != ErrNoURL {
		t.Errorf("Resolve in production without a URL = %v, want ErrNoURL (never the embedded one)", err)
	}
}

// The embedded Redis of a daemon that died comes back at its address, so
// that the workers that outlived the daemon (waiting to be adopted) find
// it again with the URL they were given.
func TestEmbeddedComesBackAtItsAddress(t *testing.T) {
	home := t.TempDir()
	first := startEmbeddedT(t, home)
	url := first.URL()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// the file a killed daemon leaves behind
	if err := os.WriteFile(filepath.Join(home, EmbeddedURLFile), []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	again := startEmbeddedT(t, home)
	if again.URL() != url {
		t.Errorf("the embedded Redis came back at %s, not at %s", again.URL(), url)
	}
	if _, err := StartEmbeddedAt(t.TempDir(), "10.1.2.3:6379"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a non-loopback address: %v", err)
	}
}

// Friction (issue 17): the embedded Redis took a new random port at every
// start, so a local Node emitter could not be pointed at it. A home keeps
// its port: the one derived from its path when free, else the one it used
// last.
func TestEmbeddedKeepsItsPortAcrossRestarts(t *testing.T) {
	home := t.TempDir()
	first := startEmbeddedT(t, home)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	again := startEmbeddedT(t, home)
	if again.URL() != first.URL() {
		t.Errorf("after a clean stop the embedded Redis came back at %s, not at %s", again.URL(), first.URL())
	}
	if want := fmt.Sprintf("redis://127.0.0.1:%d", homePort(home)); again.URL() != want {
		t.Errorf("URL = %s, want the home's port: %s", again.URL(), want)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	// The home's port is taken: another free one, kept from then on
	// while the home's port stays taken.
	taken, err := net.Listen("tcp", homeAddr(home))
	if err != nil {
		t.Skipf("the home's port is in use already: %v", err)
	}
	defer taken.Close()
	moved := startEmbeddedT(t, home)
	if moved.URL() == first.URL() {
		t.Fatalf("started on a taken port %s", moved.URL())
	}
	if err := moved.Close(); err != nil {
		t.Fatal(err)
	}
	kept := startEmbeddedT(t, home)
	if kept.URL() != moved.URL() {
		t.Errorf("the fallback port was not kept: %s, then %s", moved.URL(), kept.URL())
	}
}
