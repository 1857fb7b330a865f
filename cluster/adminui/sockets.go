package adminui

import (
	"bytes"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zishang520/socket.io/servers/engine/v3/transports"
	"github.com/zishang520/socket.io/servers/socket/v3"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// watch reports what happens in a namespace to the dashboards: sockets
// that connect, upgrade and disconnect, rooms joined and left. Only the
// server that holds a socket reports it, so every event reaches the
// dashboards once, through the adapter.
func (u *UI) watch(nsp socket.Namespace) {
	u.mu.Lock()
	if _, ok := u.nsps[nsp.Name()]; ok {
		u.mu.Unlock()
		return
	}
	u.nsps[nsp.Name()] = nsp
	u.mu.Unlock()

	name := nsp.Name()
	_ = nsp.On("connection", func(args ...any) {
		if s, ok := firstArg(args).(*socket.Socket); ok {
			u.onConnection(name, s)
		}
	})
	_ = nsp.Adapter().On("join-room", func(args ...any) {
		if room, id, ok := roomEvent(args); ok {
			u.emit("room_joined", name, room, id, timestamp())
		}
	})
	_ = nsp.Adapter().On("leave-room", func(args ...any) {
		if room, id, ok := roomEvent(args); ok {
			u.emit("room_left", name, room, id, timestamp())
		}
	})
}

func roomEvent(args []any) (room, id string, ok bool) {
	if len(args) < 2 {
		return "", "", false
	}
	r, ok1 := args[0].(socket.Room)
	i, ok2 := args[1].(socket.SocketId)
	return string(r), string(i), ok1 && ok2
}

// onConnection: the socket's data gets what the dashboard shows of its
// connection (Node keeps it in socket.data._admin, and so do we: other
// servers read it through fetchSockets), the dashboards learn of it, and
// of its upgrade and disconnection. A dashboard's own socket then gets its
// session, the features, its actions and every socket of the cluster.
func (u *UI) onConnection(nsp string, s *socket.Socket) {
	var session string
	isAdmin := nsp == Namespace
	if isAdmin {
		session, _ = u.logins.take(s.Id())
	}

	conn := s.Conn()
	d := &socketData{app: appData(s.Data()), clientID: clientID(conn.Id())}
	// Listen first, then read: an upgrade in between is reported twice,
	// never missed.
	_ = conn.On("upgrade", func(args ...any) {
		t, ok := firstArg(args).(transports.Transport)
		if !ok {
			return
		}
		d.setTransport(t.Name())
		u.emit("socket_updated", map[string]any{"id": string(s.Id()), "nsp": nsp, "transport": t.Name()})
	})
	d.setTransport(conn.Transport().Name())
	s.SetData(d)
	u.emit("socket_connected", serialize(s, nsp), timestamp())
	_ = s.On("disconnect", func(args ...any) {
		reason, _ := firstArg(args).(string)
		u.emit("socket_disconnected", nsp, string(s.Id()), reason, timestamp())
	})

	if !isAdmin {
		return
	}
	if session != "" {
		_ = s.Emit("session", session)
	}
	if !u.opts.ReadOnly {
		u.handleActions(s)
	}
	_ = s.Emit("config", map[string]any{"supportedFeatures": u.features})
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		_ = s.Emit("all_sockets", u.allSockets())
	}()
}

// allSockets is every socket of every instrumented namespace, on every
// server of the cluster (fetchSockets through the adapter; a server that
// does not answer in time is left out).
func (u *UI) allSockets() []any {
	nsps := u.namespaces()
	found := make([][]any, len(nsps))
	var wg sync.WaitGroup
	for i, nsp := range nsps {
		wg.Go(func() {
			nsp.FetchSockets()(func(sockets []*socket.RemoteSocket, err error) {
				if err != nil {
					u.log.Warn("admin UI: not every server listed its sockets", "namespace", nsp.Name(), "err", err.Error())
				}
				for _, rs := range sockets {
					found[i] = append(found[i], serialize(rs, nsp.Name()))
				}
			})
		})
	}
	wg.Wait()
	out := []any{}
	for _, f := range found {
		out = append(out, f...)
	}
	return out
}

// socketInfo is what serialize reads of a socket, local or remote.
type socketInfo interface {
	Id() socket.SocketId
	Handshake() *socket.Handshake
	Rooms() *types.Set[socket.Room]
	Data() any
}

// hiddenHeaders are never shown: they carry cookies and credentials.
var hiddenHeaders = map[string]bool{"cookie": true, "authorization": true, "proxy-authorization": true}

// serialize is a socket as the dashboard takes it (Node's serialize): its
// data without _admin, whose clientId and transport come out on their own,
// and its handshake without auth (and, here, without cookies and
// credentials).
func serialize(s socketInfo, nsp string) map[string]any {
	data, admin := splitData(s.Data())
	out := map[string]any{
		"id":        string(s.Id()),
		"clientId":  admin.ClientID,
		"transport": admin.Transport,
		"nsp":       nsp,
		"data":      data,
		"rooms":     roomList(s.Rooms()),
	}
	if hs := s.Handshake(); hs != nil {
		headers := map[string]any{}
		for k, v := range hs.Headers {
			if !hiddenHeaders[strings.ToLower(k)] {
				headers[k] = v
			}
		}
		// the client's IP, as Node shows it (the port of a proxied
		// long-polling request is the daemon's, or 0)
		address := hs.Address
		if host, _, err := net.SplitHostPort(address); err == nil {
			address = host
		}
		for _, h := range []string{"cf-connecting-ip", "x-forwarded-for"} {
			if v := headerValue(headers[h]); v != "" {
				address = v
				break
			}
		}
		query := map[string]any{}
		for k, v := range hs.Query {
			query[k] = v
		}
		out["handshake"] = map[string]any{
			"address": address, "headers": headers, "query": query, "issued": hs.Issued,
			"secure": hs.Secure, "time": hs.Time, "url": hs.Url, "xdomain": hs.Xdomain,
		}
	}
	return out
}

func headerValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []string:
		if len(x) > 0 {
			return x[0]
		}
	case []any:
		if len(x) > 0 {
			s, _ := x[0].(string)
			return s
		}
	}
	return ""
}

func roomList(r *types.Set[socket.Room]) []string {
	out := []string{}
	if r != nil {
		for _, room := range r.Keys() {
			out = append(out, string(room))
		}
	}
	return out
}

// adminInfo is socket.data._admin in Node: the start of the Engine.IO
// session id (all of it would let anyone who sees the dashboard hijack a
// long-polling session) and the transport.
type adminInfo struct {
	ClientID  string `json:"clientId"`
	Transport string `json:"transport"`
}

func clientID(engineID string) string {
	if len(engineID) > 12 {
		return engineID[:12]
	}
	return engineID
}

// socketData is a socket's data while the Admin UI is on: the server's own
// data (app) and _admin. It travels as JSON (and through the adapter's
// msgpack, which falls back to JSON for it): {...app, "_admin": {...}}.
type socketData struct {
	app       any
	clientID  string
	transport atomic.Pointer[string]
}

func (d *socketData) setTransport(name string) { d.transport.Store(&name) }

func (d *socketData) info() adminInfo {
	a := adminInfo{ClientID: d.clientID}
	if t := d.transport.Load(); t != nil {
		a.Transport = *t
	}
	return a
}

// MarshalJSON merges _admin into the server's data: an object stays an
// object with one more key; anything else becomes {"_admin": ...}.
func (d *socketData) MarshalJSON() ([]byte, error) {
	admin, err := json.Marshal(d.info())
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteByte('{')
	if d.app != nil {
		app, err := json.Marshal(d.app)
		if err != nil {
			return nil, err
		}
		app = bytes.TrimSpace(app)
		if len(app) >= 2 && app[0] == '{' {
			if inner := bytes.TrimSpace(app[1 : len(app)-1]); len(inner) > 0 {
				out.Write(inner)
				out.WriteByte(',')
			}
		}
	}
	out.WriteString(`"_admin":`)
	out.Write(admin)
	out.WriteByte('}')
	return out.Bytes(), nil
}

// appData is a socket's own data, without what an earlier connection of
// its session (connection state recovery) added for the Admin UI.
func appData(v any) any {
	switch x := v.(type) {
	case *socketData:
		return x.app
	case map[string]any:
		if _, ok := x["_admin"]; ok {
			m := make(map[string]any, len(x)-1)
			for k, e := range x {
				if k != "_admin" {
					m[k] = e
				}
			}
			return m
		}
	}
	return v
}

// splitData turns a socket's data, ours or another server's (decoded
// JSON), into the data the dashboard shows (an object) and _admin.
func splitData(v any) (map[string]any, adminInfo) {
	var admin adminInfo
	if d, ok := v.(*socketData); ok {
		admin, v = d.info(), d.app
	}
	data := map[string]any{}
	if v != nil {
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				data[k] = e
			}
		} else if b, err := json.Marshal(v); err == nil {
			_ = json.Unmarshal(b, &data) // not an object: shown as {}
		}
	}
	if a, ok := data["_admin"].(map[string]any); ok {
		admin.ClientID, _ = a["clientId"].(string)
		admin.Transport, _ = a["transport"].(string)
	}
	delete(data, "_admin")
	return data, admin
}
