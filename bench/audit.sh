#!/usr/bin/env bash
# How long an audit of this machine's real trust stores takes: the library
# benchmark, then the whole CLI (process start, reading, judging, printing).
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./truststore -run '^$' -bench BenchmarkAuditThisMachine -benchtime 20x
go build -o /tmp/mitmguard-bench ./cmd/mitmguard
for i in 1 2 3; do
  /usr/bin/time -f "mitmguard audit: %e s wall, %M KB peak" /tmp/mitmguard-bench audit >/dev/null || true
done
