package cluster_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/frutos/frutos/configs"
	"github.com/frutos/frutos/internal/testutil/redistest"
)

// What the Admin UI costs per event: an emit to a user's room on a worker
// with one connected client, with the Admin UI off, and on with a
// dashboard watching. The Admin UI listens to connections, upgrades, rooms
// and disconnections only (no ALL_EVENTS: see cluster/adminui/doc.go), so
// an event costs the same either way. Run:
//
//	go test -run '^$' -bench AdminUICostPerEvent -benchmem -count 6 ./cluster/
func BenchmarkAdminUICostPerEvent(b *testing.B) {
	for _, c := range []struct {
		name string
		on   bool
	}{{"off", false}, {"on", true}} {
		b.Run(c.name, func(b *testing.B) {
			rs := redistest.Start(b)
			w := startWorker(b, rs.URL(), func(cfg *configs.Config) {
				if c.on {
					cfg.AdminUI = configs.AdminUI{Enabled: true, Username: "admin", PasswordHash: adminHash}
				}
			})
			_, rec := mustDial(b, w.URL, tok("41", "student"))
			if c.on {
				_, dash, err := dialAdmin(b, w.URL, adminLogin())
				if err != nil {
					b.Fatal(err)
				}
				dash.WaitN(b, "all_sockets", 1, 5*time.Second)
			}
			payload := map[string]any{"tareaId": 9, "titulo": "Entregar el informe"}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for range b.N {
				if err := w.EmitToUser("41", "nueva_tarea", payload); err != nil {
					b.Fatal(err)
				}
			}
			rec.WaitN(b, "nueva_tarea", b.N, time.Minute) // delivered, not only queued
			// CPU, not wall time: the machine may be busy with other work
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the user and system CPU this process has used (the worker,
// the client and the test's Redis client; redis-server is another process).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
