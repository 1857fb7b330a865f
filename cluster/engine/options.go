package engine

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"time"
)

// Options configures a Server. The zero value of a field means its
// default, which is Node's engine.io default.
type Options struct {
	// PingInterval is how often the server pings (25 s).
	PingInterval time.Duration
	// PingTimeout is how long a pong may take before the session ends
	// ("ping timeout"; 20 s).
	PingTimeout time.Duration
	// UpgradeTimeout bounds an upgrade from polling to websocket (10 s).
	UpgradeTimeout time.Duration
	// MaxPayload is the largest message or polling request body, in bytes
	// (1,000,000): maxHttpBufferSize.
	MaxPayload int
	// MaxBuffered is how many bytes may wait to be written to one
	// websocket before the session is ended as a slow consumer (1 MiB);
	// negative for no limit.
	MaxBuffered int
	// NoUpgrades keeps polling sessions on polling (allowUpgrades false).
	NoUpgrades bool

	// NewID makes a session id; it must be unique and hard to guess
	// (default: 15 random bytes, base64url, as Node's base64id).
	NewID func() string
	// Allow decides, before any work, whether a request may proceed:
	// newSession says whether it would start one. A non-nil refusal is
	// answered as an Engine.IO error.
	Allow func(r *http.Request, newSession bool) *Refusal
	// CORS answers the browsers' cross-origin checks on long-polling.
	CORS CORS
	// OnClose is called once per session that ends, with why.
	OnClose func(s *Socket, reason Reason)
	// Logger gets debug lines about sessions (default: discard).
	Logger *slog.Logger
}

// CORS is the cross-origin policy of the polling transport (websockets
// are checked by Allow: browsers send their Origin there too).
type CORS struct {
	// Allowed says whether a browser page of origin may call the server.
	// nil: no cross-origin request is allowed.
	Allowed func(origin string) bool
	// Credentials allows cookies (Access-Control-Allow-Credentials).
	Credentials bool
}

// Refusal is an Engine.IO error answer: the HTTP status, the Engine.IO
// code and the message the client sees.
type Refusal struct {
	Status  int
	Code    int
	Message string
}

// Engine.IO error codes (the protocol's).
const (
	CodeUnknownTransport   = 0
	CodeUnknownSID         = 1
	CodeBadHandshakeMethod = 2
	CodeBadRequest         = 3
	CodeForbidden          = 4
	CodeUnsupportedVersion = 5
)

var codeMessages = [...]string{
	CodeUnknownTransport:   "Transport unknown",
	CodeUnknownSID:         "Session ID unknown",
	CodeBadHandshakeMethod: "Bad handshake method",
	CodeBadRequest:         "Bad request",
	CodeForbidden:          "Forbidden",
	CodeUnsupportedVersion: "Unsupported protocol version",
}

func refusal(code int) *Refusal {
	status := http.StatusBadRequest
	if code == CodeForbidden {
		status = http.StatusForbidden
	}
	return &Refusal{Status: status, Code: code, Message: codeMessages[code]}
}

func (o Options) withDefaults() Options {
	if o.PingInterval <= 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = 20 * time.Second
	}
	if o.UpgradeTimeout <= 0 {
		o.UpgradeTimeout = 10 * time.Second
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 1_000_000
	}
	if o.MaxBuffered == 0 {
		o.MaxBuffered = 1 << 20
	}
	if o.NewID == nil {
		o.NewID = NewID
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// NewID is a random session id as Node's base64id makes them: 15 random
// bytes, base64 with - and _ (20 characters).
func NewID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.URLEncoding.EncodeToString(b[:])
}

// Reason is why a session ended, as counted in the metrics.
type Reason string

// Reasons a session ends.
const (
	// ReasonPingTimeout: no pong within pingTimeout of a ping.
	ReasonPingTimeout Reason = "ping_timeout"
	// ReasonTransportClose: the client closed the connection (or sent a
	// close packet).
	ReasonTransportClose Reason = "transport_close"
	// ReasonTransportError: the connection failed, or the client broke
	// the transport's rules (overlapping polls, a poll abandoned).
	ReasonTransportError Reason = "transport_error"
	// ReasonParseError: the client sent something that is not Engine.IO.
	ReasonParseError Reason = "parse_error"
	// ReasonServerDisconnect: the application closed it (Socket.IO
	// disconnect(true), a connect timeout).
	ReasonServerDisconnect Reason = "server_disconnect"
	// ReasonWriteCap: more than MaxBuffered bytes waited for a client
	// that does not read (slow consumer).
	ReasonWriteCap Reason = "write_cap"
	// ReasonDrain: the worker is draining; the client reconnects
	// elsewhere.
	ReasonDrain Reason = "drain"
	// ReasonServerClose: the server was closed.
	ReasonServerClose Reason = "server_close"
)

// Reasons lists every Reason, for metrics.
var Reasons = [...]Reason{ReasonPingTimeout, ReasonTransportClose, ReasonTransportError, ReasonParseError,
	ReasonServerDisconnect, ReasonWriteCap, ReasonDrain, ReasonServerClose}

// engineReason is the reason string the Socket.IO layer gets in the close
// event: Node's words, which decide whether a session may be recovered.
func (r Reason) engineReason() string {
	switch r {
	case ReasonPingTimeout:
		return "ping timeout"
	case ReasonTransportClose:
		return "transport close"
	case ReasonParseError:
		return "parse error"
	case ReasonServerDisconnect, ReasonDrain, ReasonServerClose:
		return "forced close"
	default:
		return "transport error"
	}
}
