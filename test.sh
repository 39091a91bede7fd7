#!/usr/bin/env bash
# The README's test command, which .ci/run runs too: every package's tests,
# with the race detector when a C compiler is there for it (it needs cgo).
#
# A test that drives an outside tool (certutil, keytool, p11-kit's trust,
# chromium, ...) skips with the Debian package to install when the tool is
# missing, so this passes on a fresh machine; under CI (CI=1 or CI=true) the
# same test fails instead, and .ci/run installs every tool first.
# Arguments go to go test (e.g. ./test.sh -count=1).
set -euo pipefail
cd "$(dirname "$0")"
ci=
case "${CI:-}" in "" | 0 | false) ;; *) ci=1 ;; esac

race=-race
if [ "$(go env CGO_ENABLED)" != 1 ]; then
  if [ -n "$ci" ]; then
    echo "test.sh: CI needs the race detector, which needs a C compiler (Debian: gcc)" >&2
    exit 1
  fi
  echo "test.sh: no C compiler, so no race detector (Debian: apt-get install gcc); testing without it" >&2
  race=
fi
# cmd/mitmguard's tests take about 4-6 minutes on a busy 2-core machine and
# went past go test's default 10m once (load 15): a wider bound, still
# catching a hang. A -timeout among the arguments wins (it comes later).
exec go test $race -timeout 30m "$@" ./...
