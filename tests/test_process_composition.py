"""ProcessComposition and ExternalComposition, on the example app served by c2cwsgiutils_run."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from c2cwsgiutils.acceptance.composition import (
    CompositionError,
    ExternalComposition,
    LogsUnavailableError,
    ProcessComposition,
)
from testing.fixtures import EXAMPLE_APP_INI

pytestmark = [pytest.mark.server]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessComposition]:
    database = tmp_path_factory.mktemp("db") / "app.sqlite"
    with ProcessComposition(
        EXAMPLE_APP_INI, env={"SQLALCHEMY_URL": f"sqlite:///{database}"}, workers=1
    ) as app:
        yield app


def test_serves_the_app_and_its_logs(app: ProcessComposition) -> None:
    response = requests.get(app.url("/api/ping"), headers={"X-Request-ID": "process-1"}, timeout=10)
    assert response.json() == {"pong": True}
    assert app.base_url.startswith("http://127.0.0.1:")
    assert "Booting worker" in app.logs()
    assert app.logs("app") == app.logs()


def test_exec_and_run_have_the_app_environment(app: ProcessComposition) -> None:
    result = app.exec("app", "sh", "-c", 'echo "$GUNICORN_BIND $EXTRA"', env={"EXTRA": "x"})
    assert result.stdout == f"{app.base_url.removeprefix('http://')} x\n"
    assert app.run("app", "true").returncode == 0


def test_restart_serves_again_on_the_same_url(app: ProcessComposition) -> None:
    url = app.base_url
    app.restart()
    assert app.base_url == url
    assert requests.get(app.url("/api/ping"), timeout=10).status_code == 200
    assert app.logs().count("Listening at") == 2


def test_stop_then_start(app: ProcessComposition) -> None:
    app.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(app.url("/api/ping"), timeout=10)
    app.start()
    assert requests.get(app.url("/api/ping"), timeout=10).status_code == 200


def test_only_the_app_service_exists(app: ProcessComposition) -> None:
    with pytest.raises(CompositionError) as raised:
        app.exec("db", "true")
    assert str(raised.value) == "the process composition has only the service 'app', not 'db'"


def test_a_start_that_fails_says_why(tmp_path: Path) -> None:
    ini = tmp_path / "broken.ini"
    ini.write_text("[app:main]\nuse = egg:no-such-app\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="server exited with"), ProcessComposition(ini, start_timeout=30):
        pass


def test_external_waits_for_the_app_and_refuses_to_drive_it(app: ProcessComposition) -> None:
    with ExternalComposition(app.base_url + "/", ready_path="/api/ping") as external:
        assert external.base_url == app.base_url
        with pytest.raises(CompositionError) as raised:
            external.stop()
        assert str(raised.value) == f"cannot stop the app at {app.base_url}: it was started outside the tests"
        with pytest.raises(LogsUnavailableError):
            external.logs()
    assert requests.get(app.url("/api/ping"), timeout=10).status_code == 200  # still running


def test_external_that_never_answers_times_out() -> None:
    with pytest.raises(TimeoutError, match=r"^GET http://127.0.0.1:9/: still failing after 1s"):
        ExternalComposition("http://127.0.0.1:9", start_timeout=1).start()
