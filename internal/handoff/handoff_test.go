package handoff

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A connection accepted by one side, with the request already read from
// it, is served by an http.Server on the other side as if it had accepted
// it itself; the sender's copy closing does not end it.
func TestHandOffAServedConnection(t *testing.T) {
	l, err := Listen(filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "served "+r.URL.Path+" for "+r.Header.Get("X-Who"))
	})}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer front.Close()
	s, err := Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	go func() {
		c, err := front.Accept()
		if err != nil {
			return
		}
		// read the head as a front door would, then hand everything over
		head := make([]byte, 0, 512)
		buf := make([]byte, 512)
		for !strings.Contains(string(head), "\r\n\r\n") {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			head = append(head, buf[:n]...)
		}
		if err := s.Send(c.(*net.TCPConn), head); err != nil {
			t.Errorf("send: %v", err)
		}
		c.Close()
	}()

	c, err := net.Dial("tcp", front.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 { // two requests: the second travels on the handed-over connection only
		if _, err := io.WriteString(c, "GET /x HTTP/1.1\r\nHost: a\r\nX-Who: "+[]string{"one", "two"}[i]+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "served /x for " + []string{"one", "two"}[i]; string(body) != want {
			t.Errorf("request %d: %q, want %q", i, body, want)
		}
	}
}

func TestSendRefusesOversizedHead(t *testing.T) {
	l, err := Listen(filepath.Join(t.TempDir(), "h.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := Dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	client, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := tl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := s.Send(c.(*net.TCPConn), make([]byte, MaxHead+1)); err == nil {
		t.Error("an oversized head was sent")
	}
}
