#!/usr/bin/env bash
set -e
cd "$(dirname "$0")"
mkdir -p bin
for b in epollsrv nbiosrv nullsrv load; do go build -o bin/$b ./cmd/$b; done
ls -l bin
