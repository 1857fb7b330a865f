#!/usr/bin/env bash
# Third repetition of the four main configurations (about 5.5 minutes).
cd "$(dirname "$0")"
./run.sh epollsrv epoll-handoff-3 -accept=handoff
./run.sh epollsrv epoll-direct-3  -accept=direct
./run.sh nbiosrv  nbio-direct-3   -accept=direct
./run.sh nbiosrv  nbio-handoff-3  -accept=handoff
