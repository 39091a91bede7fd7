#!/usr/bin/env bash
# What the guard adds to a full TLS 1.3 handshake on loopback, and what
# matching a chain against the blocklist costs. Both numbers come from one
# run on one machine: the guard benchmark alternates plain and guarded
# handshakes to the same lab origin and prints guarded/plain as "ratio".
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-3000}
go test ./guard -run '^$' -bench 'BenchmarkGuardOverhead' -benchtime "${N}x" -count "${COUNT:-3}"
go test ./blocklist -run '^$' -bench 'BenchmarkMatch' -benchtime 1s
