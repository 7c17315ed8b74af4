#!/usr/bin/env bash
# Installs what the test control plane needs and prints nothing else on success:
#   - etcd (Debian's etcd-server) if no etcd is on PATH,
#   - python3-botocore (Debian) for the config round-trip test,
#   - kube-apiserver built from the pinned k8s.io/kubernetes module, cached.
# Idempotent: a second run finds both and returns at once.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.32.4}"
CACHE="${IRSA_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/irsa-broker/testenv/$K8S_VERSION}"
APISERVER="$CACHE/kube-apiserver"

log() { echo "testenv: $*" >&2; }

if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  log "installing etcd-server (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq etcd-server >/dev/null
  # The package starts a system etcd on the default ports; tests use their own.
  (systemctl stop etcd 2>/dev/null || service etcd stop 2>/dev/null || pkill -x etcd 2>/dev/null) || true
fi

# botocore: the rendered AWS config is read back through the Python SDK's own
# parser (core/awsconfig). Debian's package installs into /usr/bin/python3.
if ! /usr/bin/python3 -c 'import botocore' >/dev/null 2>&1; then
  log "installing python3-botocore (Debian)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq python3-botocore >/dev/null
fi

if [ ! -x "$APISERVER" ]; then
  log "building kube-apiserver $K8S_VERSION (a few minutes, once)"
  mkdir -p "$CACHE"
  export GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local
  src=$(cd /tmp && GO111MODULE=on go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  rm -rf "$work/vendor" "$work/go.work" "$work/go.work.sum"
  # The module's go.mod points every staging module at ./staging, which the
  # module zip lacks: point them at the published versions instead.
  staging_version="v0${K8S_VERSION#v1}"
  sed -i -E "s#^([[:space:]]*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+#\1\2 => \2 $staging_version#" "$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -o "$APISERVER.tmp" ./cmd/kube-apiserver)
  mv "$APISERVER.tmp" "$APISERVER"
fi
echo "$APISERVER"
