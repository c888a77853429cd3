"""Every name of tests/unit/client_names.toml exists and answers the call its client makes.

The list was read from the wheels of c2cgeoportal-geoportal 2.9 and tilecloud-chain 1.23 (issue
23); each function below repeats the client's call (the file and line are in the list) on a small
in-process app, with SQLite for the database names. The features' own tests go further.
"""

import argparse
import decimal
import importlib
import io
import json
import logging
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import webtest
from prometheus_client import CollectorRegistry
from pyramid.config import Configurator
from pyramid.httpexceptions import HTTPForbidden
from pyramid.request import Request

import c2cwsgiutils
from c2cwsgiutils import auth, debug, health_check, index, setup_process
from c2cwsgiutils.acceptance import image

NAMES = tomllib.loads((Path(__file__).parent / "client_names.toml").read_text(encoding="utf-8"))["name"]
SECRET = "a-secret-of-the-operator"  # noqa: S105 (made up)
Call = Callable[[Any, Path], None]


def resolve(dotted: str) -> Any:
    module, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def request_with(settings: dict[str, Any], headers: dict[str, str] | None = None) -> Request:
    config = Configurator(settings=settings)
    request = Request.blank("/", headers=headers or {})
    request.registry = config.registry
    return request


@pytest.fixture(autouse=True)
def clean_index() -> Iterator[None]:
    """The index additions are module-level, as upstream's: each test starts with none."""
    title, noauth, auth_ = index.additional_title, list(index.additional_noauth), list(index.additional_auth)
    yield
    index.additional_title = title
    index.additional_noauth[:] = noauth
    index.additional_auth[:] = auth_


def get_config_defaults(name: Any, tmp_path: Path) -> None:
    # The scaffold's gunicorn.conf.py: the environment as paste's global configuration.
    raw_paste_global_conf = ["=".join(e) for e in name().items()]
    assert any(entry.startswith("PATH=") for entry in raw_paste_global_conf)


def includeme(name: Any, tmp_path: Path) -> None:
    config = Configurator(settings={})
    config.include(name)
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/c2c/health").status_int == 200


def json_log_handler(name: Any, tmp_path: Path) -> None:
    stream = io.StringIO()

    class TileJsonLogHandler(name):  # type: ignore[misc]
        """tilecloud-chain's: the stream positionally, a filter of its own."""

        def __init__(self, stream: Any = None) -> None:
            super().__init__(stream)
            self.addFilter(lambda record: True)

    logger = logging.getLogger("test_client_names.json")
    handler = TileJsonLogHandler(stream)
    logger.addHandler(handler)
    try:
        logger.warning("from tilecloud-chain's handler")
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue())["short_message"] == "from tilecloud-chain's handler"
    # The scaffold's dictConfig names the class, a formatter and ext://sys.stdout. dictConfig closes
    # every handler of the process it runs in, pytest's among them: it runs in a child.
    scaffold = """
import logging, logging.config
logging.config.dictConfig({
    "version": 1,
    "formatters": {"generic": {"format": "%(message)s"}},
    "handlers": {"json": {"class": "c2cwsgiutils.pyramid_logging.JsonLogHandler",
                          "formatter": "generic", "stream": "ext://sys.stdout"}},
    "root": {"handlers": ["json"], "level": "INFO"},
})
logging.getLogger("scaffold").info("from the scaffold's logging")
"""
    child = subprocess.run(
        [sys.executable, "-c", scaffold], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(child.stdout)["short_message"] == "from the scaffold's logging"


def index_additions(name: Any, tmp_path: Path) -> None:
    # c2cgeoportal_geoportal/__init__.py:942-967, verbatim in form.
    c2cwsgiutils.index.additional_title = '<div class="row"><div class="col-lg-3"><h2>GeoMapFish</h2></div>'
    c2cwsgiutils.index.additional_auth.extend(['<a href="../tiles/admin/">TileCloud chain admin</a><br>'])
    c2cwsgiutils.index.additional_noauth.append('<a href="../admin/">Admin</a><br>')
    c2cwsgiutils.index.additional_noauth.append("</div></div><hr>")
    config = Configurator(settings={"c2c.secret": SECRET})
    config.include("c2cwsgiutils.pyramid")
    app = webtest.TestApp(config.make_wsgi_app())
    page = app.get("/c2c/", headers={"Accept": "text/html"}).text
    assert "<h2>GeoMapFish</h2>" in page
    assert '<a href="../admin/">Admin</a>' in page
    assert "TileCloud chain admin" not in page  # for a signed-in operator only
    signed_in = app.get("/c2c/", headers={"Accept": "text/html", "X-API-Key": SECRET}).text
    assert "TileCloud chain admin" in signed_in


def auth_view(name: Any, tmp_path: Path) -> None:
    settings = {"c2c.secret": SECRET}
    with pytest.raises(HTTPForbidden):
        name(request_with(settings))
    name(request_with(settings, {"X-API-Key": SECRET}))


def is_auth(name: Any, tmp_path: Path) -> None:
    assert name(request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET}))
    assert not name(request_with({"c2c.secret": SECRET}))


def is_auth_user(name: Any, tmp_path: Path) -> None:
    # tilecloud_chain/security.py:68: the details are read with .get().
    is_auth_, c2cuser = name(request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET}))
    assert is_auth_
    assert c2cuser.get("login") is None
    assert name(request_with({"c2c.secret": SECRET}))[0] is False


def authentication_type(name: Any, tmp_path: Path) -> None:
    assert {member.name for member in name} >= {"NONE", "SECRET", "GITHUB"}


def auth_type_(name: Any, tmp_path: Path) -> None:
    assert name({"c2c.secret": SECRET}) == auth.AuthenticationType.SECRET
    assert name({}) in (None, auth.AuthenticationType.NONE)


def auth_config(name: Any, tmp_path: Path) -> None:
    # tilecloud_chain/security.py:44: a mapping, tested with `in`.
    config = name(github_repository="camptocamp/tilecloud-chain", github_access_type="admin")
    assert "github_repository" in config
    assert "github_repository" not in name()


def check_access(name: Any, tmp_path: Path) -> None:
    assert name(request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET}))
    assert not name(request_with({"c2c.secret": SECRET}))


def check_access_config(name: Any, tmp_path: Path) -> None:
    config = auth.AuthConfig(github_repository="camptocamp/tilecloud-chain", github_access_type="push")
    assert name(request_with({"c2c.secret": SECRET}, {"X-API-Key": SECRET}), config)
    assert not name(request_with({"c2c.secret": SECRET}), config)


def fill_arguments(name: Any, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    name(parser)  # tilecloud-chain
    assert parser.parse_args(["c2c://app.ini"]).config_uri == "c2c://app.ini"
    parser = argparse.ArgumentParser()
    name(parser, default_config_uri="c2c://development.ini", use_attribute=True)  # c2cgeoportal
    assert parser.parse_args([]).config_uri == "c2c://development.ini"


def write_ini(tmp_path: Path) -> Path:
    ini = tmp_path / "app.ini"
    ini.write_text(
        "[app:main]\nuse = call:tests.apps.client_names:factory\nan.app.setting = %(ENV_OF_THE_APP)s\n",
        encoding="utf-8",
    )
    return ini


def bootstrap_application_from_options(name: Any, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    setup_process.fill_arguments(parser, use_attribute=True)
    options = parser.parse_args(["--config-uri", f"c2c://{write_ini(tmp_path)}"])
    env = name(options)  # c2cgeoportal_geoportal/scripts/__init__.py:53
    try:
        assert env["registry"].settings["an.app.setting"] == "from-the-environment"
    finally:
        env["closer"]()  # pops the request that bootstrap pushed, for the tests that follow


def loader(name: Any, tmp_path: Path) -> None:
    class GeoportalLoader(name):  # type: ignore[misc]
        """c2cgeoportal's: settings completed after the toolkit's, and a repr of its own."""

        def get_wsgi_app_settings(
            self, name: str | None = None, defaults: dict[str, str] | None = None
        ) -> dict[str, Any]:
            settings = dict(super().get_wsgi_app_settings(name, defaults))
            settings["available_locale_names"] = ["en", "fr"]
            return settings

        def __repr__(self) -> str:
            return f'GeoportalLoader(uri="{self.uri}")'

    import plaster

    subclass = GeoportalLoader(plaster.parse_uri(f"c2c://{write_ini(tmp_path)}"))
    settings = subclass.get_wsgi_app_settings()
    assert settings["an.app.setting"] == "from-the-environment"
    assert settings["available_locale_names"] == ["en", "fr"]
    assert repr(subclass).startswith("GeoportalLoader(uri=")


def memory_map_collector(name: Any, tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(name("pss"))  # as REGISTRY.register(MemoryMapCollector("pss"))
    registry.register(name("rss"))
    registry.register(name("size"))
    assert list(registry.collect())


def prometheus_gunicorn_hook(name: Any, tmp_path: Path) -> None:
    # The scaffold's on_starting and post_fork call them bare; without C2C_PROMETHEUS_PORT, nothing
    # (served with the port: tests/test_stats_server.py).
    name()


def build_metric_name(name: Any, tmp_path: Path) -> None:
    assert name("python_resource").endswith("python_resource")


def health_check_(name: Any, tmp_path: Path) -> None:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    check = name(config)  # tilecloud_chain/server.py:1033, c2cgeoportal __init__.py:631
    config.registry["health_check"] = check
    check.add_custom_check(name="checker_themes", check_cb=lambda request: None, level=1)
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/c2c/health_check").json["status"] == 200


def json_check_exception(name: Any, tmp_path: Path) -> None:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    check = health_check.HealthCheck(config)

    def themes(request: Request) -> None:  # c2cgeoportal_geoportal/lib/checker.py:184
        raise name("Interface 'desktop' has error in Theme.", ["layer 'roads' is missing"])

    check.add_custom_check(name="checker_themes", check_cb=themes, level=1)
    app = webtest.TestApp(config.make_wsgi_app())
    report = app.get("/c2c/health_check", status=500).json
    failure = report["failures"]["checker_themes"]
    assert failure["message"] == "Interface 'desktop' has error in Theme."
    assert failure["result"] == ["layer 'roads' is missing"]


def get_size(name: Any, tmp_path: Path) -> None:
    # c2cgeoportal_geoportal/lib/metrics.py:67: the size of each cache value and of the whole.
    cache = {"a": "x" * 10_000, "b": list(range(100))}
    values = [(key, name(value)) for key, value in list(cache.items())]
    values.append(("total", name(cache)))
    assert dict(values)["a"] >= 10_000
    assert dict(values)["total"] >= dict(values)["a"] + dict(values)["b"]
    assert debug.get_size(cache) / 1024 > 9


def broadcast_decorator(name: Any, tmp_path: Path) -> None:
    @name(expect_answers=True, timeout=15)  # type: ignore[untyped-decorator] # c2cgeoportal's lib/metrics.py:65
    def _get_memory_cache(all_: bool) -> dict[str, list[tuple[str, int]]]:
        return {"values": [("total", 1 if all_ else 0)]}

    answers = _get_memory_cache(all_=True)
    assert answers is not None
    assert [answer["values"] for answer in answers] == [[["total", 1]]]  # through JSON, as between processes


def sqlite_settings(tmp_path: Path) -> dict[str, str]:
    return {"sqlalchemy.url": f"sqlite:///{tmp_path}/db.sqlite"}


def setup_session(name: Any, tmp_path: Path) -> None:
    config = Configurator(settings=sqlite_settings(tmp_path))
    config.include("c2cwsgiutils.pyramid")
    # c2cgeoportal_geoportal/__init__.py:980: three values, no replica, path lists to route.
    session, rw_bind, _ = name(config, "sqlalchemy", None, force_master=["/api/write"], force_slave=["/r"])
    assert rw_bind is not None
    assert session is not None


def create_session(name: Any, tmp_path: Path) -> None:
    config = Configurator(settings={})
    config.include("c2cwsgiutils.pyramid")
    dbsession_config = {"url": f"sqlite:///{tmp_path}/other.sqlite"}
    session = name(config, "other", **dbsession_config)  # c2cgeoportal_geoportal/__init__.py:988
    import sqlalchemy

    assert session().execute(sqlalchemy.text("SELECT 1")).scalar() == 1


def fast_dumps(name: Any, tmp_path: Path) -> None:
    # c2cgeoportal's tests/test_decimaljson.py.
    assert json.loads(name(False, False)({"str": "an str", "int": 1, "dec": decimal.Decimal("1.2")})) == {
        "int": 1,
        "dec": 1.2,
        "str": "an str",
    }
    assert name(False, False)({"a": decimal.Decimal("3.3")}) == '{"a":3.3}'


def sentry_includeme(name: Any, tmp_path: Path) -> None:
    name()  # tilecloud_chain/__init__.py:708: a generation process, no configurator, no SENTRY_URL


def check_image(name: Any, tmp_path: Path) -> None:
    # tilecloud_chain/tests/test_ui.py:36: an RGB array against an expected PNG.
    screenshot = numpy.zeros((20, 30, 4), dtype=numpy.uint8)
    screenshot[5:10, 5:10] = (200, 10, 10, 255)
    expected = tmp_path / "index.expected.png"
    name(str(tmp_path / "results"), screenshot[:, :, :3], str(expected), generate_expected_image=True)
    name(str(tmp_path / "results"), screenshot[:, :, :3], str(expected))
    changed = screenshot.copy()
    changed[0:20, 0:15] = (0, 0, 255, 255)
    with pytest.raises(AssertionError):
        name(str(tmp_path / "results"), changed[:, :, :3], str(expected))
    assert image.check_image is name


CALLS: dict[str, Call] = {
    "c2cwsgiutils.get_config_defaults": get_config_defaults,
    "c2cwsgiutils.pyramid.includeme": includeme,
    "c2cwsgiutils.pyramid_logging.JsonLogHandler": json_log_handler,
    "c2cwsgiutils.index.additional_title": index_additions,
    "c2cwsgiutils.index.additional_auth": index_additions,
    "c2cwsgiutils.index.additional_noauth": index_additions,
    "c2cwsgiutils.auth.auth_view": auth_view,
    "c2cwsgiutils.auth.is_auth": is_auth,
    "c2cwsgiutils.auth.is_auth_user": is_auth_user,
    "c2cwsgiutils.auth.AuthenticationType": authentication_type,
    "c2cwsgiutils.auth.auth_type": auth_type_,
    "c2cwsgiutils.auth.AuthConfig": auth_config,
    "c2cwsgiutils.auth.check_access": check_access,
    "c2cwsgiutils.auth.check_access_config": check_access_config,
    "c2cwsgiutils.setup_process.fill_arguments": fill_arguments,
    "c2cwsgiutils.setup_process.bootstrap_application_from_options": bootstrap_application_from_options,
    "c2cwsgiutils.loader.Loader": loader,
    "c2cwsgiutils.prometheus.MemoryMapCollector": memory_map_collector,
    "c2cwsgiutils.prometheus.start": prometheus_gunicorn_hook,
    "c2cwsgiutils.prometheus.cleanup": prometheus_gunicorn_hook,
    "c2cwsgiutils.prometheus.build_metric_name": build_metric_name,
    "c2cwsgiutils.health_check.HealthCheck": health_check_,
    "c2cwsgiutils.health_check.JsonCheckException": json_check_exception,
    "c2cwsgiutils.debug.get_size": get_size,
    "c2cwsgiutils.broadcast.decorator": broadcast_decorator,
    "c2cwsgiutils.db.setup_session": setup_session,
    "c2cwsgiutils.db.create_session": create_session,
    "c2cwsgiutils.pretty_json._FastDumps": fast_dumps,
    "c2cwsgiutils.sentry.includeme": sentry_includeme,
    "c2cwsgiutils.acceptance.image.check_image": check_image,
}


def test_the_list_and_the_calls_name_the_same_30_names() -> None:
    listed = [entry["name"] for entry in NAMES]
    assert len(listed) == len(set(listed)) == 30
    assert set(listed) == set(CALLS)
    for entry in NAMES:
        assert entry["used_by"], entry
        assert all(
            client.split()[0] in {"c2cgeoportal-geoportal", "tilecloud-chain"} for client in entry["used_by"]
        )


@pytest.mark.parametrize("entry", NAMES, ids=[entry["name"] for entry in NAMES])
def test_the_client_call_works(
    entry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENV_OF_THE_APP", "from-the-environment")
    monkeypatch.delenv("SENTRY_URL", raising=False)
    monkeypatch.delenv("C2C_SECRET", raising=False)
    monkeypatch.delenv("C2C_PROMETHEUS_PORT", raising=False)
    CALLS[entry["name"]](resolve(entry["name"]), tmp_path)
