#!/usr/bin/env python3
"""The image's health check: the server on the first TCP address of GUNICORN_BIND answers.

It asks for ``$C2C_BASE_PATH/health``, the liveness view of ``c2cwsgiutils.health_check``: a
worker answers it without touching any dependency (a database that is down must not get the
container restarted). Any HTTP answer below 500 counts, so the check works whatever views the app
has (a 404 still proves a worker answers). Exit 0: healthy, 1: not.
"""

import http.client
import os
import sys

from c2cwsgiutils.server.gunicorn_settings import local_address


def main() -> int:
    """Ask the server for the liveness view; report the status."""
    try:
        host, port = local_address(os.environ.get("GUNICORN_BIND") or ":8080")
    except ValueError as error:
        print(f"c2cwsgiutils_healthcheck: {error}", file=sys.stderr)
        return 1
    path = os.environ.get("C2C_BASE_PATH") or "/c2c"
    path = path.rstrip("/") + "/health"
    connection = http.client.HTTPConnection(host, port, timeout=4)
    try:
        connection.request("GET", path, headers={"User-Agent": "c2cwsgiutils_healthcheck"})
        status = connection.getresponse().status
    except OSError as error:
        print(f"c2cwsgiutils_healthcheck: http://{host}:{port}{path}: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    print(f"c2cwsgiutils_healthcheck: http://{host}:{port}{path}: {status}")
    return 0 if status < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
