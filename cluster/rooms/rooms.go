// Package rooms names the Socket.IO rooms a worker puts every socket in,
// for the worker (package cluster) and for whoever emits to them from
// outside (frutos emit, the load tools, a Node backend's emitter, which
// writes the same names): a socket joins User(sub) of its token's subject,
// and a mentor's socket also Mentor(sub). Clients cannot join or leave
// rooms by themselves.
//
// It imports nothing, so that emitting code need not import the worker.
package rooms

const (
	userPrefix   = "user:"
	mentorPrefix = "mentor:"
)

// User is the room of every socket of user id: "user:<id>".
func User(id string) string { return userPrefix + id }

// Mentor is the room of every socket of mentor id: "mentor:<id>".
func Mentor(id string) string { return mentorPrefix + id }
