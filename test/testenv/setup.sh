#!/usr/bin/env bash
# Installs and builds what the tests' Kubernetes needs. Logs go to stderr;
# stdout carries one path and nothing else.
#
#   setup.sh           the control plane, prints the kube-apiserver path:
#                        - etcd (Debian's etcd-server) if no etcd is on PATH,
#                        - python3-botocore (Debian) for the config round-trip test,
#                        - kube-apiserver built from the pinned k8s.io/kubernetes module.
#   setup.sh --tools   only the node's and the image build's Debian packages
#                      (containerd, runc, CNI plugins, iptables, conntrack, buildah,
#                      nsenter, CA certificates); prints nothing.
#   setup.sh --node    everything: the control plane, the tools, and kubelet,
#                      kube-scheduler, kube-controller-manager, kube-proxy (same
#                      module) and coredns (pinned CoreDNS module, reduced plugin set);
#                      and helm (pinned Go module); prints the cache directory.
#   setup.sh --helm    only helm; prints its path.
#
# Binaries are cached under $IRSA_TESTENV_CACHE (default
# ~/.cache/irsa-broker/testenv/<k8s version>); only missing ones are built.
# Idempotent: a second run finds everything and returns at once.
set -euo pipefail

MODE="${1:-}"
case "$MODE" in
  "" | --node | --tools | --helm) ;;
  *) echo "usage: $0 [--node | --tools | --helm]" >&2; exit 2 ;;
esac

K8S_VERSION="${K8S_VERSION:-v1.32.4}"
# CoreDNS v1.11.3 is the version kubeadm deploys with Kubernetes v1.32.
COREDNS_VERSION="${COREDNS_VERSION:-v1.11.3}"
CACHE="${IRSA_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/irsa-broker/testenv/$K8S_VERSION}"
APISERVER="$CACHE/kube-apiserver"
NODE_BINARIES=(kubelet kube-scheduler kube-controller-manager kube-proxy)

log() { echo "testenv: $*" >&2; }

WORK_DIRS=()
cleanup() {
  local d
  for d in "${WORK_DIRS[@]}"; do chmod -R u+w "$d" 2>/dev/null; rm -rf "$d"; done
}
trap cleanup EXIT

apt_updated=0
apt_install() { # apt_install PKG... : installs the given Debian packages, quietly
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null; apt_updated=1; fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

control_plane_packages() {
  if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
    log "installing etcd-server (Debian)"
    apt_install etcd-server
    # The package starts a system etcd on the default ports; tests use their own.
    (systemctl stop etcd 2>/dev/null || service etcd stop 2>/dev/null || pkill -x etcd 2>/dev/null) || true
  fi
  # botocore: the rendered AWS config is read back through the Python SDK's own
  # parser (core/awsconfig). Debian's package installs into /usr/bin/python3.
  if ! /usr/bin/python3 -c 'import botocore' >/dev/null 2>&1; then
    log "installing python3-botocore (Debian)"
    apt_install python3-botocore
  fi
}

node_packages() {
  # util-linux: nsenter; ca-certificates: the bundle the images carry.
  local want=(containerd runc containernetworking-plugins iptables conntrack buildah util-linux ca-certificates)
  local missing=() p
  for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" = 0 ] && return 0
  log "installing ${missing[*]} (Debian)"
  apt_install "${missing[@]}"
  if printf '%s\n' "${missing[@]}" | grep -qx containerd; then
    # The package may start a system containerd on /run/containerd; the tests
    # run their own, with their own root, state and socket.
    (systemctl stop containerd 2>/dev/null || service containerd stop 2>/dev/null) || true
    (systemctl disable containerd 2>/dev/null) || true
    local pid
    for pid in $(pgrep -x containerd 2>/dev/null || true); do
      # Only the package's daemon (started without arguments), never a test's.
      if [ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" = "/usr/bin/containerd " ]; then
        kill "$pid" 2>/dev/null || true
      fi
    done
  fi
}

# k8s_source prints a writable copy of k8s.io/kubernetes@$K8S_VERSION whose
# go.mod builds outside the Kubernetes repository (made once per run).
K8S_SRC=""
k8s_source() {
  if [ -n "$K8S_SRC" ]; then return 0; fi
  local src work staging_version
  src=$(cd /tmp && GO111MODULE=on GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { log "could not download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
  work=$(mktemp -d)
  WORK_DIRS+=("$work")
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  rm -rf "$work/vendor" "$work/go.work" "$work/go.work.sum"
  # The module's go.mod points every staging module at ./staging, which the
  # module zip lacks: point them at the published versions instead.
  staging_version="v0${K8S_VERSION#v1}"
  sed -i -E "s#^([[:space:]]*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+#\1\2 => \2 $staging_version#" "$work/go.mod"
  K8S_SRC="$work"
}

# k8s_build DIR PKG... builds the given ./cmd packages of the module into DIR.
k8s_build() {
  local out="$1"; shift
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local v=k8s.io/component-base/version
  k8s_source
  (cd "$K8S_SRC" && GOSUMDB=off GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -trimpath -o "$out/" \
      -ldflags "-X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean" \
      "$@")
}

apiserver() {
  if [ -x "$APISERVER" ]; then return 0; fi
  log "building kube-apiserver $K8S_VERSION (a few minutes, once)"
  mkdir -p "$CACHE"
  local tmp; tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); WORK_DIRS+=("$tmp")
  k8s_build "$tmp" ./cmd/kube-apiserver
  mv "$tmp/kube-apiserver" "$APISERVER"
}

node_binaries() {
  local missing=() b
  for b in "${NODE_BINARIES[@]}"; do [ -x "$CACHE/$b" ] || missing+=("$b"); done
  [ "${#missing[@]}" = 0 ] && return 0
  log "building ${missing[*]} $K8S_VERSION (a few minutes, once)"
  local tmp; tmp=$(mktemp -d "$CACHE/.build.XXXXXX"); WORK_DIRS+=("$tmp")
  # One invocation: the packages share one build (and kube-apiserver's cache).
  k8s_build "$tmp" "${missing[@]/#/./cmd/}"
  for b in "${missing[@]}"; do mv "$tmp/$b" "$CACHE/$b"; done
}

# coredns builds real CoreDNS from its module with only the plugins a cluster
# needs (docs/design/images.md, "Cluster DNS"): those of kubeadm's Corefile,
# bind (to serve on the node's address from the host) and log. A throwaway
# main module imports them for their registration side effects and restricts
# the Corefile directives to them, in CoreDNS's own order.
# Each entry is DIRECTIVE:PACKAGE (github.com/coredns/coredns/plugin/PACKAGE).
COREDNS_PLUGINS=(bind:bind cache:cache errors:errors forward:forward health:health
  kubernetes:kubernetes loadbalance:loadbalance log:log loop:loop
  prometheus:metrics ready:ready reload:reload)

coredns_complete() { # the binary registers every plugin of the list
  local listed p
  listed=$("$1" -plugins 2>/dev/null) || return 1
  for p in "${COREDNS_PLUGINS[@]}"; do
    grep -qx "[[:space:]]*dns\.${p%%:*}" <<<"$listed" || return 1
  done
}

coredns() {
  local bin="$CACHE/coredns" p imports="" directives=""
  if [ -x "$bin" ] && coredns_complete "$bin"; then return 0; fi
  log "building coredns $COREDNS_VERSION"
  mkdir -p "$CACHE"
  local mod; mod=$(mktemp -d); WORK_DIRS+=("$mod")
  for p in "${COREDNS_PLUGINS[@]}"; do
    imports+=$'\t_ "github.com/coredns/coredns/plugin/'"${p#*:}"$'"\n'
    directives+=" \"${p%%:*}\": true,"
  done
  cat >"$mod/go.mod" <<EOF
module irsa-testenv/coredns

go 1.21

require github.com/coredns/coredns $COREDNS_VERSION
EOF
  cat >"$mod/main.go" <<EOF
// CoreDNS with the plugins a Kubernetes cluster's DNS uses, nothing else.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

$imports)

var built = map[string]bool{$directives}

func main() {
	// Keep CoreDNS's execution order, restricted to the plugins built in, so
	// a Corefile naming any other plugin is refused at parse time.
	var dirs []string
	for _, d := range dnsserver.Directives {
		if built[d] {
			dirs = append(dirs, d)
		}
	}
	dnsserver.Directives = dirs
	coremain.Run()
}
EOF
  (cd "$mod" && GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$mod/coredns" .)
  coredns_complete "$mod/coredns" || { log "coredns built without every plugin of ${COREDNS_PLUGINS[*]}"; exit 1; }
  mv "$mod/coredns" "$bin"
}

# helm, built from its Go module (pinned) for the chart's tests: lint,
# template, install on the test cluster.
HELM_VERSION="${HELM_VERSION:-v3.19.0}"
HELM="$CACHE/helm-$HELM_VERSION"
helm_binary() {
  [ -x "$HELM" ] && return
  log "building helm $HELM_VERSION (a minute or two, once)"
  mkdir -p "$CACHE"
  local tmp; tmp=$(mktemp -d)
  GOBIN="$tmp" GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0 \
    go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$HELM"
  rm -rf "$tmp"
}

case "$MODE" in
  --helm)
    helm_binary
    echo "$HELM"
    ;;
  "")
    control_plane_packages
    apiserver
    echo "$APISERVER"
    ;;
  --tools)
    node_packages
    ;;
  --node)
    control_plane_packages
    node_packages
    apiserver
    node_binaries
    coredns
    helm_binary
    echo "$CACHE"
    ;;
esac
