"""The legacy app's model and session, set up as the original's README shows it."""

from pyramid.config import Configurator
from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, scoped_session

from c2cwsgiutils.db import setup_session

DBSession: "scoped_session[Session]"


class Base(DeclarativeBase):
    """The legacy app's declarative base."""


class Hello(Base):
    """A greeting; its value is unique, so the same one twice breaks a constraint."""

    __tablename__ = "legacy_hello"

    id: Mapped[int] = mapped_column(primary_key=True)
    value: Mapped[str] = mapped_column(Text, unique=True)


def init(config: Configurator) -> None:
    """Make ``DBSession``: the primary for writes, the replica for GETs, as the README says."""
    global DBSession  # noqa: PLW0603 (the original's form)
    DBSession = setup_session(
        config,
        "sqlalchemy",
        "sqlalchemy_slave",
        force_master=["GET /api/hello/forced"],
        force_slave=["POST /api/hello/search"],
    )[0]
