"""The README's 20-line app is a real one: it starts and its health check checks its database."""

import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import webtest

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def myapp(tmp_path: Path, clean_ops_state: None) -> Iterator[object]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## An app in 20 lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    assert len(code.group(1).splitlines()) <= 20
    package = tmp_path / "myapp"
    package.mkdir()
    (package / "__init__.py").write_text(code.group(1), encoding="utf-8")
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("myapp")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("myapp", None)


def test_the_readme_app_serves_its_health_check(myapp: object, tmp_path: Path) -> None:
    settings = {"sqlalchemy.url": f"sqlite:///{tmp_path}/app.sqlite"}
    app = webtest.TestApp(myapp.main({}, **settings))  # type: ignore[attr-defined]
    report = app.get("/c2c/health_check", status=200).json
    assert any(name.startswith("db_engine_sqlalchemy") for name in report["successes"]), report
    assert app.get("/c2c/health", status=200)
