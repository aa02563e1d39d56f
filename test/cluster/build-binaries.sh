#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok)
# and helm from the Go module proxy, by module name, pinned, plus the statuscheck test tool (test/tools/statuscheck).
# Binaries are cached by version (statuscheck: by a hash of its sources) outside the repo:
#   ${ANCHORE_OPERATOR_CACHE:-~/.cache/anchore-operator}/bin/<component>-<version>/
# A binary is rebuilt only when its version changes. Never commit what this produces.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.36.3}"     # newest minor that builds with Go 1.26
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"    # the etcd client version k8s 1.36 uses
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.310.0}" # promtool: Prometheus 3.10 (3.x is published as module v0.3xx)

CACHE="${ANCHORE_OPERATOR_CACHE:-$HOME/.cache/anchore-operator}"
WORK="$CACHE/build"
mkdir -p "$CACHE/bin" "$WORK"
START=$(date +%s)
log() { printf '[build-binaries +%4ss] %s\n' "$(( $(date +%s) - START ))" "$*" >&2; }

# One build at a time per cache: a second caller (cluster:up while cluster:build runs, parallel test runs) waits and
# then finds everything cached, instead of both writing the same .tmp directories.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.build.lock"
  if ! flock -n 9; then
    log "another build is running on $CACHE; waiting for it"
    flock 9
  fi
fi

# Shows progress while a long go build runs, so a cold build is never silent.
with_progress() {
  local what="$1"; shift
  local t0; t0=$(date +%s)
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 30
    kill -0 "$pid" 2>/dev/null && log "still building $what ($(( $(date +%s) - t0 ))s elapsed)"
  done
  wait "$pid"
}

export CGO_ENABLED=0
export GOFLAGS=-mod=mod

k8s_minor="${K8S_VERSION#v1.}"; k8s_minor="${k8s_minor%%.*}"
staging_version="v0.${K8S_VERSION#v1.}"
K8S_DIR="$CACHE/bin/kube-$K8S_VERSION"
if [[ -x "$K8S_DIR/kube-apiserver" && -x "$K8S_DIR/kube-controller-manager" && -x "$K8S_DIR/kube-scheduler" && -x "$K8S_DIR/kubectl" ]]; then
  log "kubernetes $K8S_VERSION: cached in $K8S_DIR"
else
  log "kubernetes $K8S_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl into $K8S_DIR (cold: 10-25 min on 2 cores)"
  w="$WORK/kube-$K8S_VERSION"; rm -rf "$w"; mkdir -p "$w"
  # k8s.io/kubernetes publishes its go.mod without the local replaces; every staging module is required at v0.0.0,
  # which does not exist on the proxy. The published k8s.io/<m> v0.X.Y matches Kubernetes v1.X.Y, so pin each.
  mod_file=$(curl -fsS "${GOPROXY_URL:-https://proxy.golang.org}/k8s.io/kubernetes/@v/$K8S_VERSION.mod" 2>/dev/null || true)
  if [[ -z "$mod_file" ]]; then
    mod_file=$(cd "$w" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' | xargs cat)
  fi
  staging=$(printf '%s\n' "$mod_file" | grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' | awk '{print $1}' | sort -u)
  {
    echo "module anchore-operator.local/kube-build"
    echo
    echo "go 1.26.0"
    echo
    echo "godebug default=go1.26"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    for m in $staging; do echo "replace $m => $m $staging_version"; done
  } > "$w/go.mod"
  cat > "$w/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  log "resolving modules (go mod tidy)"
  (cd "$w" && with_progress "go mod tidy" go mod tidy -e >/dev/null)
  build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
    ldflags+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
  done
  mkdir -p "$K8S_DIR.tmp"
  (cd "$w" && with_progress "kubernetes $K8S_VERSION" go build -tags selinux,notest -trimpath -ldflags "$ldflags" -o "$K8S_DIR.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  rm -rf "$K8S_DIR"; mv "$K8S_DIR.tmp" "$K8S_DIR"
  log "kubernetes $K8S_VERSION: done"
fi

ETCD_DIR="$CACHE/bin/etcd-$ETCD_VERSION"
if [[ -x "$ETCD_DIR/etcd" ]]; then
  log "etcd $ETCD_VERSION: cached in $ETCD_DIR"
else
  log "etcd $ETCD_VERSION: building go.etcd.io/etcd/server/v3 into $ETCD_DIR"
  w="$WORK/etcd-$ETCD_VERSION"; rm -rf "$w"; mkdir -p "$w"
  # server/go.mod has local replaces, so `go install` refuses it; a wrapper module that requires it builds fine.
  printf 'module anchore-operator.local/etcd-build\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > "$w/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > "$w/tools.go"
  (cd "$w" && go mod tidy -e >/dev/null && mkdir -p "$ETCD_DIR.tmp" && \
    with_progress "etcd" go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR.tmp/etcd" go.etcd.io/etcd/server/v3)
  rm -rf "$ETCD_DIR"; mv "$ETCD_DIR.tmp" "$ETCD_DIR"
  log "etcd $ETCD_VERSION: done"
fi

go_install() { # name version module-path binary-name
  local name="$1" version="$2" pkg="$3" bin="$4" ldflags="${5:-}"
  local dir="$CACHE/bin/$name-$version"
  if [[ -x "$dir/$bin" ]]; then log "$name $version: cached in $dir"; return; fi
  log "$name $version: go install $pkg@$version into $dir"
  mkdir -p "$dir.tmp"
  GOFLAGS= GOBIN="$dir.tmp" with_progress "$name" go install -trimpath -ldflags "-s -w $ldflags" "$pkg@$version"
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
  log "$name $version: done"
}

go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok kwok
# Without these ldflags helm assumes Kubernetes v1.20 for `template`/`lint` capabilities.
go_install helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
PROMTOOL_DIR="$CACHE/bin/promtool-$PROMETHEUS_VERSION"
if [[ -x "$PROMTOOL_DIR/promtool" ]]; then
  log "promtool $PROMETHEUS_VERSION: cached in $PROMTOOL_DIR"
else
  log "promtool $PROMETHEUS_VERSION: building github.com/prometheus/prometheus/cmd/promtool into $PROMTOOL_DIR"
  w="$WORK/promtool-$PROMETHEUS_VERSION"; rm -rf "$w"; mkdir -p "$w"
  # `go install …@version` is refused (prometheus's go.mod has replace/exclude directives), so build from a wrapper
  # module that copies its replace lines. remove_all_sd leaves out the service-discovery plugins promtool does not
  # need, whose newest dependency pins (e.g. hashicorp/nomad/api pseudo-versions) the module proxy does not serve.
  { printf 'module anchore-operator.local/promtool-build\n\ngo 1.26.0\n\nrequire github.com/prometheus/prometheus %s\n\n' "$PROMETHEUS_VERSION"
    curl -fsS "${GOPROXY_URL:-https://proxy.golang.org}/github.com/prometheus/prometheus/@v/$PROMETHEUS_VERSION.mod" | grep -E '^replace ' || true
  } > "$w/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/promtool"\n' > "$w/tools.go"
  prom_mod="${PROMETHEUS_VERSION#v0.}"   # v0.310.0 is Prometheus 3.10.0
  prom_semver="3.$(( ${prom_mod%%.*} - 300 )).${prom_mod#*.}"
  (cd "$w" && with_progress "go mod tidy (promtool)" go mod tidy -e >/dev/null && mkdir -p "$PROMTOOL_DIR.tmp" && \
    with_progress "promtool" go build -tags remove_all_sd -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$prom_semver" -o "$PROMTOOL_DIR.tmp/promtool" github.com/prometheus/prometheus/cmd/promtool)
  rm -rf "$PROMTOOL_DIR"; mv "$PROMTOOL_DIR.tmp" "$PROMTOOL_DIR"
  log "promtool $PROMETHEUS_VERSION: done"
fi

# statuscheck (test/tools/statuscheck): kstatus from sigs.k8s.io/cli-utils and Argo CD-style Lua health checks with
# gopher-lua, for the GitOps status tests. Built from the repository's own module; cached by a hash of its sources.
STATUSCHECK_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tools/statuscheck" && pwd)"
statuscheck_hash=$(cat "$STATUSCHECK_SRC/go.mod" "$STATUSCHECK_SRC/go.sum" "$STATUSCHECK_SRC"/*.go | sha256sum | cut -c1-16)
STATUSCHECK_DIR="$CACHE/bin/statuscheck-$statuscheck_hash"
if [[ -x "$STATUSCHECK_DIR/statuscheck" ]]; then
  log "statuscheck $statuscheck_hash: cached in $STATUSCHECK_DIR"
else
  log "statuscheck $statuscheck_hash: building $STATUSCHECK_SRC into $STATUSCHECK_DIR"
  mkdir -p "$STATUSCHECK_DIR.tmp"
  # -mod=readonly: go.mod/go.sum in the repository are used as they are, never rewritten by a build.
  (cd "$STATUSCHECK_SRC" && GOFLAGS="-mod=readonly -buildvcs=false" with_progress "statuscheck" go build -trimpath -ldflags "-s -w" -o "$STATUSCHECK_DIR.tmp/statuscheck" .)
  rm -rf "$STATUSCHECK_DIR"; mv "$STATUSCHECK_DIR.tmp" "$STATUSCHECK_DIR"
  log "statuscheck $statuscheck_hash: done"
fi

log "all binaries ready under $CACHE/bin"
# Machine-readable paths for the caller.
cat > "$CACHE/bin/paths.env" <<ENV
KUBE_APISERVER=$K8S_DIR/kube-apiserver
KUBE_CONTROLLER_MANAGER=$K8S_DIR/kube-controller-manager
KUBE_SCHEDULER=$K8S_DIR/kube-scheduler
KUBECTL=$K8S_DIR/kubectl
ETCD=$ETCD_DIR/etcd
KWOK=$CACHE/bin/kwok-$KWOK_VERSION/kwok
HELM=$CACHE/bin/helm-$HELM_VERSION/helm
PROMTOOL=$CACHE/bin/promtool-$PROMETHEUS_VERSION/promtool
STATUSCHECK=$STATUSCHECK_DIR/statuscheck
ENV
