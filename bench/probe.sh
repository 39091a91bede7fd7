#!/usr/bin/env bash
# The measurement engine against baselines measured in the same run:
# handshakes/s of `mitmguard probe` against a bare crypto/tls dial loop on the
# same lab servers at the same concurrency, then peak memory and bytes per
# record of a 1,000,000-pair campaign read from a stream.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o /tmp/mitmguard-bench ./cmd/mitmguard
go build -o /tmp/probebench ./bench/probebench
/tmp/probebench -mode throughput -mitmguard /tmp/mitmguard-bench -hosts "${HOSTS:-100}" -handshakes "${HANDSHAKES:-20000}" -concurrency "${CONCURRENCY:-100}"
/tmp/probebench -mode memory -pairs "${PAIRS:-1000000}"
