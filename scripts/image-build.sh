#!/usr/bin/env bash
# Build the base image (Dockerfile), the example app's image (acceptance_tests/app/Dockerfile) and
# the legacy app's (acceptance_tests/app_legacy/Dockerfile, written for the original base image).
# With a Docker engine that answers, `docker build` on debian:trixie-slim; otherwise buildah on a
# base made here by scripts/image-base.sh. Prints the app image's name on the last line.
#   IMAGE=camptocamp/c2cwsgiutils:latest APP_IMAGE=c2cwsgiutils-app:latest
#   LEGACY_IMAGE=c2cwsgiutils-app-legacy:latest (the names)
#   VERSION, REVISION, CREATED: OCI labels (default: from git)
#   GIT_HASH, GIT_TAG: the example app's versions.json (default: REVISION, and the commit's tag if any)
#   PIP_CERT, PIP_INDEX_URL (default: this machine's pip configuration): given to pip in the build as
#   secrets, when set
#   NO_CACHE=1: rebuild every step (the nightly release_N builds, to get Debian's updates)
#   IMAGE_BUILDER=buildah: use buildah even where a Docker engine answers
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-camptocamp/c2cwsgiutils:latest}
APP_IMAGE=${APP_IMAGE:-c2cwsgiutils-app:latest}
LEGACY_IMAGE=${LEGACY_IMAGE:-c2cwsgiutils-app-legacy:latest}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
# The commit's date rather than the clock, so that an unchanged tree rebuilds from the cache.
CREATED=${CREATED:-$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
# The example app's versions.json (c2cwsgiutils_genversion.py): the commit, and its tag if it has one.
GIT_HASH=${GIT_HASH:-$REVISION}
GIT_TAG=${GIT_TAG-$(git describe --tags --exact-match 2>/dev/null || true)}

die() { echo "image-build.sh: $*" >&2; exit 1; }

args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" --build-arg "CREATED=$CREATED")
app_args=(--build-arg "GIT_HASH=$GIT_HASH" --build-arg "GIT_TAG=$GIT_TAG")
# The legacy app's Dockerfile is the original's form: no secret mount (its install needs no download).
legacy_args=(--build-arg "GIT_HASH=$GIT_HASH" --build-arg "BASE_IMAGE=$IMAGE" --tag "$LEGACY_IMAGE")
cache=()
[ "${NO_CACHE:-0}" = 1 ] && cache=(--no-cache)
secrets=()
pip_config() { python3 -m pip config list 2>/dev/null | sed -n "s/^global\.$1='\(.*\)'\$/\1/p" | tail -n 1; }
PIP_CERT=${PIP_CERT:-$(pip_config cert)}
PIP_INDEX_URL=${PIP_INDEX_URL:-$(pip_config index-url)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${PIP_CERT:-}" ]; then
  [ -r "$PIP_CERT" ] || die "PIP_CERT=$PIP_CERT is not a readable file"
  secrets+=(--secret "id=pipcert,src=$PIP_CERT")
fi
if [ -n "${PIP_INDEX_URL:-}" ]; then
  printf '%s' "$PIP_INDEX_URL" >"$tmp/pipindex"
  secrets+=(--secret "id=pipindex,src=$tmp/pipindex")
fi

if [ "${IMAGE_BUILDER:-}" != buildah ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  export DOCKER_BUILDKIT=1
  docker build --pull "${cache[@]}" "${args[@]}" "${secrets[@]}" --tag "$IMAGE" . >&2
  docker build "${secrets[@]}" "${app_args[@]}" --build-arg "BASE_IMAGE=$IMAGE" --tag "$APP_IMAGE" acceptance_tests/app >&2
  docker build "${legacy_args[@]}" acceptance_tests/app_legacy >&2
else
  command -v buildah >/dev/null || die "neither a Docker engine nor buildah (apt-get install buildah debootstrap)"
  export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}
  base=${BASE_IMAGE:-$(scripts/image-base.sh)}
  # docker format: the OCI format has no HEALTHCHECK. --layers: a rebuild reuses unchanged steps.
  bud=(buildah bud --quiet --layers "${cache[@]}" --format docker --network host "${secrets[@]}")
  "${bud[@]}" "${args[@]}" --build-arg "BASE_IMAGE=$base" --tag "$IMAGE" . >&2
  "${bud[@]}" "${app_args[@]}" --build-arg "BASE_IMAGE=$IMAGE" --tag "$APP_IMAGE" acceptance_tests/app >&2
  buildah bud --quiet --layers "${cache[@]}" --format docker --network host "${legacy_args[@]}" \
    acceptance_tests/app_legacy >&2
fi
echo "$APP_IMAGE"
