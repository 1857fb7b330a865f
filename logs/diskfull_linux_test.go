package logs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// tinyFSEnv tells the re-executed test binary it runs inside the namespaces
// and where to mount its filesystem.
const tinyFSEnv = "FRUTOS_LOGS_TINYFS_DIR"

// TestWriterOnAFullFilesystem writes a log on a real 64 KiB filesystem until
// it is full, then frees space. Mounting one needs no root: the test binary
// runs itself again in new user and mount namespaces, where it may mount a
// tmpfs that nobody else sees. Where user namespaces are off, it skips (the
// injected-failure test covers the same logic).
func TestWriterOnAFullFilesystem(t *testing.T) {
	if dir := os.Getenv(tinyFSEnv); dir != "" {
		writeUntilFullThenFree(t, dir)
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestWriterOnAFullFilesystem$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), tinyFSEnv+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		t.Skipf("cannot make a user namespace here: %v", err)
	case strings.Contains(string(out), "--- SKIP"):
		t.Skipf("inside the namespace: %s", out)
	case err != nil:
		t.Fatalf("%v:\n%s", err, out)
	}
	t.Logf("inside the namespace:\n%s", out)
}

func writeUntilFullThenFree(t *testing.T, dir string) {
	// Keep the mount to this namespace, whatever the host's propagation.
	_ = syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, "")
	mnt := filepath.Join(dir, "tiny")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs in a user namespace: %v", err)
	}
	defer syscall.Unmount(mnt, 0)

	// Something else takes most of the space.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 40<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []Event
	w, err := Open(filepath.Join(mnt, "app-out-0.log"), Options{
		MaxSize: 1 << 20, Timestamps: true,
		Report: func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	line := strings.Repeat("x", 90)
	i := 0
	for ; i < 10_000 && !w.Stats().Failing; i++ {
		write(t, w, fmt.Sprintf("%05d %s\n", i, line))
	}
	for range 100 { // while full: dropped, never failed, never blocked
		write(t, w, fmt.Sprintf("%05d %s\n", i, line))
		i++
	}
	s := w.Stats()
	if !s.Failing || s.Dropped != 101 {
		t.Fatalf("the disk never filled up, or lines were not counted: %+v", s)
	}
	mu.Lock()
	if len(events) != 1 || !errors.Is(events[0].Err, syscall.ENOSPC) {
		t.Fatalf("events %v, want one ENOSPC", events)
	}
	mu.Unlock()
	t.Logf("full after %d lines (%d bytes); %+v", s.Lines, s.Bytes, s)

	// Space comes back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for k := range 10 {
		write(t, w, fmt.Sprintf("after %d\n", k))
	}
	mu.Lock()
	if len(events) != 2 || events[1].Err != nil || events[1].Dropped != 101 {
		t.Fatalf("events %v, want a recovery after 101 dropped lines", events)
	}
	mu.Unlock()

	// The file holds whole lines only: those before the disk filled, then
	// the ten after.
	lines := readLines(t, w.Path())
	if uint64(len(lines)) != s.Lines+10 {
		t.Fatalf("%d lines in the file, want %d", len(lines), s.Lines+10)
	}
	for k, raw := range lines {
		l := Reader{}.Parse([]byte(raw))
		want := fmt.Sprintf("%05d %s", k, line)
		if k >= int(s.Lines) {
			want = fmt.Sprintf("after %d", k-int(s.Lines))
		}
		if l.Text != want || l.Time.IsZero() {
			t.Fatalf("line %d is %.40q, want %.40q", k, raw, want)
		}
	}
}
