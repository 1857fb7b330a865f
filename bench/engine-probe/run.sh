#!/usr/bin/env bash
# usage: ./run.sh <epollsrv|nbiosrv> <label> [server flags...]
# Starts the server, lets it settle, runs the load tool against it (10,000
# connections by default; override with LOADFLAGS), then stops the server.
# Everything is bounded: the load tool has deadlines on every phase and is
# wrapped in `timeout`.
set -u
cd "$(dirname "$0")"
srv=$1; label=$2; shift 2
case $srv in
  epollsrv) ws=127.0.0.1:8201; ctl=127.0.0.1:9201 ;;
  nbiosrv)  ws=127.0.0.1:8202; ctl=127.0.0.1:9202 ;;
  *) echo "unknown server $srv"; exit 2 ;;
esac
mkdir -p logs results
ulimit -n "$(ulimit -Hn)"
for p in ${ws##*:} ${ctl##*:}; do
  if ss -ltn "( sport = :$p )" | grep -q LISTEN; then echo "port $p busy: refusing to run against a stale server"; exit 1; fi
done
./bin/$srv -addr $ws -ctl $ctl "$@" > logs/$label.server.log 2>&1 &
spid=$!
sleep 2
if ! kill -0 $spid 2>/dev/null; then echo "server failed:"; cat logs/$label.server.log; exit 1; fi
timeout 180 ./bin/load -ws $ws -ctl $ctl -label $label -out results ${LOADFLAGS:-} 2>&1 | tee logs/$label.load.log
kill $spid; wait $spid 2>/dev/null
