#!/usr/bin/env bash
# Make a local stand-in for debian:trixie-slim with debootstrap, for machines without a registry.
# Prints the image name. Idempotent: the rootfs tarball and the .debs are cached in
# $C2C_IMAGE_CACHE (default /var/cache/c2cwsgiutils-image) and the image is built only if missing.
# Needs root, debootstrap and buildah. REBUILD=1 makes everything again.
set -euo pipefail

SUITE=${DEBIAN_SUITE:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${C2C_IMAGE_CACHE:-/var/cache/c2cwsgiutils-image}
IMAGE=${BASE_IMAGE_LOCAL:-localhost/c2cwsgiutils-base:$SUITE}
TARBALL=$CACHE/$SUITE-rootfs.tar
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

die() { echo "image-base.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap and buildah)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"

tmpdirs=()
trap 'rm -rf "${tmpdirs[@]}"' EXIT

if [ "${REBUILD:-0}" = 1 ]; then
  rm -f "$TARBALL"
  buildah rmi "$IMAGE" >/dev/null 2>&1 || true
fi

if [ ! -s "$TARBALL" ]; then
  mkdir -p "$CACHE/debs"
  work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  tmpdirs+=("$work")
  echo "image-base.sh: debootstrap $SUITE (about a minute)" >&2
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" "$SUITE" "$work/root" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  root=$work/root
  # What debian:*-slim leaves out, now and for later apt-get installs.
  cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete
  rm -rf "$root"/usr/share/{man,info}/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$TARBALL"
fi

if ! buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  ctx=$(mktemp -d)
  tmpdirs+=("$ctx")
  ln "$TARBALL" "$ctx/rootfs.tar" 2>/dev/null || cp "$TARBALL" "$ctx/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$ctx/Containerfile"
  buildah bud --quiet -f "$ctx/Containerfile" -t "$IMAGE" "$ctx" >/dev/null
fi
echo "$IMAGE"
