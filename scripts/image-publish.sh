#!/usr/bin/env bash
# Push the base image under the tags of this build (scripts/image_tags.py): `latest` for main,
# X.Y.Z, X.Y and X for a tag X.Y.Z, N for a release_N branch, nothing for other branches.
# Pushes with docker when an engine answers (logging in first when DOCKER_USERNAME and
# DOCKER_PASSWORD are set); otherwise, or with DRY_RUN=1, only says what it would push.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-camptocamp/c2cwsgiutils}
BRANCH=${BRANCH_NAME:-$(git rev-parse --abbrev-ref HEAD)}
TAG=${TAG_NAME:-$(git describe --tags --exact-match 2>/dev/null || true)}
PYTHON=${PYTHON:-python3}

mapfile -t targets < <("$PYTHON" scripts/image_tags.py --branch "$BRANCH" --tag "$TAG" --image "$IMAGE")
if [ "${#targets[@]}" = 0 ]; then
  echo "image-publish.sh: branch '$BRANCH'${TAG:+, tag '$TAG'} publishes nothing"
  exit 0
fi
if [ "${DRY_RUN:-0}" = 1 ] || ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "image-publish.sh: would push $IMAGE:latest as ${targets[*]}"
  exit 0
fi
if [ -n "${DOCKER_USERNAME:-}" ] && [ -n "${DOCKER_PASSWORD:-}" ]; then
  printf '%s' "$DOCKER_PASSWORD" | docker login --username "$DOCKER_USERNAME" --password-stdin >/dev/null
fi
for target in "${targets[@]}"; do
  docker tag "$IMAGE:latest" "$target"
  docker push --quiet "$target"
done
