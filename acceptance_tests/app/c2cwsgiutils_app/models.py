"""The example app's model."""

import time

import sqlalchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session

DBSession: scoped_session[Session]
"""The app's session, made by ``c2cwsgiutils.db.setup_session`` in ``main``."""


class Base(DeclarativeBase):
    """Declarative base of the example app."""


class Hello(Base):
    """A greeting; values are unique, so posting one twice is an integrity error."""

    __tablename__ = "hello"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(sqlalchemy.String(200), unique=True)


def create_tables(engine: sqlalchemy.Engine, attempts: int = 5) -> None:
    """Create the tables if missing; several workers may race to do it, so retry."""
    for attempt in range(attempts):
        try:
            Base.metadata.create_all(engine)
            return
        except sqlalchemy.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
