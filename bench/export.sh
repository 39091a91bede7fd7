#!/usr/bin/env bash
# mitmguard export on a generated store of RECORDS (default 1,000,000)
# records: Parquet bytes per record (goal <= 60) and export speed (goal >=
# 500,000 records/s), with peak RSS from /usr/bin/time -v. The baselines,
# measured in the same run: reading the store's rows alone (what export
# cannot beat), the JSON Lines export of the same records, and the Parquet
# export by the mitmguard of BASE_REF (default main; BASE_REF= skips it).
# CPU seconds (user + system) are printed beside wall seconds: on a shared
# machine they say more than the wall clock, and so does the load average
# printed before and after the exports. Each Parquet export (this build's
# and BASE_REF's) runs RUNS times (default 3), alternating, into fresh
# folders; the run of median wall time is reported and every wall listed.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/mitmguard" ./cmd/mitmguard
BASE_REF=${BASE_REF-main}
if [ -n "$BASE_REF" ]; then
  mkdir "$work/base"
  git archive "$BASE_REF" | tar -x -C "$work/base"
  (cd "$work/base" && go build -o "$work/mitmguard-base" ./cmd/mitmguard)
fi
go build -o "$work/exportgen" ./bench/exportgen
"$work/exportgen" -db "$work/m.db" -records "$RECORDS"
db_bytes=$(stat -c %s "$work/m.db")
"$work/exportgen" -db "$work/m.db" -read | tee "$work/read.txt"

run() { # name, then the command; prints wall seconds, peak KB and CPU seconds
  local name=$1; shift
  if ! /usr/bin/time -v "$@" 2>"$work/$name.time" >/dev/null; then
    # e.g. a BASE_REF older than the store's schema refuses the file
    echo "export.sh: $name failed:" >&2; grep -v '^	' "$work/$name.time" >&2; return 1
  fi
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$work/$name.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/$name.time")
  cpu=$(awk -F': ' '/(User|System) time \(seconds\)/ {s+=$2} END {print s}' "$work/$name.time")
  echo "$wall $rss $cpu"
}
RUNS=${RUNS:-3}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/pq.runs"
: >"$work/base.runs"
for i in $(seq "$RUNS"); do
  run "pq$i" "$work/mitmguard" export --db "$work/m.db" --format parquet --output "$work/pq$i" >>"$work/pq.runs"
  if [ -n "$BASE_REF" ]; then
    run "base$i" "$work/mitmguard-base" export --db "$work/m.db" --format parquet --output "$work/base$i" >>"$work/base.runs"
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
median() { sort -n "$1" | awk -v n="$RUNS" 'NR == int((n + 1) / 2)'; }
walls() { sort -n "$1" | awk '{printf "%s%s", sep, $1; sep = " "}'; }
read -r pq_wall pq_rss pq_cpu < <(median "$work/pq.runs")
read -r jl_wall jl_rss jl_cpu < <(run jsonl "$work/mitmguard" export --db "$work/m.db" --format jsonl --output "$work/out.jsonl")
base_wall=0 base_rss=0 base_cpu=0
if [ -n "$BASE_REF" ]; then
  read -r base_wall base_rss base_cpu < <(median "$work/base.runs")
fi
rec_bytes=$(find "$work/pq1/records" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
cert_bytes=$(find "$work/pq1/certificates" -name '*.parquet' -printf '%s\n' | awk '{s+=$1} END {print s}')
jl_bytes=$(stat -c %s "$work/out.jsonl")
read_rate=$(awk '/^store rows alone/ {for(i=1;i<=NF;i++) if ($(i+1) == "records/s") print $i}' "$work/read.txt")
awk -v n="$RECORDS" -v rb="$rec_bytes" -v cb="$cert_bytes" -v db="$db_bytes" -v jb="$jl_bytes" \
    -v pw="$pq_wall" -v pr="$pq_rss" -v jw="$jl_wall" -v jr="$jl_rss" -v rr="$read_rate" \
    -v pc="$pq_cpu" -v jc="$jl_cpu" -v bw="$base_wall" -v br="$base_rss" -v bc="$base_cpu" -v ref="$BASE_REF" \
    -v lb="$load_before" -v la="$load_after" -v runs="$RUNS" -v pws="$(walls "$work/pq.runs")" -v bws="$(walls "$work/base.runs")" 'BEGIN {
  printf "records:                         %d\n", n
  printf "parquet bytes/record (records):  %.1f   (goal <= 60)\n", rb / n
  printf "parquet bytes/record (+ certs):  %.1f\n", (rb + cb) / n
  printf "sqlite store bytes/record:       %.1f   (parquet/sqlite %.3f)\n", db / n, (rb + cb) / db
  printf "jsonl bytes/record:              %.1f\n", jb / n
  printf "parquet export: %.2f s, %.0f records/s (goal >= 500000), peak RSS %.1f MB; CPU %.2f s, %.0f records per CPU-second\n", pw, n / pw, pr / 1024, pc, n / pc
  printf "  (median of %d runs; walls: %s s)\n", runs, pws
  printf "jsonl export:   %.2f s, %.0f records/s, peak RSS %.1f MB; CPU %.2f s\n", jw, n / jw, jr / 1024, jc
  printf "parquet export / store rows alone: %.2f;  parquet / jsonl speed: %.2f\n", (n / pw) / rr, jw / pw
  printf "load average (1, 5, 15 min) before the parquet exports: %s; after: %s\n", lb, la
  if (ref != "")
    printf "%s parquet export: %.2f s, %.0f records/s, peak RSS %.1f MB; CPU %.2f s (walls: %s s).  this / %s: speed x%.2f, CPU per record x%.2f\n", ref, bw, n / bw, br / 1024, bc, bws, ref, bw / pw, pc / bc
}'
