package redisctl

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// As main does: keep go-redis's retry chatter out of the test output.
	QuietLibraryLogs(nil)
	os.Exit(m.Run())
}
