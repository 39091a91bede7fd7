#!/usr/bin/env bash
# mitmguard export on a generated store of RECORDS (default 1,000,000)
# records: Parquet bytes per record (goal <= 60) and export speed (goal >=
# 500,000 records/s), with peak RSS from /usr/bin/time -v. The baselines,
# measured in the same run: reading the store's cursor alone (what export
# cannot beat), and the JSON Lines export of the same records.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mitmguard" ./cmd/mitmguard
go build -o "$work/exportgen" ./bench/exportgen
"$work/exportgen" -db "$work/m.db" -records "$RECORDS"
db_bytes=$(stat -c %s "$work/m.db")
"$work/exportgen" -db "$work/m.db" -read | tee "$work/read.txt"

run() { # name, then the command; prints wall seconds and peak KB
  local name=$1; shift
  /usr/bin/time -v "$@" 2>"$work/$name.time" >/dev/null
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
  echo "$wall $rss"
}
read -r pq_wall pq_rss < <(run parquet "$work/mitmguard" export --db "$work/m.db" --format parquet --output "$work/pq")
read -r jl_wall jl_rss < <(run jsonl "$work/mitmguard" export --db "$work/m.db" --format jsonl --output "$work/out.jsonl")
rec_bytes=$(find "$work/pq/records" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
cert_bytes=$(find "$work/pq/certificates" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
jl_bytes=$(stat -c %s "$work/out.jsonl")
read_rate=$(awk '{for(i=1;i<=NF;i++) if ($(i+1) == "records/s") print $i}' "$work/read.txt")
awk -v n="$RECORDS" -v rb="$rec_bytes" -v cb="$cert_bytes" -v db="$db_bytes" -v jb="$jl_bytes" \
    -v pw="$pq_wall" -v pr="$pq_rss" -v jw="$jl_wall" -v jr="$jl_rss" -v rr="$read_rate" 'BEGIN {
  printf "records:                         %d\n", n
  printf "parquet bytes/record (records):  %.1f   (goal <= 60)\n", rb / n
  printf "parquet bytes/record (+ certs):  %.1f\n", (rb + cb) / n
  printf "sqlite store bytes/record:       %.1f   (parquet/sqlite %.3f)\n", db / n, (rb + cb) / db
  printf "jsonl bytes/record:              %.1f\n", jb / n
  printf "parquet export: %.2f s, %.0f records/s (goal >= 500000), peak RSS %.1f MB\n", pw, n / pw, pr / 1024
  printf "jsonl export:   %.2f s, %.0f records/s, peak RSS %.1f MB\n", jw, n / jw, jr / 1024
  printf "parquet export / store cursor alone: %.2f;  parquet / jsonl speed: %.2f\n", (n / pw) / rr, jw / pw
}'
