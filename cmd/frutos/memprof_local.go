package main

import (
	"os"
	"runtime"
)

func init() {
	if os.Getenv("FRUTOS_MEMPROFILE_ALL") != "" {
		runtime.MemProfileRate = 1
	}
}
