#!/usr/bin/env bash
# Server-side detection: the per-connection cost of parse + JA4/JA3 + check
# (goal: under 5 µs), and requests/s of one HTTPS server with the middleware
# against the same server without it, alternating in one run (goal: a ratio
# of at least 0.95).
#
# On a shared, loaded machine the wall-clock ns/op of a benchmark counts the
# time other processes hold the CPU; the CPU-time line counts only this
# process's CPU seconds (garbage collection included), of N iterations minus
# one iteration (which carries the setup: a uTLS handshake and loading the
# reference data).
#
# BASE=<git ref> (e.g. BASE=main) adds an A/B comparison: the benchmark
# binary built at that ref and the one of the working tree run alternately,
# ROUNDS_AB times each, and the script prints both CPU times and their ratio,
# so load from the rest of the machine falls on both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
go test ./detect -run '^$' -bench BenchmarkParseFingerprintCheck -benchmem -count "${COUNT:-3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/detect.test" ./detect
n=${N:-300000}
cpu() { # CPU seconds (user+sys) of $2 iterations of test binary $1
	(cd detect && TIMEFORMAT='%U %S' && { time "$1" -test.run '^$' -test.bench 'BenchmarkParseFingerprintCheck$' -test.benchtime "$2x" >/dev/null; } 2>&1) | awk '{print $1+$2}'
}
percon() { # µs of CPU per connection of test binary $1
	local one all
	one=$(cpu "$1" 1)
	all=$(cpu "$1" "$n")
	awk -v a="$all" -v o="$one" -v n="$n" 'BEGIN { printf "%.3f", (a-o)*1e6/(n-1) }'
}
printf 'parse+fingerprint+check CPU time: %.2f µs per connection (%d iterations; goal < 5)\n' "$(percon "$tmp/detect.test")" "$n"
if [ -n "${BASE:-}" ]; then
	mkdir "$tmp/base"
	git archive "$BASE" | tar -x -C "$tmp/base"
	(cd "$tmp/base" && go test -c -o "$tmp/base.test" ./detect)
	for bin in base detect; do
		printf '%s: ' "$bin"
		(cd detect && "$tmp/$bin.test" -test.run '^$' -test.bench 'BenchmarkParseFingerprintCheck$' -test.benchmem | grep -o '[0-9]* B/op.*')
	done
	b=() h=()
	for ((i = 0; i < ${ROUNDS_AB:-3}; i++)); do
		b+=("$(percon "$tmp/base.test")")
		h+=("$(percon "$tmp/detect.test")")
	done
	median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
	mb=$(median "${b[@]}") mh=$(median "${h[@]}")
	echo "A/B CPU µs per connection, alternating: $BASE ${b[*]}; working tree ${h[*]}"
	awk -v b="$mb" -v h="$mh" -v ref="$BASE" 'BEGIN { printf "A/B median: %s %.2f µs, working tree %.2f µs: ratio %.2f\n", ref, b, h, h/b }'
fi
go test ./detect/detecthttp -run '^$' -bench 'BenchmarkMiddleware$' -benchtime "${ROUNDS:-120}x"
go test ./detect/detecthttp -run '^$' -bench BenchmarkMiddlewareCost -benchmem
# A hostile hello of 16000 empty extensions: ns/ext stays near the cost of
# one extension (linear), not thousands (the square of the count).
go test ./detect/tlshello -run '^$' -bench BenchmarkParseManyExtensions -benchtime 20x
# The same hostile shape through the whole check (no server name, 1,000 and
# 15,000 empty extensions): ns/ext must not grow with the count.
go test ./detect -run '^$' -bench BenchmarkCheckManyExtensions -benchtime 20x
