//go:build frutos_dropone

package redisadapter

import "sync/atomic"

// A deliberately broken build (go build -tags frutos_dropone) drops one
// broadcast in a thousand before delivering it, so that the chaos suite
// can show that its report counts losses (bench/chaos).
var deliveries atomic.Uint64

func dropForChaos() bool { return deliveries.Add(1)%1000 == 0 }
