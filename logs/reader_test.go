package logs

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		raw, text string
		at        time.Time
	}{
		{"2026-11-27T10:00:00.000Z frutos worker ready", "frutos worker ready", utc("2026-11-27T10:00:00Z")},
		{"2026-11-27T10:00:00.123+01:00 x", "x", utc("2026-11-27T09:00:00.123Z")},
		{"2026-11-27T10:00:00.000Z ", "", utc("2026-11-27T10:00:00Z")},
		{"no timestamp here", "no timestamp here", time.Time{}},
		{"2026-11-27 not a timestamp", "2026-11-27 not a timestamp", time.Time{}},
		{"2026-11-27T10:00:00.000Z", "2026-11-27T10:00:00.000Z", time.Time{}}, // no space: not a prefix
		{"", "", time.Time{}},
	}
	for _, tt := range tests {
		l := Reader{}.Parse([]byte(tt.raw))
		if l.Text != tt.text || !l.Time.Equal(tt.at) {
			t.Errorf("Parse(%q) = %q at %v, want %q at %v", tt.raw, l.Text, l.Time, tt.text, tt.at)
		}
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name, content string
		n             int
		want          []string
		end           int64
	}{
		{"empty", "", 5, nil, 0},
		{"fewer lines than asked", "a\nb\n", 5, []string{"a", "b"}, 4},
		{"the last n", "a\nb\nc\nd\n", 2, []string{"c", "d"}, 8},
		{"exactly n", "a\nb\n", 2, []string{"a", "b"}, 4},
		{"none asked", "a\nb\n", 0, nil, 4},
		{"a partial last line is left to Follow", "a\nb\npart", 5, []string{"a", "b"}, 4},
		{"only a partial line", "part", 5, nil, 0},
		{"empty lines count", "a\n\n\n", 2, []string{"", ""}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app-out-0.log")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			lines, off, err := Reader{}.Tail(path, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, l.Text)
			}
			if !slices.Equal(got, tt.want) || off.Pos != tt.end {
				t.Fatalf("Tail = %q at %d, want %q at %d", got, off.Pos, tt.want, tt.end)
			}
		})
	}
}

func TestTailMissingFile(t *testing.T) {
	_, err := Tail(filepath.Join(t.TempDir(), "nope.log"), 3)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error", err)
	}
}

func TestTailLargeFile(t *testing.T) {
	// Lines of varied lengths, so block boundaries (64 KiB) fall everywhere,
	// some lines longer than a block.
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	var all []string
	for i := range 20_000 {
		line := fmt.Sprintf("line %d %s", i, strings.Repeat("x", (i*7919)%300))
		if i%4_000 == 5 {
			line += strings.Repeat("y", 150_000)
		}
		all = append(all, line)
		bw.WriteString(line + "\n")
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, n := range []int{1, 2, 15, 100, 1000, 15_999, 20_000, 30_000} {
		lines, err := Tail(path, n)
		if err != nil {
			t.Fatal(err)
		}
		want := all[max(len(all)-n, 0):]
		if len(lines) != len(want) {
			t.Fatalf("Tail(%d): %d lines", n, len(lines))
		}
		for i := range want {
			if lines[i].Text != want[i] {
				t.Fatalf("Tail(%d): line %d is %.40q, want %.40q", n, i, lines[i].Text, want[i])
			}
		}
	}
}

func TestTailReadsOnlyTheEndOfAHugeFile(t *testing.T) {
	// A 64 GiB file, sparse: Tail must finish at once, reading only the
	// last blocks (reading it all would take minutes, not milliseconds).
	path := filepath.Join(t.TempDir(), "app-out-0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	const hole = 64 << 30
	if err := f.Truncate(hole); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	if _, err := f.WriteAt([]byte("\nline 1\nline 2\nline 3\n"), hole); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
	f.Close()
	start := time.Now()
	lines, off, err := Reader{}.Tail(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 || lines[0].Text != "line 1" || lines[2].Text != "line 3" {
		t.Fatalf("got %+v", lines)
	}
	if off.Pos != hole+22 {
		t.Fatalf("offset %d", off.Pos)
	}
	t.Logf("tail of a %d GiB file took %v", hole>>30, time.Since(start))
}
