package rooms

import "testing"

// The names are the Node original's: its backends emit to them.
func TestNames(t *testing.T) {
	if got := User("42"); got != "user:42" {
		t.Errorf("User(42) = %q", got)
	}
	if got := Mentor("7"); got != "mentor:7" {
		t.Errorf("Mentor(7) = %q", got)
	}
	if User("7") == Mentor("7") {
		t.Error("a user's room is a mentor's")
	}
}
