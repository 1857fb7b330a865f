package configs

import (
	"strconv"
	"strings"
)

// Error is a configuration problem, located as precisely as we know it.
//
// File is the config file path as the user gave it, or the source of the value
// when it did not come from a file: "env PORT", "flag --port", "env FRUTOS_CONFIG".
// Line and Column are 1-based and zero when unknown. Field is the dotted path of
// the setting as the user wrote it ("limits.ping_interval",
// "env.production.port", "cors.origins[1]"). Every message stands alone, so a
// list of them can be printed one per line.
type Error struct {
	File   string
	Line   int
	Column int
	Field  string
	Msg    string
}

// FromFlag reports whether the value at fault came from a command-line
// flag (File "flag --instances"): the command line counts that as a usage
// error, not a configuration one.
func (e *Error) FromFlag() bool { return strings.HasPrefix(e.File, "flag ") }

// Error formats the problem as "file:line:col: field: msg", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
