package logs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatcherWakesOnlyTheFollowersOfTheFileThatChanged(t *testing.T) {
	w, err := NewWatcher()
	if err != nil {
		t.Skip(err)
	}
	defer w.Close()
	dir := t.TempDir()
	sub := func(name string) <-chan struct{} {
		ch, stop, err := w.subscribe(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		return ch
	}
	woken := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("no wake for %s", what)
		}
	}
	one, ten, sentinel := sub("app-out-1.log"), sub("app-out-10.log"), sub("sentinel.log")

	// Worker 1's file is written and rotated (renamed to .1).
	if err := os.WriteFile(filepath.Join(dir, "app-out-1.log"), []byte("y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "app-out-1.log"), filepath.Join(dir, "app-out-1.log.1")); err != nil {
		t.Fatal(err)
	}
	woken(one, "the rotated file")
	// Events come in order: once the sentinel is woken, worker 1's events
	// have all been handed out, and worker 10's follower got none of them.
	if err := os.WriteFile(filepath.Join(dir, "sentinel.log"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	woken(sentinel, "the sentinel")
	select {
	case <-ten:
		t.Fatal("worker 10's follower woken by worker 1's file")
	default:
	}
	if err := os.WriteFile(filepath.Join(dir, "app-out-10.log"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	woken(ten, "worker 10's file")

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.subscribe(filepath.Join(dir, "x.log")); err == nil {
		t.Fatal("subscribed to a closed watcher")
	}
}
