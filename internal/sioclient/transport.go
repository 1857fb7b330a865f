package sioclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// transport carries Engine.IO packets: one websocket frame each, or
// batches of long-polling requests.
type transport interface {
	// next returns the next packet: text (starting with its type digit)
	// or a binary attachment.
	next() (binary bool, data []byte, err error)
	// send writes one text packet. Callers serialise sends.
	send(packet string) error
	// setDeadline bounds next (the handshake); zero removes the bound.
	setDeadline(time.Time)
	// close ends the session; it is safe to call more than once.
	close() error
	name() string
}

// writeTimeout bounds one write (a websocket frame or a polling POST).
const writeTimeout = 10 * time.Second

// maxPollBody bounds one polling response.
const maxPollBody = 16 << 20

type wsTransport struct {
	conn *websocket.Conn
	once sync.Once
	err  error
}

func dialWebsocket(ctx context.Context, u *url.URL, opts Options) (transport, error) {
	v := *u
	switch v.Scheme {
	case "http", "ws":
		v.Scheme = "ws"
	default:
		v.Scheme = "wss"
	}
	v.RawQuery = "EIO=4&transport=websocket"
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 1024}
	if opts.NetDialer != nil {
		d.NetDialContext = opts.NetDialer.DialContext
	}
	conn, resp, err := d.DialContext(ctx, v.String(), opts.Header)
	if err != nil {
		if resp != nil {
			herr := httpError(Websocket, resp)
			resp.Body.Close()
			return nil, herr
		}
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return &wsTransport{conn: conn}, nil
}

func (w *wsTransport) next() (bool, []byte, error) {
	kind, msg, err := w.conn.ReadMessage()
	return kind == websocket.BinaryMessage, msg, err
}

func (w *wsTransport) send(packet string) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return w.conn.WriteMessage(websocket.TextMessage, []byte(packet))
}

func (w *wsTransport) setDeadline(t time.Time) { _ = w.conn.SetReadDeadline(t) }

func (w *wsTransport) close() error {
	w.once.Do(func() { w.err = w.conn.Close() })
	return w.err
}

func (w *wsTransport) name() string { return Websocket }

// pollingTransport is an Engine.IO long-polling session: GETs bring the
// server's packets, POSTs carry ours. It has its own HTTP transport, so
// its connections (and their local address) are its own, as a browser
// tab's would be; without Options.KeepAlive each request opens one.
type pollingTransport struct {
	base   string // the session URL, sid included once known
	header http.Header
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	queue [][]byte // packets of the last GET not yet returned by next

	mu       sync.Mutex
	deadline time.Time
	once     sync.Once
}

func dialPolling(ctx context.Context, u *url.URL, opts Options) (transport, error) {
	v := *u
	switch v.Scheme {
	case "ws":
		v.Scheme = "http"
	case "wss":
		v.Scheme = "https"
	}
	v.RawQuery = "EIO=4&transport=polling"
	dialer := opts.NetDialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 10 * time.Second}
	}
	ht := &http.Transport{
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     2 * time.Minute,
		DisableCompression:  true,
		DisableKeepAlives:   !opts.KeepAlive,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	tctx, cancel := context.WithCancel(context.Background())
	p := &pollingTransport{base: v.String(), header: opts.Header, client: &http.Client{Transport: ht},
		ctx: tctx, cancel: cancel}
	// The open packet comes in the answer to the first GET: read it here so
	// the session id is known before the first POST.
	if dl, ok := ctx.Deadline(); ok {
		p.setDeadline(dl)
		defer p.setDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	_, open, err := p.next()
	if err != nil {
		_ = p.close()
		return nil, err
	}
	if len(open) == 0 || open[0] != '0' {
		_ = p.close()
		return nil, fmt.Errorf("expected an open packet, got %q", truncate(open))
	}
	var o struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal(open[1:], &o); err != nil || o.SID == "" {
		_ = p.close()
		return nil, fmt.Errorf("decode open packet %q: %v", truncate(open), err)
	}
	p.base += "&sid=" + url.QueryEscape(o.SID)
	// Give the packet back: the client's handshake reads it too.
	p.queue = append([][]byte{open}, p.queue...)
	return p, nil
}

func (p *pollingTransport) requestContext() (context.Context, context.CancelFunc) {
	p.mu.Lock()
	dl := p.deadline
	p.mu.Unlock()
	if dl.IsZero() {
		return p.ctx, func() {}
	}
	return context.WithDeadline(p.ctx, dl)
}

func (p *pollingTransport) next() (bool, []byte, error) {
	for len(p.queue) == 0 {
		if err := p.poll(); err != nil {
			return false, nil, err
		}
	}
	pkt := p.queue[0]
	p.queue = p.queue[1:]
	if len(pkt) > 0 && pkt[0] == 'b' {
		b, err := base64.StdEncoding.DecodeString(string(pkt[1:]))
		if err != nil {
			return false, nil, fmt.Errorf("decode binary packet: %w", err)
		}
		return true, b, nil
	}
	return false, pkt, nil
}

// poll makes one GET and queues the packets of its answer.
func (p *pollingTransport) poll() error {
	ctx, cancel := p.requestContext()
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"&t="+nonce(), nil)
	if err != nil {
		return err
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("polling GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(Polling, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPollBody))
	if err != nil {
		return fmt.Errorf("polling GET: %w", err)
	}
	for pkt := range strings.SplitSeq(string(body), "\x1e") {
		if pkt != "" {
			p.queue = append(p.queue, []byte(pkt))
		}
	}
	return nil
}

func (p *pollingTransport) send(packet string) error {
	ctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
	defer cancel()
	return p.post(ctx, packet)
}

func (p *pollingTransport) post(ctx context.Context, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"&t="+nonce(), strings.NewReader(body))
	if err != nil {
		return err
	}
	for k, vs := range p.header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("polling POST: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return httpError(Polling, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1024))
	return nil
}

func (p *pollingTransport) setDeadline(t time.Time) {
	p.mu.Lock()
	p.deadline = t
	p.mu.Unlock()
}

// close tells the server the session is over (the Engine.IO close
// packet, best effort) and aborts the pending GET.
func (p *pollingTransport) close() error {
	p.once.Do(func() {
		if strings.Contains(p.base, "&sid=") && p.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
			_ = p.post(ctx, "1")
			cancel()
		}
		p.cancel()
		p.client.CloseIdleConnections()
	})
	return nil
}

func (p *pollingTransport) name() string { return Polling }

// nonce is the cache-busting t= parameter engine.io-client sends.
func nonce() string {
	return fmt.Sprintf("%x", time.Now().UnixNano())
}

// httpError reads an Engine.IO error body ({"code":1,"message":"Session ID
// unknown"}) from a refused request.
func httpError(transport string, resp *http.Response) error {
	e := &HTTPError{Transport: transport, Status: resp.StatusCode}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var body struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &body) == nil {
			e.Code, e.Message = body.Code, body.Message
		} else if s := strings.TrimSpace(string(b)); s != "" && len(s) < 200 {
			e.Message = s
		}
	}
	return e
}
