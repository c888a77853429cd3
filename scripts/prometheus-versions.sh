#!/usr/bin/env bash
# Compare c2cwsgiutils.metrics.prometheus_merge with prometheus_client's own collector under every
# prometheus_client series it is used with (prometheus_merge.TESTED_VERSIONS): each one's wheel
# (pure Python) is put first on PYTHONPATH for tests/unit/test_prometheus_merge.py.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
versions=$("$BIN/python" -c 'from c2cwsgiutils.metrics.prometheus_merge import TESTED_VERSIONS as v; print(*v)')
for series in $versions; do
  "$BIN/pip" download --quiet --no-deps --dest "$work/$series" "prometheus_client==$series.*"
  "$BIN/python" -m zipfile -e "$work/$series"/prometheus_client-*.whl "$work/$series/lib"
  version=$(PYTHONPATH="$work/$series/lib" "$BIN/python" -c 'import prometheus_client, importlib.metadata as m; print(m.version("prometheus_client"))')
  echo "prometheus_client $version:"
  # Older releases leave their files open when a test switches the process identity: not ours.
  PYTHONPATH="$work/$series/lib" "$BIN/pytest" -q -p no:cacheprovider \
    -W ignore::pytest.PytestUnraisableExceptionWarning tests/unit/test_prometheus_merge.py
done
