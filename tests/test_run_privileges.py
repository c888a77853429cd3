"""c2cwsgiutils_run started as root becomes ``C2CWSGIUTILS_USER`` before gunicorn starts.

The tests run as root on this machine, as the image's command does: they start the real
``c2cwsgiutils_run`` and read the ids of the master and of its workers in ``/proc``. The app is
``tests/apps/echo.py``, from an ini file in a folder every user can read.

This machine's Python lives under ``/root`` (mode 700), which www-data cannot read: a server that
has switched users could not import the rest of the standard library. So the servers run in a
mount namespace of their own where ``/root`` is a readable folder holding only the interpreter's
tree (:func:`exposing_python`); elsewhere (the image, a system Python) nothing is added.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from c2cwsgiutils.acceptance.server import clean_environ, console_script, free_port
from c2cwsgiutils.acceptance.utils import wait_url
from c2cwsgiutils.scripts.run import UserSwitchError, account
from c2cwsgiutils.server import worker_readiness
from testing.fixtures import RunScript
from tests.apps import echo as echo_app

pytestmark = [pytest.mark.server]

REPO = Path(__file__).parent.parent
WWW_DATA = 33
NOBODY = 65534

if os.geteuid() != 0:
    pytest.fail("tests/test_run_privileges.py needs root (c2cwsgiutils_run switches users only as root)")


def ids(pid: int, field: str) -> list[int]:
    """Return the ids of a ``/proc/<pid>/status`` line: real, effective, saved, fs (or the groups)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(f"{field}:"):
            return [int(value) for value in line.split()[1:]]
    raise AssertionError(f"no {field} line for process {pid}")


def exposing_python(view: Path) -> list[str]:
    """Return a command prefix that makes the interpreter's tree readable by every user, if needed.

    The first folder on the way to it that others cannot enter is covered, in a private mount
    namespace, by ``view`` (made readable) holding a bind mount of the one entry on the way.
    """
    base = Path(os.path.realpath(sys.base_prefix))
    for folder in reversed(base.parents):  # from / down
        if not folder.stat().st_mode & stat.S_IXOTH:
            entry = base.relative_to(folder).parts[0]
            view.chmod(0o755)
            (view / entry).mkdir()
            script = 'mount --bind "$1/$3" "$2/$3" && mount --rbind "$2" "$1" && shift 3 && exec "$@"'
            return [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                script,
                "sh",
                str(folder),
                str(view),
                entry,
            ]
    return []


class Served:
    """``c2cwsgiutils_run`` serving the echo app on a free port, as root or as ``user``, in ``folder``."""

    def __init__(self, folder: Path, env: Mapping[str, str], user: int | None = None) -> None:
        self.pid_file = folder / "run" / "gunicorn.pid"
        self.pid_file.parent.mkdir()
        os.chown(self.pid_file.parent, user or WWW_DATA, user or WWW_DATA)
        self.url = f"http://127.0.0.1:{free_port()}"
        view = folder / "view"
        view.mkdir()
        as_user = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        self.env = clean_environ(
            {
                "C2CWSGIUTILS_CONFIG": str(folder / "echo.ini"),
                "C2CWSGIUTILS_PID_FILE": str(self.pid_file),
                "GUNICORN_BIND": self.url.removeprefix("http://"),
                "GUNICORN_WORKERS": "2",
                "PYTHONPATH": str(REPO),
                **env,
            }
        )
        self.log = folder / "server.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*exposing_python(view), *as_user, console_script("c2cwsgiutils_run")],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_url(self.url + "/echo", timeout=30)
        except TimeoutError:
            self.stop()
            raise AssertionError(self.log.read_text(encoding="utf-8", errors="replace")) from None

    def master_pid(self) -> int:
        return int(self.pid_file.read_text(encoding="ascii"))

    def worker_pids(self) -> set[int]:
        return worker_readiness.workers(self.master_pid())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def readable_folder() -> Path:
    """Return a new folder every user can read, holding the echo app's ini file."""
    path = Path(tempfile.mkdtemp(prefix="c2cwsgiutils-user-"))
    path.chmod(0o755)
    (path / "echo.ini").write_text(echo_app.INI, encoding="utf-8")
    (path / "echo.ini").chmod(0o644)
    return path


@pytest.fixture
def folder() -> Iterator[Path]:
    path = readable_folder()
    yield path
    shutil.rmtree(path)


@pytest.fixture(scope="module")
def switched() -> Iterator[Served]:
    """The echo app served by c2cwsgiutils_run started as root, with ``C2CWSGIUTILS_USER=33:33``."""
    path = readable_folder()
    try:
        server = Served(path, {"C2CWSGIUTILS_USER": "33:33"})
        yield server
        server.stop()
    finally:
        shutil.rmtree(path)


def test_root_start_serves_as_the_user_in_master_and_workers(switched: Served) -> None:
    processes = [switched.master_pid(), *switched.worker_pids()]
    assert len(processes) == 3
    for pid in processes:
        assert (ids(pid, "Uid"), ids(pid, "Gid")) == ([WWW_DATA] * 4, [WWW_DATA] * 4), pid


def test_root_start_keeps_only_the_users_groups(switched: Served) -> None:
    assert set(ids(switched.master_pid(), "Groups")) == set(os.getgrouplist("www-data", WWW_DATA))


def test_pid_file_belongs_to_the_user(switched: Served) -> None:
    assert switched.pid_file.stat().st_uid == WWW_DATA


def test_reload_as_root_replaces_the_workers_of_a_switched_server(
    switched: Served, run_script: RunScript
) -> None:
    """As ``docker exec CONTAINER c2cwsgiutils_reload`` does: root signals the www-data master."""
    before = switched.worker_pids()
    result = run_script("c2cwsgiutils_reload", "--pid-file", str(switched.pid_file))
    assert result.returncode == 0, result.stderr
    after = switched.worker_pids()
    assert after
    assert not after & before
    assert all(ids(pid, "Uid") == [WWW_DATA] * 4 for pid in after)


def test_non_root_start_keeps_its_user(folder: Path) -> None:
    """``docker run --user`` or Kubernetes' ``runAsUser``: no switch, whatever C2CWSGIUTILS_USER says."""
    server = Served(folder, {"C2CWSGIUTILS_USER": "33:33"}, user=NOBODY)
    try:
        assert ids(server.master_pid(), "Uid") == [NOBODY] * 4
    finally:
        server.stop()


def test_failed_switch_refuses_to_serve_as_root_in_one_line(folder: Path) -> None:
    """Root without CAP_SETUID/CAP_SETGID (``docker run --cap-drop``) cannot switch: it must not serve."""
    env = clean_environ({"C2CWSGIUTILS_CONFIG": str(folder / "echo.ini"), "C2CWSGIUTILS_USER": "33:33"})
    without_caps = ["setpriv", "--inh-caps=-setuid,-setgid", "--bounding-set=-setuid,-setgid", "--"]
    result = subprocess.run(
        [*without_caps, console_script("c2cwsgiutils_run"), "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("c2cwsgiutils_run: cannot become user 33:33")
    assert result.stderr.endswith("refusing to serve as root\n")


def test_unknown_user_is_a_one_line_error(run_script: RunScript) -> None:
    result = run_script("c2cwsgiutils_run", "--check", env={"C2CWSGIUTILS_USER": "no-such-user"})
    assert (result.returncode, result.stderr) == (
        2,
        "c2cwsgiutils_run: C2CWSGIUTILS_USER=no-such-user: no user named 'no-such-user'\n",
    )


def test_home_follows_the_user_when_it_was_roots() -> None:
    switch = (
        "from c2cwsgiutils.scripts.run import switch_user; print(switch_user('www-data', {'HOME': '/root'}))"
    )
    result = subprocess.run([sys.executable, "-c", switch], capture_output=True, text=True, check=True)
    assert result.stdout == "{'HOME': '/var/www'}\n"


def test_account_takes_names_and_numbers() -> None:
    assert account("www-data") == account("33") == account("33:www-data")
    assert account("www-data:65534").gid == NOBODY


def test_account_of_a_uid_without_passwd_entry_needs_its_group() -> None:
    assert account("4711:4711").groups == (4711,)
    with pytest.raises(UserSwitchError, match="give its group"):
        account("4711")
