package redisadapter_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/frutos/frutos/cluster/redisadapter"
)

// EnvWriteFuzzSeeds set to 1 makes the interop tests save the messages that
// Node servers and emitters sent to the Go server as fuzz seeds in
// testdata/fuzz/<target>/node-<hash> (a few per kind of message and event).
const EnvWriteFuzzSeeds = "FRUTOS_WRITE_FUZZ_SEEDS"

// captureSeeds records what g receives from others, for the fuzz targets
// that decode it, when EnvWriteFuzzSeeds is 1.
func captureSeeds(t *testing.T, g *goServer) {
	if os.Getenv(EnvWriteFuzzSeeds) != "1" {
		return
	}
	var mu sync.Mutex
	seen := map[string]int{}
	files := map[string][]byte{}
	redisadapter.SetTap(g.Adapter, func(m redisadapter.TapMessage) {
		var targets []string
		switch {
		case m.Sharded:
			targets = []string{"FuzzDecodeClusterMessage"}
		case strings.Contains(m.Channel, "-request#"), strings.Contains(m.Channel, "-response#"):
			targets = []string{"FuzzDecodeRequest"}
		default:
			targets = []string{"FuzzDecodeBroadcast"}
		}
		if len(m.Payload) > 0 && m.Payload[0] != '{' {
			targets = append(targets, "FuzzDecodeMsgpack")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, target := range targets {
			key := fmt.Sprint(target, m.Kind, m.Event)
			if seen[key] >= 3 {
				continue
			}
			seen[key]++
			sum := sha256.Sum256(m.Payload)
			files[filepath.Join("testdata", "fuzz", target, fmt.Sprintf("node-%x", sum[:8]))] = m.Payload
		}
	})
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for path, payload := range files {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Error(err)
				return
			}
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", payload)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Error(err)
			}
		}
		t.Logf("wrote %d fuzz seeds", len(files))
	})
}
