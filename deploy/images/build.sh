#!/usr/bin/env bash
# Builds the project's OCI images FROM scratch with buildah and writes one OCI
# archive per image (docs/design/images.md):
#
#   $IRSA_IMAGES_DIR/irsa-broker.oci.tar    /usr/local/bin/irsa-broker (entrypoint)
#   $IRSA_IMAGES_DIR/irsa-sidecar.oci.tar   /usr/local/bin/irsa-sidecar (entrypoint), /usr/local/bin/irsactl
#   $IRSA_IMAGES_DIR/pause.oci.tar          /pause (the pod sandbox image)
#
# Each archive tags its image twice: the version (git describe, or
# $IRSA_IMAGE_VERSION) and "dev". The tags are bare (OCI ref.name), so the
# importer names the repository: ctr images import --base-name NAME ARCHIVE.
# Prints the archives' paths on stdout; logs go to stderr.
#
# `build.sh --version` prints the tag and builds nothing.
#
# Environment: IRSA_IMAGES_DIR (default bin/images), IRSA_IMAGE_VERSION,
# IRSA_IMAGE_SOURCE (the source label), IRSA_IMAGES_EXTRA: more images of the
# services' shape, space-separated NAME=./go/package (tests' stand-ins; the
# binary goes to /usr/local/bin/NAME, its entrypoint). Needs go, git and buildah
# (bash test/testenv/setup.sh --tools installs buildah). Rebuilds reuse Go's
# build cache; buildah's storage lives and dies with each run, so runs are
# independent of each other and of the machine's containers configuration.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }

VERSION="${IRSA_IMAGE_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}"
# An OCI tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}.
TAG=$(printf '%s' "$VERSION" | tr -c 'A-Za-z0-9_.-' '-' | sed 's/^[.-]*//' | cut -c1-128)
[ -n "$TAG" ] || TAG=dev
case "${1:-}" in
  --version) echo "$TAG"; exit 0 ;;
  "") ;;
  *) die "usage: $0 [--version]" ;;
esac

EXTRA_NAMES=() EXTRA_PKGS=()
for e in ${IRSA_IMAGES_EXTRA:-}; do
  [[ "$e" =~ ^([a-z0-9][a-z0-9._-]*)=(\./[A-Za-z0-9_./-]+)$ ]] || die "IRSA_IMAGES_EXTRA: want NAME=./package, got $e"
  case "${BASH_REMATCH[1]}" in irsa-broker | irsa-sidecar | pause) die "IRSA_IMAGES_EXTRA: $e would replace a project image" ;; esac
  EXTRA_NAMES+=("${BASH_REMATCH[1]}") EXTRA_PKGS+=("${BASH_REMATCH[2]}")
done

for c in go git buildah; do
  command -v "$c" >/dev/null 2>&1 || die "$c not found (install: bash test/testenv/setup.sh --tools)"
done
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA_BUNDLE" ] || die "$CA_BUNDLE missing (install: apt-get install ca-certificates)"

OUT="${IRSA_IMAGES_DIR:-bin/images}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE="${IRSA_IMAGE_SOURCE:-irsa-broker}"
# Layer and config timestamps from the commit, so that unchanged sources give
# the same image digests.
EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
ARCH=$(go env GOARCH)

WORK=$(mktemp -d)
PARTIAL=""
trap 'rm -rf "$WORK" $PARTIAL' EXIT
STATE="$WORK/buildah"

# buildah with a storage of this run's own (vfs: no kernel overlay, no mounts
# left behind; these images are one small layer each), its own configuration,
# and a policy that accepts the local images it copies: nothing from
# /etc/containers, nothing shared with a concurrent run.
cat >"$WORK/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$STATE/storage"
runroot = "$STATE/run"
EOF
: >"$WORK/registries.conf"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$WORK/policy.json"
export CONTAINERS_STORAGE_CONF="$WORK/storage.conf" CONTAINERS_REGISTRIES_CONF="$WORK/registries.conf"
export BUILDAH_ISOLATION=chroot STORAGE_DRIVER=vfs
B() { buildah --storage-driver vfs --root "$STATE/storage" --runroot "$STATE/run" "$@"; }

log "go build (version $VERSION)"
mkdir -p "$WORK/bin"
CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$WORK/bin/" \
  ./cmd/irsa-broker ./cmd/irsa-sidecar ./cmd/irsactl ./deploy/images/pause ${EXTRA_PKGS[@]+"${EXTRA_PKGS[@]}"}

# A root filesystem for the Go services: the binaries, the CA bundle (TLS to
# AWS and to the broker), the nonroot user, and an empty /tmp (the broker's
# TMPDIR; an emptyDir is mounted on it where the root filesystem is read-only).
service_rootfs() { # service_rootfs DIR BINARY[=NAME]...
  local dir="$1" b; shift
  install -d -m 0755 "$dir/usr/local/bin" "$dir/etc/ssl/certs"
  for b in "$@"; do install -m 0755 "$WORK/bin/${b%%=*}" "$dir/usr/local/bin/${b#*=}"; done
  install -m 0644 "$CA_BUNDLE" "$dir/etc/ssl/certs/ca-certificates.crt"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
  chmod 0644 "$dir/etc/passwd" "$dir/etc/group"
  install -d -m 1777 "$dir/tmp"
}

# image NAME ROOTFS TITLE DESCRIPTION CONFIG-FLAGS... builds NAME from scratch
# with ROOTFS as its only layer and writes $OUT/NAME.oci.tar.
image() {
  local name="$1" rootfs="$2" title="$3" description="$4"; shift 4
  local ctr layout="$WORK/layout-$name" archive="$OUT/$name.oci.tar" t
  log "buildah: $name:$TAG"
  find "$rootfs" -exec touch -h -d "@$EPOCH" {} +
  ctr=$(B from --quiet scratch)
  B copy --quiet "$ctr" "$rootfs/" / >/dev/null
  B config --os linux --arch "$ARCH" \
    --label org.opencontainers.image.title="$title" \
    --label org.opencontainers.image.description="$description" \
    --label org.opencontainers.image.version="$VERSION" \
    --label org.opencontainers.image.revision="$REVISION" \
    --label org.opencontainers.image.source="$SOURCE" \
    --created-by "deploy/images/build.sh" \
    "$@" "$ctr"
  B commit --quiet --rm --format oci --identity-label=false --omit-history --timestamp "$EPOCH" \
    --signature-policy "$WORK/policy.json" "$ctr" "$name:$TAG" >/dev/null
  for t in $(printf '%s\n' "$TAG" dev | sort -u); do
    B push --quiet --signature-policy "$WORK/policy.json" "$name:$TAG" "oci:$layout:$t"
  done
  local tmp; tmp=$(mktemp "$OUT/.$name.XXXXXX"); PARTIAL="$tmp"
  tar -C "$layout" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" -cf "$tmp" .
  chmod 0644 "$tmp"
  mv "$tmp" "$archive"; PARTIAL=""
  echo "$archive"
}

service_rootfs "$WORK/rootfs-broker" irsa-broker
image irsa-broker "$WORK/rootfs-broker" irsa-broker \
  "Brokers short-lived AWS credentials for Domino workloads (IRSA)" \
  --entrypoint '["/usr/local/bin/irsa-broker"]' --cmd '' \
  --user 65532:65532 --workingdir / --env TMPDIR=/tmp

service_rootfs "$WORK/rootfs-sidecar" irsa-sidecar irsactl
image irsa-sidecar "$WORK/rootfs-sidecar" irsa-sidecar \
  "Pod agent that maps a Domino workload's IAM roles through irsa-broker" \
  --entrypoint '["/usr/local/bin/irsa-sidecar"]' --cmd '' \
  --user 65532:65532 --workingdir / --env TMPDIR=/tmp

install -d -m 0755 "$WORK/rootfs-pause"
install -m 0755 "$WORK/bin/pause" "$WORK/rootfs-pause/pause"
image pause "$WORK/rootfs-pause" pause \
  "Pod sandbox process built from this repository (test clusters)" \
  --entrypoint '["/pause"]' --cmd '' --user 65535:65535 --workingdir /

for i in ${EXTRA_NAMES[@]+"${!EXTRA_NAMES[@]}"}; do
  name="${EXTRA_NAMES[$i]}" pkg="${EXTRA_PKGS[$i]}"
  service_rootfs "$WORK/rootfs-x-$name" "$(basename "$pkg")=$name"
  image "$name" "$WORK/rootfs-x-$name" "$name" "Built from $pkg of this repository" \
    --entrypoint "[\"/usr/local/bin/$name\"]" --cmd '' \
    --user 65532:65532 --workingdir / --env TMPDIR=/tmp
done
