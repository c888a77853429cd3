#!/bin/sh
# The acceptance service: every app container answers through the network, then the example app's
# acceptance suite runs inside the image (its package, its gunicorn) against the composed databases.
set -eu
python3 - <<'PY'
import os, socket, urllib.request
url = os.environ["C2C_TEST_APP_URL"]
host = url.split("//", 1)[1].split(":", 1)[0]
addresses = sorted({info[4][0] for info in socket.getaddrinfo(host, 8080, proto=socket.IPPROTO_TCP)})
assert len(addresses) >= 2, f"expected two app containers behind {host}, got {addresses}"
for address in addresses:
    with urllib.request.urlopen(f"http://{address}:8080/api/ping", timeout=10) as response:
        assert response.status == 200, (address, response.status)
print(f"acceptance.sh: {len(addresses)} app containers answer: {addresses}")
PY
pip install --quiet pytest
exec python3 -m pytest -p no:cacheprovider acceptance_tests/tests/test_example_app.py
