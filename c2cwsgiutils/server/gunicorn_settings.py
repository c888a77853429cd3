"""gunicorn settings from environment variables, with defaults fit for a container.

``c2cwsgiutils.gunicorn_config`` (the configuration file ``c2cwsgiutils_run`` hands to gunicorn)
takes its values from :func:`settings_from_environ`.
"""

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from c2cwsgiutils.config_utils import SettingsGroup, int_at_least, setting

DEFAULT_PID_FILE = "/tmp/c2cwsgiutils.pid"  # noqa: S108 (a pid file, in the container's own /tmp)
DEFAULT_CONFIG_FILE = "/app/production.ini"
_NO_ACCESS_LOG = frozenset(("off", "none", "false", "no", "0"))


def local_address(bind: str) -> tuple[str, int]:
    """Return the host and port to call the server on: the first TCP address of a ``GUNICORN_BIND`` value.

    ``0.0.0.0`` (or no host) is called as ``127.0.0.1``, ``::`` as ``::1``; gunicorn's default
    port is 8000. A ValueError when every address is a Unix socket or a file descriptor.
    """
    for item in bind.replace(",", " ").split():
        if item.startswith(("unix:", "fd://")):
            continue
        host, _, port = item.rpartition(":")
        host = host.strip("[]")
        if host in ("", "0.0.0.0"):  # noqa: S104 (this is parsing, not binding)
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return host, int(port or 8000)
    raise ValueError(f"GUNICORN_BIND={bind!r} has no TCP address")


def _access_log(raw: str) -> str | None:
    return None if raw.strip().lower() in _NO_ACCESS_LOG else raw


@dataclasses.dataclass(frozen=True)
class ServerSettings(SettingsGroup):
    """What ``c2cwsgiutils_run`` and gunicorn read, from the environment only."""

    TITLE = "Serving"

    config_file: str = setting("C2CWSGIUTILS_CONFIG", None, DEFAULT_CONFIG_FILE, "The app's ini file.")
    bind: str = setting(
        "GUNICORN_BIND",
        None,
        ":8080",
        "Address(es) to listen on, separated by spaces or commas (`127.0.0.1:8080`, `unix:/run/app.sock`).",
    )
    workers: int | None = setting(
        "GUNICORN_WORKERS",
        None,
        None,
        "Worker processes. CPUs are those this process may run on, capped by its cgroup's CPU quota "
        "(rounded up), so a container limited to 1.5 CPUs gets 5 workers.",
        parse=int_at_least(1),
        default_doc="2 × CPUs + 1",  # noqa: RUF001 (a multiplication)
    )
    threads: int = setting(
        "GUNICORN_THREADS",
        None,
        4,
        "Threads per worker (gunicorn's `gthread` worker).",
        parse=int_at_least(1),
    )
    timeout: int = setting(
        "GUNICORN_TIMEOUT",
        None,
        30,
        "Seconds a worker may be silent before the master kills and replaces it.",
        parse=int_at_least(1),
    )
    graceful_timeout: int = setting(
        "GUNICORN_GRACEFUL_TIMEOUT",
        None,
        30,
        "Seconds a stopping worker gets to finish its requests.",
        parse=int_at_least(1),
    )
    keepalive: int = setting(
        "GUNICORN_KEEPALIVE",
        None,
        2,
        "Seconds an idle keep-alive connection is kept (0: none).",
        parse=int_at_least(0),
    )
    access_log: str | None = setting(
        "GUNICORN_ACCESS_LOG",
        None,
        "-",
        "Access log: `-` is stdout, else a file; `off` switches it off. Secret-looking query "
        "parameters (`secret`, `password`, `token`, `api_key`…) are logged as `***`.",
        parse=_access_log,
    )
    pid_file: str = setting(
        "C2CWSGIUTILS_PID_FILE",
        None,
        DEFAULT_PID_FILE,
        "Where the gunicorn master writes its pid, for `c2cwsgiutils_reload`.",
    )
    user: str = setting(
        "C2CWSGIUTILS_USER",
        None,
        "",
        "The user `c2cwsgiutils_run` serves as when started as root (`uid:gid` or names, `www-data`): it "
        "switches before gunicorn starts, so the master, its workers and the pid file are that user's, "
        "and it refuses to serve as root if it cannot. Started as another user (`docker run --user`), it "
        "keeps that one. The image sets `33:33` (www-data).",
    )
    params: str = setting(
        "GUNICORN_PARAMS",
        None,
        "",
        "More gunicorn command-line options, appended last so they win (`--max-requests 1000`). "
        "Arguments given to `c2cwsgiutils_run` itself are passed on the same way.",
    )


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
    return str(ServerSettings.declaration("pid_file").resolve(None, environ))


def settings_from_environ(
    environ: Mapping[str, str], cgroup_root: Path = Path("/sys/fs/cgroup")
) -> dict[str, Any]:
    """Return gunicorn settings, by gunicorn name, from ``GUNICORN_*`` environment variables."""
    server = ServerSettings.resolve(None, environ)
    return {
        "bind": server.bind.replace(",", " ").split(),
        "workers": server.workers or 2 * available_cpus(cgroup_root) + 1,
        "worker_class": "gthread",
        "threads": server.threads,
        # Whole seconds, as gunicorn wants them.
        "timeout": server.timeout,
        "graceful_timeout": server.graceful_timeout,
        "keepalive": server.keepalive,
        "accesslog": server.access_log,
        "pidfile": server.pid_file,
        "logger_class": "c2cwsgiutils.server.gunicorn_logging.ScrubbingLogger",
        # gunicorn's control socket is one more way in, and several servers would share its path.
        "control_socket_disable": True,
        # The forwarding headers are c2cwsgiutils.client_info's (C2C_TRUSTED_PROXIES, which an ini
        # file may set too): gunicorn would otherwise take X-Forwarded-Proto from loopback on its own.
        "forwarded_allow_ips": environ.get("FORWARDED_ALLOW_IPS", ""),
    }
