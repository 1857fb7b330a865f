#!/usr/bin/env bash
# Handshake-latency comparison, interleaved so that every configuration sees
# the same background load: 10,000 conns, 2 s idle, no emits (~3 min).
cd "$(dirname "$0")"
export LOADFLAGS="-idle 2s -emits 5000"
for i in 1 2 3; do
  ./run.sh epollsrv lat-epoll-syscall-$i -accept=handoff -park=syscall
  ./run.sh epollsrv lat-epoll-netpoll-$i -accept=handoff -park=netpoll
  ./run.sh nbiosrv  lat-nbio-$i          -accept=handoff
done
