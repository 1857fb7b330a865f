//go:build !frutos_dropone

package redisadapter

// dropForChaos is false in every real build; see dropone_on.go.
func dropForChaos() bool { return false }
