"""``c2cwsgiutils_run``: serve the app of ``C2CWSGIUTILS_CONFIG`` with gunicorn.

This process becomes the gunicorn master (gunicorn runs in it, as ``gunicorn`` would), so signals
from the container runtime reach it directly. Arguments given to this command, then
``GUNICORN_PARAMS``, are passed on to gunicorn and win over the defaults of
:mod:`c2cwsgiutils.server.gunicorn_settings`.

The check of the ini file imports the app's factory: it runs in a forked child, which exits,
while the libraries every worker needs (pyramid, c2cwsgiutils, gunicorn) are imported once, here,
before gunicorn forks the workers. Start-up was a second Python process (``exec``) importing them
again.

Started as root with ``C2CWSGIUTILS_USER`` set (the image sets ``33:33``), it becomes that user
first, as an entrypoint's ``gosu`` would: so the check, the gunicorn master, its workers and the
pid file are that user's, while an app's Dockerfile still installs into the venv as root.
"""

import argparse
import dataclasses
import grp
import json
import os
import pwd
import shlex
import sys
import traceback
from collections.abc import Mapping, Sequence

from c2cwsgiutils import extras, loader, prometheus, sentry, wsgi_app
from c2cwsgiutils.config_utils import SettingError, is_ascii_int
from c2cwsgiutils.server import gunicorn_settings, master_identity

APP = "c2cwsgiutils.wsgi_app:create_application()"
GUNICORN_CONFIG = "python:c2cwsgiutils.gunicorn_config"


def gunicorn_command(extra_args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """Return the gunicorn command line, or raise ValueError for bad ``GUNICORN_PARAMS``."""
    params = shlex.split(gunicorn_settings.ServerSettings.declaration("params").resolve(None, environ))
    return [sys.executable, "-m", "gunicorn", "--config", GUNICORN_CONFIG, *extra_args, *params, APP]


def gunicorn_pid_file(command: Sequence[str], environ: Mapping[str, str]) -> str:
    """Return the pid file gunicorn will write: the last ``--pid`` given to it, else ours."""
    pid_file = gunicorn_settings.pid_file(environ)
    try:
        cmd_args = shlex.split(environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError:
        cmd_args = []  # gunicorn will say what is wrong with it
    args = [*cmd_args, *command]  # gunicorn's command line wins over GUNICORN_CMD_ARGS
    for index, arg in enumerate(args):
        if arg in ("--pid", "-p") and index + 1 < len(args):
            pid_file = args[index + 1]
        elif arg.startswith("--pid="):
            pid_file = arg.removeprefix("--pid=")
        elif arg.startswith("-p") and not arg.startswith("--") and len(arg) > 2:
            pid_file = arg.removeprefix("-p")
    return pid_file


def free_pid_file(pid_file: str) -> None:
    """Remove a stale pid file, or raise PidFileError when a live master of ours owns it.

    gunicorn refuses to start while its pid file names any live process, and a stale pid file
    (a master killed with SIGKILL, a container restarted with the same ``/tmp``) often does.
    """
    try:
        pid = master_identity.verified_master(pid_file)
    except (master_identity.NoPidFileError, master_identity.UnverifiableError):
        return  # nothing there, or no /proc to tell: gunicorn's own check applies
    except master_identity.StalePidFileError as error:
        master_identity.remove_stale(pid_file, error.content)
        print(f"c2cwsgiutils_run: {error}; removed it", file=sys.stderr)
        return
    raise master_identity.PidFileError(
        f"another server (pid {pid}) uses the pid file {pid_file}; set C2CWSGIUTILS_PID_FILE to another path"
    )


class UserSwitchError(Exception):
    """The user of ``C2CWSGIUTILS_USER`` is unknown, or this process cannot become it."""


@dataclasses.dataclass(frozen=True)
class Account:
    """Who ``c2cwsgiutils_run`` serves as: ids, supplementary groups, home folder."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def account(spec: str) -> Account:
    """Resolve ``USER[:GROUP]`` (names or numbers) with the system's user and group databases.

    A uid without a passwd entry needs its group: Docker would give it group 0 (root's).
    """
    user, _, group = spec.partition(":")
    try:
        by_id = is_ascii_int(user)
        entry: pwd.struct_passwd | None = pwd.getpwuid(int(user)) if by_id else pwd.getpwnam(user)
    except KeyError:
        if not by_id:
            raise UserSwitchError(f"C2CWSGIUTILS_USER={spec}: no user named {user!r}") from None
        entry = None
    uid = entry.pw_uid if entry is not None else int(user)
    if is_ascii_int(group):
        gid = int(group)
    elif group:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise UserSwitchError(f"C2CWSGIUTILS_USER={spec}: no group named {group!r}") from None
    elif entry is not None:
        gid = entry.pw_gid
    else:
        raise UserSwitchError(
            f"C2CWSGIUTILS_USER={spec}: uid {uid} has no passwd entry; give its group (uid:gid)"
        )
    if entry is None:
        return Account(uid, gid, (gid,), "/")
    return Account(uid, gid, tuple(os.getgrouplist(entry.pw_name, gid)), entry.pw_dir)


def switch_user(spec: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Become the user of ``spec`` if this process is root; return the environment to change.

    Nothing happens when ``spec`` is empty or the process is not root (``docker run --user``,
    Kubernetes' ``runAsUser``): it serves as it is. ``HOME`` follows the user, unless it was set
    to something else than root's.
    """
    if not spec or os.geteuid() != 0:
        return {}
    target = account(spec)
    if target.uid == 0:
        return {}  # root, asked for by name
    try:
        os.setgroups(list(target.groups))
        os.setresgid(target.gid, target.gid, target.gid)
        os.setresuid(target.uid, target.uid, target.uid)
    except OSError as error:
        raise UserSwitchError(
            f"cannot become user {spec} (C2CWSGIUTILS_USER): {error.strerror or error}; "
            "refusing to serve as root"
        ) from None
    try:  # as gosu does: root must be out of reach now
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise UserSwitchError(f"still able to become root after switching to {spec}; refusing to serve")
    root_home = _root_home()
    if environ.get("HOME", root_home) in (root_home, ""):
        return {"HOME": target.home}
    return {}


def _root_home() -> str:
    try:
        return pwd.getpwuid(0).pw_dir
    except KeyError:
        return "/root"


def check_in_child(environ: Mapping[str, str], check_only: bool) -> tuple[int, dict[str, str]]:
    """Check the ini file in a forked child; return its exit code and the environment gunicorn needs.

    The child imports the app's factory (the check is PasteDeploy's load, short of calling it)
    and reads the ini's settings for Prometheus; this process keeps neither.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one line on stderr and 2, or 0 and the environment on the pipe
        os.close(read_fd)
        code = 1
        try:
            code, env = _check(environ, check_only, os.getppid())
            os.write(write_fd, json.dumps(env).encode("utf-8"))
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        return (code if code > 0 else 1), {}
    return 0, json.loads(data or b"{}")


def _check(environ: Mapping[str, str], check_only: bool, master_pid: int) -> tuple[int, dict[str, str]]:
    config_file = wsgi_app.config_file(environ)
    try:
        loader.check_config(config_file)
        sentry.check(environ)  # a bad SENTRY_CLIENT_* in one line, not in every worker's traceback
    except (loader.ConfigFileError, SettingError, extras.MissingExtraError) as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2, {}
    if check_only:
        return 0, {}
    try:
        # Before gunicorn forks: prometheus_client reads it when a worker imports it.
        return 0, prometheus.prepare_for_run(environ, config_file, master_pid)
    except OSError as error:
        print(f"c2cwsgiutils_run: the Prometheus metrics stay per worker: {error}", file=sys.stderr)
        return 0, {}


def main(argv: Sequence[str] | None = None) -> int:
    """Check the configuration, then run gunicorn in this process."""
    parser = argparse.ArgumentParser(
        prog="c2cwsgiutils_run",
        description="Serve the app of C2CWSGIUTILS_CONFIG (default /app/production.ini) with gunicorn. "
        "Other arguments are passed on to gunicorn.",
        allow_abbrev=False,  # an abbreviation could swallow a gunicorn option
    )
    parser.add_argument(
        "--check", action="store_true", help="check the configuration and exit (0 when the app would load)"
    )
    args, extra_args = parser.parse_known_args(argv)
    environ = dict(os.environ)
    try:
        extras.require("gunicorn", "server", "c2cwsgiutils_run")
        # Fail here, in one line, rather than in gunicorn's traceback when it reads its config.
        gunicorn_settings.settings_from_environ(environ)
        command = gunicorn_command(extra_args, environ)
    except (SettingError, extras.MissingExtraError) as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"c2cwsgiutils_run: GUNICORN_PARAMS: {error}", file=sys.stderr)
        return 2
    try:
        user_env = switch_user(
            gunicorn_settings.ServerSettings.declaration("user").resolve(None, environ), environ
        )
    except UserSwitchError as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    os.environ.update(user_env)
    environ.update(user_env)
    sys.stdout.flush()
    sys.stderr.flush()
    code, gunicorn_env = check_in_child(environ, args.check)
    if code != 0 or args.check:
        return code
    try:
        free_pid_file(gunicorn_pid_file(command, environ))
    except master_identity.PidFileError as error:
        print(f"c2cwsgiutils_run: {error}", file=sys.stderr)
        return 2
    os.environ.update(gunicorn_env)
    return run_gunicorn(command)


def run_gunicorn(command: Sequence[str]) -> int:
    """Run gunicorn in this process with ``command``'s arguments (``python -m gunicorn ...``).

    ``sys.argv`` is gunicorn's own command line: gunicorn reads it, and re-executes it on SIGUSR2
    (a binary upgrade) as ``python -m gunicorn`` would.
    """
    import gunicorn.__main__  # noqa: PLC0415 (the server extra)
    from gunicorn.app.wsgiapp import WSGIApplication  # noqa: PLC0415

    sys.argv = [str(gunicorn.__main__.__file__), *command[3:]]
    WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]", prog="gunicorn").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
