#!/usr/bin/env bash
# The measurement engine against baselines measured in the same run:
# handshakes/s and peak RSS of `mitmguard probe` (100 lab hosts x 200 SNIs,
# concurrency 100, per-host limits lifted) against a bare crypto/tls dial
# loop on the same servers, with Go's default groups and with X25519 alone
# (probe --groups x25519); the heap profile of the probe at its largest heap; then
# peak memory and bytes per record of a 1,000,000-pair campaign read from a
# stream.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/mitmguard-bench ./cmd/mitmguard
go build -o /tmp/probebench ./bench/probebench
profile=/tmp/mitmguard-probe.heap
/tmp/probebench -mode throughput -mitmguard /tmp/mitmguard-bench -hosts "${HOSTS:-100}" -handshakes "${HANDSHAKES:-20000}" \
	-concurrency "${CONCURRENCY:-100}" -memprofile "$profile"
echo "heap of mitmguard probe at its largest ($profile), top in-use:"
go tool pprof -sample_index=inuse_space -top -nodecount=12 /tmp/mitmguard-bench "$profile" 2>/dev/null | sed -n '1,20p'
[ "${MEMORY:-1}" = 0 ] || /tmp/probebench -mode memory -pairs "${PAIRS:-1000000}"
