"""The gunicorn configuration file that ``c2cwsgiutils_run`` uses: ``-c python:c2cwsgiutils.gunicorn_config``.

A gunicorn configuration file is read for its module-level names, so this is the one module
that reads the environment when imported; it is meant to be imported by gunicorn only. The
values and their environment variables are in :mod:`c2cwsgiutils.server.gunicorn_settings`; the
server hooks below record the master's identity beside its pid file
(:mod:`c2cwsgiutils.server.master_identity`) and which workers have loaded the app
(:mod:`c2cwsgiutils.server.worker_readiness`, for ``c2cwsgiutils_reload``), whether gunicorn was started
by ``c2cwsgiutils_run`` or directly.
"""

import os
from typing import Any

from c2cwsgiutils import prometheus, sentry
from c2cwsgiutils.server import gunicorn_settings, master_identity, worker_readiness
from c2cwsgiutils.server.gunicorn_settings import settings_from_environ

globals().update(settings_from_environ(os.environ))


def on_starting(server: Any) -> None:
    """Record the master's identity beside its pid file, which gunicorn has just written.

    Report the master's errors to Sentry when ``SENTRY_URL`` is set.

    Also prepare Prometheus' multiprocess directory if ``c2cwsgiutils_run`` did not (gunicorn
    started directly), before any worker is forked.
    """
    if prometheus.MULTIPROC_ENV not in os.environ and prometheus.enabled(os.environ):
        try:
            os.environ.update(prometheus.prepare_multiprocess_directory(os.environ, os.getpid()))
        except OSError as error:
            server.log.warning("cannot prepare the Prometheus multiprocess directory: %s", error)
    try:
        # The master's own errors (a worker killed or timed out) are events too; each worker gets a
        # client of its own after the fork.
        sentry.init(None)
    except Exception as error:
        server.log.warning("cannot report the master's errors to Sentry: %s", error)
    pid_file = server.cfg.pidfile
    if pid_file is None:
        return
    try:
        master_identity.record(pid_file)
    except (OSError, master_identity.PidFileError) as error:
        # Serving matters more than reloading: c2cwsgiutils_reload will refuse this master.
        server.log.warning("cannot record the master's identity beside %s: %s", pid_file, error)
    try:
        worker_readiness.prepare(pid_file)
    except OSError as error:
        # c2cwsgiutils_reload then falls back to SIGHUP.
        server.log.warning("cannot prepare the workers' ready marks beside %s: %s", pid_file, error)


def on_exit(server: Any) -> None:
    """Remove the master's identity file and ready marks; gunicorn has just removed its pid file."""
    if server.cfg.pidfile is not None:
        master_identity.forget(server.cfg.pidfile)
        worker_readiness.forget(server.cfg.pidfile)


def post_worker_init(worker: Any) -> None:
    """Mark this worker ready for ``c2cwsgiutils_reload``: it has loaded the app."""
    if worker.cfg.pidfile is not None:
        try:
            worker_readiness.mark_ready(worker.cfg.pidfile, os.getpid())
        except OSError as error:
            worker.log.warning("cannot mark the worker ready: %s", error)


def when_ready(server: Any) -> None:
    """Serve the Prometheus metrics of every worker on ``C2C_PROMETHEUS_PORT``, from the master."""
    try:
        port = prometheus.PrometheusSettings.declaration("port").resolve(None)
        if port is not None:
            config_file = gunicorn_settings.ServerSettings.resolve(None).config_file
            secret = prometheus.PrometheusSettings.declaration("secret").resolve(
                prometheus.app_settings(config_file)
            )
            prometheus.serve_from_master(port, secret)
    except Exception as error:  # serving the app matters more
        server.log.warning("cannot serve the Prometheus metrics on their own port: %s", error)


def child_exit(server: Any, worker: Any) -> None:
    """Tell Prometheus' multiprocess mode and the ready marks that a worker is gone."""
    if server.cfg.pidfile is not None:
        try:
            worker_readiness.forget(server.cfg.pidfile, worker.pid)
        except OSError as error:
            server.log.warning("cannot remove the ready mark of worker %s: %s", worker.pid, error)
    try:
        prometheus.mark_process_dead(worker.pid)
    except Exception as error:
        server.log.warning("cannot mark worker %s dead for Prometheus: %s", worker.pid, error)
