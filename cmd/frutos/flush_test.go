package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/frutos/frutos/internal/testutil/syncbuf"
	"github.com/frutos/frutos/logs"
)

func TestFlushEmptiesEveryWorkersFiles(t *testing.T) {
	h := newLogsHome(t)
	out0 := h.write(t, 0, logs.Out, "a\n")
	err0 := h.write(t, 0, logs.Err, "b\n")
	out1 := h.write(t, 1, logs.Out, "c\n")
	if err := os.WriteFile(out0+".1", []byte("rotated\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := h.run("flush")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, p := range []string{out0, err0, out1} {
		if fi, err := os.Stat(p); err != nil || fi.Size() != 0 {
			t.Errorf("%s not emptied: %v", p, err)
		}
		if !strings.Contains(errOut, "emptied "+p+"\n") {
			t.Errorf("flush did not say it emptied %s:\n%s", p, errOut)
		}
	}
	if _, err := os.Stat(out0 + ".1"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the rotated file is still there: %v", err)
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
}

func TestFlushOneWorker(t *testing.T) {
	h := newLogsHome(t)
	out0 := h.write(t, 0, logs.Out, "a\n")
	out1 := h.write(t, 1, logs.Out, "c\n")
	code, _, errOut := h.run("flush", "1")
	if code != 0 || errOut != "emptied "+out1+"\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if b, _ := os.ReadFile(out0); string(b) != "a\n" {
		t.Fatalf("worker 0's log was touched: %q", b)
	}
}

func TestFlushUnknownWorkerAndNothingToFlush(t *testing.T) {
	h := newLogsHome(t)
	if code, _, errOut := h.run("flush"); code != 0 || !strings.Contains(errOut, "no log files to empty") {
		t.Fatalf("with no files: exit %d, stderr %q", code, errOut)
	}
	h.write(t, 2, logs.Out, "a\n")
	code, _, errOut := h.run("flush", "5")
	if code != exitUsage || !strings.Contains(errOut, "no logs for worker 5") || !strings.Contains(errOut, "workers with logs: 2") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := h.run("flush", "two"); code != exitUsage {
		t.Fatalf("a bad id: exit %d", code)
	}
}

func TestFlushGoesThroughTheSeam(t *testing.T) {
	// The daemon will own the writers: the command only asks.
	var asked []*int
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: &syncbuf.Buffer{}, ErrOut: &syncbuf.Buffer{}}, newLogsHome(t).getenv)
	for _, args := range [][]string{{}, {"all"}, {"3"}} {
		cmd := newCmdFlush(f, func(o *flushOptions) error {
			o.Flush = func(_ context.Context, id *int) ([]string, error) {
				asked = append(asked, id)
				return []string{"/x/frutos-out-3.log"}, nil
			}
			return runFlush(o)
		})
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
	}
	if len(asked) != 3 || asked[0] != nil || asked[1] != nil || asked[2] == nil || *asked[2] != 3 {
		t.Fatalf("asked %v", asked)
	}
}

func TestFlushWhileTheDaemonWrites(t *testing.T) {
	// Flushing from the CLI while a writer has the file open: the writer
	// goes on at the start of the emptied file.
	h := newLogsHome(t)
	w, err := logs.Open(logs.Path(h.dir, "frutos", 0, logs.Out), logs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("before\n"))
	if code, _, errOut := h.run("flush"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	w.Write([]byte("after\n"))
	b, err := os.ReadFile(w.Path())
	if err != nil || string(b) != "after\n" {
		t.Fatalf("file %q, %v", b, err)
	}
}
