#!/usr/bin/env bash
# Server-side detection: the per-connection cost of parse + JA4/JA3 + check
# (goal: under 5 µs), and requests/s of one HTTPS server with the middleware
# against the same server without it, alternating in one run (goal: a ratio
# of at least 0.95).
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./detect -run '^$' -bench BenchmarkParseFingerprintCheck -benchmem -count "${COUNT:-3}"
go test ./detect -run '^$' -bench 'BenchmarkMiddleware$' -benchtime "${ROUNDS:-120}x"
go test ./detect -run '^$' -bench BenchmarkMiddlewareCost -benchmem
