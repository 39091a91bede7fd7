#!/usr/bin/env bash
# Start a PostgreSQL server for the tests and print the DSN they read:
#
#   eval "$(.ci/postgres.sh)"     # sets MITMGUARD_TEST_POSTGRES
#
# It installs Debian's postgresql when missing, creates a cluster when there
# is none, starts it (listening on loopback only, Debian's default), and
# creates a role and a database with a password. Running it again changes
# nothing but starting a stopped cluster: the password is kept in a root-only
# file so a DSN printed earlier stays valid. Everything but the export line
# goes to standard error.
set -euo pipefail

role=mitmguard_test
db=mitmguard_test
pwfile=${MITMGUARD_PG_PASSWORD_FILE:-/var/lib/postgresql/mitmguard-test.password}

log() { echo "postgres.sh: $*" >&2; }
root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! command -v pg_createcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing Debian's postgresql"
  root apt-get update -qq >&2
  root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

# The first cluster pg_lsclusters lists (version, name, port, status), or a
# new one on the newest installed version.
cluster=$(pg_lsclusters --no-header 2>/dev/null | awk 'NR==1 {print $1, $2, $3, $4}')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  log "creating cluster $version/main"
  root pg_createcluster "$version" main >&2
  cluster=$(pg_lsclusters --no-header | awk 'NR==1 {print $1, $2, $3, $4}')
fi
read -r version name port status <<<"$cluster"
if [ "$status" != online ]; then
  log "starting cluster $version/$name on port $port"
  root pg_ctlcluster "$version" "$name" start >&2
fi
# Wait until the server accepts connections (pg_ctlcluster returns once the
# postmaster runs; recovery after an unclean stop can take a moment more).
for _ in $(seq 1 60); do
  if as_postgres psql -p "$port" -qAtc 'SELECT 1' >/dev/null 2>&1; then break; fi
  sleep 0.5
done
as_postgres psql -p "$port" -qAtc 'SELECT 1' >/dev/null

if ! root test -s "$pwfile"; then
  log "new password in $pwfile"
  root install -m 600 /dev/null "$pwfile"
  # hex: no character needs escaping in SQL or in a URL.
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | root tee "$pwfile" >/dev/null
fi
password=$(root cat "$pwfile")

# The role may create schemas in its own database (internal/pgtest gives
# each test a fresh schema) but is no superuser.
as_postgres psql -p "$port" -v ON_ERROR_STOP=1 -qAt >&2 <<SQL
SELECT format('CREATE ROLE %I LOGIN', '$role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')
\gexec
ALTER ROLE $role WITH LOGIN NOSUPERUSER NOCREATEROLE PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$db', '$role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')
\gexec
SQL

echo "export MITMGUARD_TEST_POSTGRES=postgres://$role:$password@127.0.0.1:$port/$db?sslmode=disable"
