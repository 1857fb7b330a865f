package adminui

import (
	"github.com/zishang520/socket.io/servers/socket/v3"
)

// handleActions registers the dashboard's actions on its socket, as
// Node's registerFeatureHandlers for Socket.IO v4. Each targets the
// sockets of a namespace, all of them or those in a room (filter: a
// socket's id is a room of its own), on every server of the cluster: the
// adapter carries emits as broadcasts and the rest as its socketsJoin,
// socketsLeave and disconnectSockets requests, which Node servers of a
// mixed fleet apply too.
//
//	emit        (nsp, filter, event, ...args)
//	join        (nsp, room, filter)
//	leave       (nsp, room, filter)
//	_disconnect (nsp, close, filter)
//
// Each is logged (never its arguments). A namespace that does not exist
// is ignored: an action never creates one.
func (u *UI) handleActions(s *socket.Socket) {
	address := s.Handshake().Address
	target := func(action string, args []any, filterAt int) (*socket.BroadcastOperator, bool) {
		nspName := stringArg(args, 0)
		nsp, ok := u.namespace(nspName)
		if !ok {
			u.log.Info("admin UI action on an unknown namespace ignored", "action", action, "namespace", nspName, "address", address)
			return nil, false
		}
		filter := stringArg(args, filterAt)
		u.log.Info("admin UI action", "action", action, "namespace", nspName, "filter", filter, "address", address)
		if filter == "" {
			return nsp.Except(), true
		}
		return nsp.In(socket.Room(filter)), true
	}
	_ = s.On("emit", func(args ...any) {
		args = withoutAck(args)
		event := stringArg(args, 2)
		if event == "" {
			return
		}
		if to, ok := target("emit", args, 1); ok {
			if err := to.Emit(event, args[3:]...); err != nil {
				u.log.Info("admin UI emit refused", "event", event, "err", err.Error())
			}
		}
	})
	_ = s.On("join", func(args ...any) {
		args = withoutAck(args)
		if room := stringArg(args, 1); room != "" {
			if to, ok := target("join", args, 2); ok {
				to.SocketsJoin(socket.Room(room))
			}
		}
	})
	_ = s.On("leave", func(args ...any) {
		args = withoutAck(args)
		if room := stringArg(args, 1); room != "" {
			if to, ok := target("leave", args, 2); ok {
				to.SocketsLeave(socket.Room(room))
			}
		}
	})
	_ = s.On("_disconnect", func(args ...any) {
		args = withoutAck(args)
		closeConn := len(args) > 1 && args[1] == true
		if to, ok := target("disconnect", args, 2); ok {
			to.DisconnectSockets(closeConn)
		}
	})
}

// withoutAck drops an acknowledgement callback the dashboard may send.
func withoutAck(args []any) []any {
	if n := len(args); n > 0 {
		if _, ok := args[n-1].(socket.Ack); ok {
			return args[:n-1]
		}
	}
	return args
}
