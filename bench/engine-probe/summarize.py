#!/usr/bin/env python3
"""Prints the results table (markdown) from results/*.json."""
import json, glob, os
rows = []
for p in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "*.json"))):
    r = json.load(open(p))
    pc, st = r["per_conn"], r["stats"]
    b = {x["server"]["payload_bytes"]: x for x in r["broadcasts"]}
    e = r["emits"]
    def bc(n):
        x = b.get(n)
        if not x: return "-"
        return "%.0f / %.0f (%d/%d)" % (x["server"]["loop_ns"]/1e6, x["last_received_after_loop_start_ms"], x["received"], r["connected"])
    rows.append("| %s | %d/%d | %.2f | %.2f (%.2f) | %.2f | %.3f | %.1f | %.1f | %.0f | %.0f/%.0f | %s | %s | %.0f | %.1f (%.2f) |" % (
        r["label"], r["connected"], r["connected"] + r["failed"],
        pc["rss_kb"], pc["heap_kb"], pc["heap_after_gc_kb"], pc["stack_kb"], pc["goroutines"],
        st["baseline"]["rss"]/1048576, st["after_idle"]["rss"]/1048576,
        r["connect_rate_per_s"], r["handshake_p50_ms"], r["handshake_p99_ms"],
        bc(100), bc(1024),
        e.get("emits_per_s", 0), e.get("cpu_us_per_emit", 0), e.get("cpu_user_us_per_emit", 0)))
print("| run | conns | RSS KB/conn | heap KB/conn (after GC) | stack KB/conn | goroutines/conn | base RSS MB | RSS after idle MB | connect/s | handshake p50/p99 ms | bcast 100 B: loop / last ms (recv) | bcast 1 KB: loop / last ms (recv) | emits/s | CPU µs/emit (user) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
