#!/usr/bin/env bash
# Distributed campaigns against the lab network, from one run on this
# machine: records/s of 1, 2 and 4 workers (`mitmguard worker`, one
# vantage point, NATS from `mitmguard nats`, records in PostgreSQL), each
# as a ratio to one worker; one worker against a plain `mitmguard probe` of
# the same campaign (same hosts x domains, same concurrency and per-host
# limits; goal >= 0.9); and PostgreSQL vs SQLite bytes per record after the
# same campaign.
#
# PostgreSQL: $MITMGUARD_TEST_POSTGRES, else .ci/postgres.sh starts one.
# Each run works in a schema of its own, dropped at the end. Sizes:
#   HOSTS (lab hosts, <= 254; default 200), CONCURRENCY (handshakes in
#   flight per probe / per worker; default 50), BATCH (hosts per job;
#   default 10), RATE and PER_HOST (per-host limits; default 1000 and 4),
#   TIMEOUT (bound on a handshake; default 2s: the lab's stalling hosts
#   hold a handshake that long, which would otherwise dominate the time),
#   JOBS (most jobs a worker holds at once, sharing CONCURRENCY: it takes
#   another whenever a handshake slot would sit idle; default: the
#   worker's own, 16),
#   WORKER_DB (the workers' store instead of PostgreSQL, e.g. an SQLite
#   file, to tell the store's part from the queue's),
#   WORKERS (default "1 2 4"), REPEAT (campaigns per measurement, the
#   best kept; default 1).
# All of it listens on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${HOSTS:-200}
CONCURRENCY=${CONCURRENCY:-50}
BATCH=${BATCH:-10}
RATE=${RATE:-1000}
PER_HOST=${PER_HOST:-4}
TIMEOUT=${TIMEOUT:-2s}
WORKERS=${WORKERS:-1 2 4}
REPEAT=${REPEAT:-1}
JOBS=${JOBS:-}

work=$(mktemp -d)
pids=()
schema=bench_campaign_$$
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${DSN_BASE:-}" ]; then psql -q "$DSN_BASE" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; fi
  if [ -n "${KEEP:-}" ]; then echo "campaign.sh: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [ -z "${MITMGUARD_TEST_POSTGRES:-}" ]; then
  eval "$(bash .ci/postgres.sh)"
fi
DSN_BASE=$MITMGUARD_TEST_POSTGRES
psql -q "$DSN_BASE" -c "CREATE SCHEMA $schema" >/dev/null
case $DSN_BASE in *\?*) DSN="$DSN_BASE&search_path=$schema" ;; *) DSN="$DSN_BASE?search_path=$schema" ;; esac

mg=$work/mitmguard
go build -o "$mg" ./cmd/mitmguard

# waitfor FILE PATTERN: until FILE holds a line matching PATTERN.
waitfor() {
  for _ in $(seq 1 600); do
    if grep -q "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "campaign.sh: no '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

"$mg" lab --network "$HOSTS" --dir "$work/lab" >"$work/lab.log" 2>&1 &
pids+=($!)
waitfor "$work/lab.log" "mitmguard lab network"
"$mg" nats --listen 127.0.0.1:0 --store "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
waitfor "$work/nats.log" "nats: JetStream at"
NATS=$(sed -n 's/^nats: JetStream at \([^ ,]*\),.*/\1/p' "$work/nats.log")

lab=$work/lab
domains=$(grep -c . "$lab/domains.txt")
records=$((HOSTS * domains))
jobs=$(((HOSTS + BATCH - 1) / BATCH))
limits=(--per-host "$PER_HOST" --rate "$RATE" --timeout "$TIMEOUT" --retries 1)
now() { date +%s.%N; }

# The plain probe of run R, into SQLite. Prints its seconds and CPU.
run_probe() { # R
  local t0 el
  t0=$(now)
  /usr/bin/time -f "%U %S" -o "$work/probe.cpu" "$mg" probe --hosts "$lab/hosts.txt" --domains "$lab/domains.txt" --roots "$lab/public-root.pem" \
    --db "$work/probe-$1.db" --concurrency "$CONCURRENCY" "${limits[@]}" --no-progress >/dev/null 2>"$work/probe.log"
  el=$(echo "$(now) - $t0" | bc)
  echo "$el $(awk '{print $1 + $2}' "$work/probe.cpu")"
}

# One campaign with N workers: start them, submit, wait until status says
# done, stop them. Prints the seconds from submit to done.
run_workers() { # N ID
  local n=$1 id=$2 w=() i
  for i in $(seq 1 "$n"); do
    "$mg" worker --nats "$NATS" --db "${WORKER_DB:-$DSN}" --vantage bench --concurrency "$CONCURRENCY" ${JOBS:+--jobs "$JOBS"} >"$work/worker-$id-$i.log" 2>&1 &
    w+=($!)
    pids+=($!)
  done
  for i in $(seq 1 "$n"); do waitfor "$work/worker-$id-$i.log" "worker started"; done
  local t0 el
  t0=$(now)
  "$mg" campaign submit --nats "$NATS" --db "$DSN" --hosts "$lab/hosts.txt" --domains "$lab/domains.txt" \
    --roots "$lab/public-root.pem" --vantage bench --id "$id" --batch "$BATCH" "${limits[@]}" >/dev/null 2>>"$work/submit.log"
  # Done when the workers logged every job done, seen as the line is
  # written (polling campaign status instead would start a process, and
  # connect twice, each time; polling the logs would add up to a poll's
  # interval); the status then confirms it.
  # (tail ends once nothing reads it.)
  local seen=0 line
  while [ "$seen" -lt "$jobs" ] && IFS= read -r line; do
    case $line in *'msg="job done"'*) seen=$((seen + 1)) ;; esac
  done < <(exec tail -q -n +1 -F "$work"/worker-"$id"-*.log 2>/dev/null)
  el=$(echo "$(now) - $t0" | bc)
  "$mg" campaign status "$id" --nats "$NATS" --json | grep -q '"done": *true' || { echo "campaign.sh: $id not done" >&2; exit 1; }
  local ticks=0 p
  for p in "${w[@]}"; do ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  for p in "${w[@]}"; do kill -TERM "$p"; done
  for p in "${w[@]}"; do wait "$p" || true; done
  echo "$el $(echo "$ticks / $(getconf CLK_TCK)" | bc -l)"
}

# PostgreSQL bytes per record: the schema's tables (with their indexes
# and TOAST) over the records stored, measured after the first workers'
# campaign, as the SQLite file is after one probe.
pg_size() {
  pg_rows=$(psql -qAt "$DSN_BASE" -c "SELECT count(*) FROM $schema.records")
  pg_bytes=$(psql -qAt "$DSN_BASE" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind = 'r'")
}
# Each repetition runs the probe and then each number of workers, so a
# change of the machine's load over the run weighs on all of them alike;
# the best of each is kept.
declare -A secs cpus
best_probe=
for r in $(seq 1 "$REPEAT"); do
  read -r el cpu < <(run_probe "$r")
  echo "probe: $el s" >&2
  if [ -z "$best_probe" ] || [ "$(echo "$el < $best_probe" | bc)" = 1 ]; then best_probe=$el; probe_cpu=$cpu; fi
  for n in $WORKERS; do
    read -r el cpu < <(run_workers "$n" "w$n-$r")
    echo "$n worker(s): $el s" >&2
    if [ -z "${secs[$n]:-}" ] || [ "$(echo "$el < ${secs[$n]}" | bc)" = 1 ]; then secs[$n]=$el; cpus[$n]=$cpu; fi
    [ -n "${pg_rows:-}" ] || pg_size
  done
done
sqlite_bytes=$(stat -c %s "$work/probe-1.db")
[ -f "$work/probe-1.db-wal" ] && sqlite_bytes=$((sqlite_bytes + $(stat -c %s "$work/probe-1.db-wal")))
sqlite_rows=$(sqlite3 "$work/probe-1.db" 'SELECT count(*) FROM records' 2>/dev/null || echo "$records")

echo "campaign: $HOSTS lab hosts x $domains domains = $records records; concurrency $CONCURRENCY, batch $BATCH, per-host $PER_HOST, rate $RATE/s; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "probe (SQLite):  %6.2f s  %8.0f records/s   CPU %5.2f s (%.2f ms/record)\n" "$best_probe" "$(echo "$records / $best_probe" | bc -l)" \
  "$probe_cpu" "$(echo "1000 * $probe_cpu / $records" | bc -l)"
one=${secs[1]:-}
for n in $WORKERS; do
  s=${secs[$n]}
  line=$(printf "%d worker(s):     %6.2f s  %8.0f records/s   CPU %5.2f s (%.2f ms/record)" "$n" "$s" "$(echo "$records / $s" | bc -l)" \
    "${cpus[$n]}" "$(echo "1000 * ${cpus[$n]} / $records" | bc -l)")
  [ -n "$one" ] && line+=$(printf "  x%.2f of 1 worker" "$(echo "$one / $s" | bc -l)")
  echo "$line"
done
[ -n "$one" ] && printf "1 worker / probe: %.2f  (goal >= 0.9; CPU per record, probe / worker processes: %.2f)\n" \
  "$(echo "$best_probe / $one" | bc -l)" "$(echo "$probe_cpu / ${cpus[1]}" | bc -l)"
printf "bytes/record: PostgreSQL %.0f (%d bytes of tables / %d records), SQLite %.0f (%d bytes / %d records); PostgreSQL/SQLite %.2f\n" \
  "$(echo "$pg_bytes / $pg_rows" | bc -l)" "$pg_bytes" "$pg_rows" "$(echo "$sqlite_bytes / $sqlite_rows" | bc -l)" "$sqlite_bytes" "$sqlite_rows" \
  "$(echo "($pg_bytes / $pg_rows) / ($sqlite_bytes / $sqlite_rows)" | bc -l)"
