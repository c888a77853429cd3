"""A Pyramid app whose one view runs the ORM's usual statements on a ``hello`` table, for the SQL keys.

Settings: ``sqlalchemy.url`` (PostgreSQL) and ``sql_keys.schema``, a schema of its own that
holds the ``hello`` table (:func:`create_table`, before the workers start: two workers creating
it at once would collide); the statements name it without the schema, through search_path. A
plain SQLAlchemy engine and session: the metrics time every engine's statements.
"""

from typing import Any

import sqlalchemy
from pyramid.config import Configurator
from pyramid.request import Request
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import c2cwsgiutils.pyramid

INI = """\
[app:main]
use = call:tests.apps.sql_keys:factory
{settings}

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stdout,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(process)d] %(message)s
"""


class Base(DeclarativeBase):
    """The app's models."""


class Hello(Base):
    """A row to read, add and change."""

    __tablename__ = "hello"
    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(sqlalchemy.String(50))


def make_engine(url: str, schema: str) -> sqlalchemy.Engine:
    """Return an engine whose statements name the tables of ``schema`` without it."""
    return sqlalchemy.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})


def create_table(url: str, schema: str) -> None:
    """Make the ``hello`` table in ``schema``."""
    engine = make_engine(url, schema)
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def factory(global_config: dict[str, str], **settings: str) -> Any:
    """Return the app."""
    engine = make_engine(settings["sqlalchemy.url"], settings["sql_keys.schema"])
    config = Configurator(settings=settings)
    config.include(c2cwsgiutils.pyramid.includeme)

    def statements(request: Request) -> dict[str, bool]:
        with Session(engine) as session:
            session.query(Hello).limit(2).all()  # SELECT ... LIMIT
            hello = Hello(value="new")
            session.add(hello)
            session.flush()  # INSERT
            hello.value = "changed"
            session.flush()  # UPDATE ... SET ... WHERE
            session.query(Hello).filter(Hello.id.in_([hello.id, hello.id + 1, hello.id + 2])).all()
            session.commit()
        return {"ok": True}

    config.add_route("statements", "/statements")
    config.add_view(statements, route_name="statements", renderer="json")
    return config.make_wsgi_app()
