"""gunicorn settings from environment variables, with defaults fit for a container.

``c2cwsgiutils.gunicorn_config`` (the configuration file ``c2cwsgiutils_run`` hands to gunicorn)
takes its values from :func:`settings_from_environ`.
"""

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gunicorn import glogging

from c2cwsgiutils import config as c2c_config
from c2cwsgiutils.scrub import scrub_query_string, scrub_url

DEFAULT_PID_FILE = "/tmp/c2cwsgiutils.pid"  # noqa: S108 (a pid file, in the container's own /tmp)
_NO_ACCESS_LOG = frozenset(("off", "none", "false", "no", "0"))


def cgroup_cpu_limit(cgroup_root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Return the CPU quota of this process's cgroup, in CPUs, or None when there is none."""
    try:  # cgroup v2: "max 100000" or "<quota> <period>"
        quota, period = (cgroup_root / "cpu.max").read_text(encoding="ascii").split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    for directory in ("cpu", "cpu,cpuacct"):  # cgroup v1
        try:
            quota_us = int((cgroup_root / directory / "cpu.cfs_quota_us").read_text(encoding="ascii"))
            period_us = int((cgroup_root / directory / "cpu.cfs_period_us").read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    return None


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """Return how many CPUs this process may use: its affinity, capped by its cgroup quota."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return cpus


def pid_file(environ: Mapping[str, str]) -> str:
    """Return where the gunicorn master writes its pid (``C2CWSGIUTILS_PID_FILE``)."""
    return str(c2c_config.get_str(None, "C2CWSGIUTILS_PID_FILE", None, DEFAULT_PID_FILE, environ=environ))


def _access_log(raw: str) -> str | None:
    return None if raw.strip().lower() in _NO_ACCESS_LOG else raw


def settings_from_environ(
    environ: Mapping[str, str], cgroup_root: Path = Path("/sys/fs/cgroup")
) -> dict[str, Any]:
    """Return gunicorn settings, by gunicorn name, from ``GUNICORN_*`` environment variables."""

    def env_int(name: str, default: int, minimum: int = 1) -> int:
        return c2c_config.get_int(None, name, None, default, environ=environ, minimum=minimum)

    bind = str(c2c_config.get_str(None, "GUNICORN_BIND", None, ":8080", environ=environ))
    return {
        "bind": bind.replace(",", " ").split(),
        "workers": env_int("GUNICORN_WORKERS", 2 * available_cpus(cgroup_root) + 1),
        "worker_class": "gthread",
        "threads": env_int("GUNICORN_THREADS", 4),
        # Whole seconds, as gunicorn wants them.
        "timeout": env_int("GUNICORN_TIMEOUT", 30),
        "graceful_timeout": env_int("GUNICORN_GRACEFUL_TIMEOUT", 30),
        "keepalive": env_int("GUNICORN_KEEPALIVE", 2, minimum=0),
        "accesslog": c2c_config.get(None, "GUNICORN_ACCESS_LOG", None, "-", _access_log, environ=environ),
        "pidfile": pid_file(environ),
        "logger_class": "c2cwsgiutils.gunicorn_settings.ScrubbingLogger",
        # gunicorn's control socket is one more way in, and several servers would share its path.
        "control_socket_disable": True,
    }


class ScrubbingLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with secrets removed from the request line and referrer of access logs."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """Return gunicorn's access log atoms, scrubbed."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "q", "f", "{referer}i"):
            value = atoms.get(key)
            if isinstance(value, str) and "=" in value:
                atoms[key] = scrub_query_string(value) if key == "q" else scrub_url(value)
        return atoms
