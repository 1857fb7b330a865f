//go:build unix

package logs

import (
	"io/fs"
	"syscall"
)

// linked reports whether the file still has a name (fi from a Stat of an
// open file).
func linked(fi fs.FileInfo) bool {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Nlink > 0
	}
	return true
}
