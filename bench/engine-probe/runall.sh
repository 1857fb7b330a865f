#!/usr/bin/env bash
# The full matrix used for the README numbers (about 10 minutes).
cd "$(dirname "$0")"
for i in 1 2; do
  ./run.sh epollsrv epoll-handoff-$i -accept=handoff
  ./run.sh epollsrv epoll-direct-$i  -accept=direct
  ./run.sh nbiosrv  nbio-direct-$i   -accept=direct
  ./run.sh nbiosrv  nbio-handoff-$i  -accept=handoff
done
# variants (one run each)
./run.sh nbiosrv nbio-direct-msgwrite -accept=direct -write=msg      # broadcast via websocket.Conn.WriteMessage
./run.sh nbiosrv nbio-direct-ka120    -accept=direct -keepalive=120s # nbio's default read deadline (a time.Timer per conn)
