#!/usr/bin/env bash
# Builds anchore/k8s-inventory (Anchore's polling inventory agent, binary `anchore-k8s-inventory`) for the detection
# latency benchmark that runs it beside the operator. Benchmarks only: not part of `npm test`, CI or build-binaries.sh.
#
#   bash bench/build-k8s-inventory.sh            # progress on stderr, the binary path as the last stdout line
#
# Cached by version outside the repository:
#   ${ANCHORE_OPERATOR_CACHE:-~/.cache/anchore-operator}/bin/k8s-inventory-<version>/anchore-k8s-inventory
#
# Where the source comes from, in this order:
#   K8S_INVENTORY_SRC=<dir>   a checkout of github.com/anchore/k8s-inventory at K8S_INVENTORY_VERSION (its main
#                             package is the module root); its dependencies still come from the Go module proxy.
#   otherwise                 `go install github.com/anchore/k8s-inventory@<version>` from the Go module proxy.
#
# On the machines this project runs on, the module proxy refuses the module itself (`go list -m -versions
# github.com/anchore/k8s-inventory` answers 403 Forbidden for every version), so `go install` exits 3 here. What works:
# a copy of the agent's public source at the tag, taken outside this repository (no code of it is committed), e.g.
#   git -C <mirror of anchore/k8s-inventory> archive v1.8.4 | tar -x -C /tmp/k8s-inventory-v1.8.4
#   K8S_INVENTORY_VERSION=v1.8.4 K8S_INVENTORY_SRC=/tmp/k8s-inventory-v1.8.4 bash bench/build-k8s-inventory.sh
# (v1.8.4 needs Go >= 1.26.3; its dependencies do come from the module proxy). The benchmark then finds it in the
# cache when run with the same K8S_INVENTORY_VERSION, or takes K8S_INVENTORY_BINARY=<that path>.
#
# Exit status: 0 built or cached; 3 the module proxy does not serve that module/version (nothing else to try without a
# K8S_INVENTORY_SRC checkout); 1 any other build failure. Never commit what this produces.
set -euo pipefail

# v1.8.2: the image tag pinned by the newest anchore/k8s-inventory Helm chart values.yaml that was read
# (anchore/anchore-charts stable/k8s-inventory/values.yaml). Override with K8S_INVENTORY_VERSION.
K8S_INVENTORY_VERSION="${K8S_INVENTORY_VERSION:-v1.8.2}"
MODULE=github.com/anchore/k8s-inventory
BIN_NAME=anchore-k8s-inventory
# A newer Go toolchain the module proxy serves (GOTOOLCHAIN); used only when the machine's Go is too old for the
# module's go.mod.
FALLBACK_TOOLCHAIN="${K8S_INVENTORY_FALLBACK_TOOLCHAIN:-go1.27.3}"

CACHE="${ANCHORE_OPERATOR_CACHE:-$HOME/.cache/anchore-operator}"
DIR="$CACHE/bin/k8s-inventory-$K8S_INVENTORY_VERSION"
mkdir -p "$CACHE/bin"
START=$(date +%s)
log() { printf '[build-k8s-inventory +%4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# One build at a time per cache (a second caller waits, then finds the binary cached).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build-k8s-inventory.lock"
  if ! flock -n 9; then
    log "another k8s-inventory build is running on $CACHE; waiting for it"
    flock 9
  fi
fi

if [[ -x "$DIR/$BIN_NAME" ]]; then
  log "k8s-inventory $K8S_INVENTORY_VERSION: cached in $DIR"
  echo "$DIR/$BIN_NAME"
  exit 0
fi

# Progress while a long go build runs, so a cold build is never silent.
with_progress() {
  local what="$1"; shift
  local t0; t0=$(date +%s)
  "$@" &
  local pid=$! ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$(( ticks + 1 ))
    if (( ticks % 15 == 0 )) && kill -0 "$pid" 2>/dev/null; then log "still building $what ($(( $(date +%s) - t0 ))s elapsed)"; fi
  done
  wait "$pid"
}

export CGO_ENABLED=0
export GOFLAGS=-mod=mod
# Same version stamping as the project's goreleaser build (`anchore-k8s-inventory version` prints it).
LDFLAGS="-s -w -X $MODULE/internal/version.version=${K8S_INVENTORY_VERSION#v} -X $MODULE/internal/version.gitTreeState=clean"
LDFLAGS+=" -X $MODULE/internal/version.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

OUT="$(mktemp "${TMPDIR:-/tmp}/build-k8s-inventory.XXXXXX")"
trap 'rm -f "$OUT"' EXIT
rm -rf "$DIR.tmp"; mkdir -p "$DIR.tmp"

build_once() { # runs one build attempt; stdout+stderr of go go to $OUT and to stderr
  if [[ -n "${K8S_INVENTORY_SRC:-}" ]]; then
    log "k8s-inventory $K8S_INVENTORY_VERSION: go build from the checkout $K8S_INVENTORY_SRC into $DIR (GOFLAGS=$GOFLAGS)"
    (cd "$K8S_INVENTORY_SRC" && GOFLAGS="$GOFLAGS -buildvcs=false" with_progress "k8s-inventory" \
      go build -trimpath -ldflags "$LDFLAGS" -o "$DIR.tmp/$BIN_NAME" .) > >(tee "$OUT" >&2) 2>&1
  else
    # `go install pkg@version` builds in module mode from the proxy and rejects a -mod flag in GOFLAGS ("-mod may
    # only be set to readonly or vendor"), so GOFLAGS is cleared for this one command, as build-binaries.sh does.
    log "k8s-inventory $K8S_INVENTORY_VERSION: go install $MODULE@$K8S_INVENTORY_VERSION into $DIR"
    GOFLAGS= GOBIN="$DIR.tmp" with_progress "k8s-inventory" \
      go install -trimpath -ldflags "$LDFLAGS" "$MODULE@$K8S_INVENTORY_VERSION" > >(tee "$OUT" >&2) 2>&1
  fi
}

log "using $(go version)${GOTOOLCHAIN:+ (GOTOOLCHAIN=$GOTOOLCHAIN)}"
status=0
build_once || status=$?
if (( status != 0 )) && grep -qE 'requires go >= ?1\.(2[7-9]|[3-9][0-9])' "$OUT" && [[ -z "${GOTOOLCHAIN:-}" ]]; then
  log "the module needs a newer Go than $(go env GOVERSION); retrying with GOTOOLCHAIN=$FALLBACK_TOOLCHAIN"
  export GOTOOLCHAIN="$FALLBACK_TOOLCHAIN"
  status=0
  build_once || status=$?
fi
sleep 0.2 # let the tee of the last attempt finish writing $OUT
if (( status != 0 )); then
  rm -rf "$DIR.tmp"
  if [[ -z "${K8S_INVENTORY_SRC:-}" ]] && grep -qE '(403 Forbidden|404 Not Found|410 Gone|not available|unknown revision|invalid version)' "$OUT"; then
    log "k8s-inventory $K8S_INVENTORY_VERSION: the Go module proxy does not serve $MODULE@$K8S_INVENTORY_VERSION (see the go error above)."
    log "To build anyway, put a checkout of $MODULE at $K8S_INVENTORY_VERSION somewhere and rerun with K8S_INVENTORY_SRC=<dir>,"
    log "or point the benchmark at a prebuilt binary with K8S_INVENTORY_BINARY=<path>."
    exit 3
  fi
  log "k8s-inventory $K8S_INVENTORY_VERSION: build failed (exit $status)"
  exit 1
fi

# `go install` names the binary after the module's last path element (k8s-inventory); releases call it anchore-k8s-inventory.
if [[ ! -x "$DIR.tmp/$BIN_NAME" && -x "$DIR.tmp/k8s-inventory" ]]; then mv "$DIR.tmp/k8s-inventory" "$DIR.tmp/$BIN_NAME"; fi
if [[ ! -x "$DIR.tmp/$BIN_NAME" ]]; then
  log "k8s-inventory $K8S_INVENTORY_VERSION: the build produced no $BIN_NAME (found: $(ls "$DIR.tmp" | tr '\n' ' '))"
  rm -rf "$DIR.tmp"
  exit 1
fi
rm -rf "$DIR"; mv "$DIR.tmp" "$DIR"
log "k8s-inventory $K8S_INVENTORY_VERSION: done, $(du -h "$DIR/$BIN_NAME" | cut -f1) in $DIR"
echo "$DIR/$BIN_NAME"
