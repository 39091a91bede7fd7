#!/usr/bin/env bash
# Cross-compile the CLI and the guard library for the platforms people at
# risk use (issue 17): pure Go (CGO_ENABLED=0), so a failure means a package
# does not build there. Prints one line per target; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
targets="windows/amd64 windows/arm64 darwin/arm64 linux/arm64 android/arm64"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0
for t in $targets; do
  goos=${t%/*} goarch=${t#*/}
  for pkg in ./cmd/mitmguard ./guard; do
    # The CLI is linked into a scratch folder; the library is compiled only.
    o=(); [ "$pkg" = ./cmd/mitmguard ] && o=(-o "$out/")
    if log=$(CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build "${o[@]}" "$pkg" 2>&1); then
      echo "ok   $t $pkg"
    else
      echo "FAIL $t $pkg"; echo "$log" | sed 's/^/     /'; fail=1
    fi
  done
  # go vet also type-checks the platform-specific test files.
  vet=(./winstore/... ./internal/regf/...)
  # On Windows the audit and distrust go through CryptoAPI: their packages
  # and the CLI's tests are type-checked there too.
  [ "$goos" = windows ] && vet+=(./truststore/... ./distrust/... ./cmd/...)
  if ! log=$(CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go vet "${vet[@]}" 2>&1); then
    echo "FAIL $t go vet ${vet[*]}"; echo "$log" | sed 's/^/     /'; fail=1
  fi
done
exit $fail
