package adminui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"

	"github.com/zishang520/socket.io/servers/socket/v3"
	"golang.org/x/crypto/bcrypt"
)

// sessionTTL is how long a login lasts (Node's RedisStore default).
const sessionTTL = 24 * time.Hour

// redisTimeout bounds a session look-up or save.
const redisTimeout = 2 * time.Second

// errInvalidCredentials is the refusal the dashboard recognises (it then
// shows its login form again).
const errInvalidCredentials = "invalid credentials"

// authenticate is the /admin namespace's middleware, as Node's basic
// authentication: a session id from an earlier login, or the username and
// password; then a new session, sent to the dashboard ("session") once it
// is connected. Nothing else gets in: a user's JWT means nothing here
// (and the admin's login means nothing to "/", whose middleware wants a
// JWT).
func (u *UI) authenticate(s *socket.Socket, next func(*socket.ExtendedError)) {
	auth := s.Handshake().Auth
	password, _ := auth["password"].(string)
	sessionID, _ := auth["sessionId"].(string)
	username, _ := auth["username"].(string)
	// Never kept: fetchSockets sends the handshake to the other servers
	// through Redis.
	delete(auth, "password")
	delete(auth, "sessionId")
	if len(u.hash) == 0 {
		next(nil)
		return
	}
	if sessionID != "" && u.sessionExists(sessionID) {
		next(nil)
		return
	}
	if u.credentialsMatch(username, password) {
		id := newSessionID()
		u.saveSession(id)
		u.logins.add(s.Id(), id)
		u.log.Info("admin UI login", "address", s.Handshake().Address)
		next(nil)
		return
	}
	u.log.Warn("admin UI login refused", "address", s.Handshake().Address)
	next(socket.NewExtendedError(errInvalidCredentials, nil))
}

// credentialsMatch checks both, always: a wrong username costs the same
// time as a wrong password. At most two checks run at once (bcrypt is
// slow by design), so a flood of attempts cannot take every core.
func (u *UI) credentialsMatch(username, password string) bool {
	userOK := subtle.ConstantTimeCompare([]byte(username), []byte(u.opts.Username)) == 1
	u.bcryptSem <- struct{}{}
	err := bcrypt.CompareHashAndPassword(u.hash, []byte(password))
	<-u.bcryptSem
	return userOK && err == nil
}

func (u *UI) sessionKey(id string) string { return u.opts.SessionKey + "#" + id }

func (u *UI) sessionExists(id string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	n, err := u.opts.Redis.Exists(ctx, u.sessionKey(id)).Result()
	if err != nil {
		u.log.Warn("admin UI session look-up failed; asking for the password", "err", err.Error())
		return false
	}
	return n == 1
}

func (u *UI) saveSession(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := u.opts.Redis.Set(ctx, u.sessionKey(id), "1", sessionTTL).Err(); err != nil {
		u.log.Warn("admin UI session not saved; the dashboard will ask for the password again", "err", err.Error())
	}
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// logins holds the session ids of logged-in sockets until they connect
// (the middleware runs before the socket may receive events). Not in the
// socket's data or handshake: fetchSockets shows those.
type logins struct {
	mu sync.Mutex
	m  map[socket.SocketId]login
}

type login struct {
	session string
	at      time.Time
}

func (l *logins) add(id socket.SocketId, session string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[socket.SocketId]login{}
	}
	l.m[id] = login{session: session, at: time.Now()}
}

func (l *logins) take(id socket.SocketId) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.m[id]
	delete(l.m, id)
	return lg.session, ok
}

// expire forgets the logins of sockets that never connected.
func (l *logins) expire(before time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, lg := range l.m {
		if lg.at.Before(before) {
			delete(l.m, id)
		}
	}
}
