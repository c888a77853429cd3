"""Models for tests/test_models_graph.py: a foreign key, joined and single-table inheritance."""

import sqlalchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Owner(Base):
    __tablename__ = "graph_owner"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sqlalchemy.String(50))


class Pet(Base):
    __tablename__ = "graph_pet"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sqlalchemy.String(20))
    owner_id: Mapped[int | None] = mapped_column(sqlalchemy.ForeignKey("graph_owner.id"))
    __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "pet"}  # noqa: RUF012


class Dog(Pet):
    """Joined-table inheritance: its own table."""

    __tablename__ = "graph_dog"
    id: Mapped[int] = mapped_column(sqlalchemy.ForeignKey("graph_pet.id"), primary_key=True)
    good: Mapped[bool] = mapped_column(default=True)
    __mapper_args__ = {"polymorphic_identity": "dog"}  # noqa: RUF012


class Cat(Pet):
    """Single-table inheritance: the pets' table."""

    __mapper_args__ = {"polymorphic_identity": "cat"}  # noqa: RUF012


NOT_A_MODEL = 42
