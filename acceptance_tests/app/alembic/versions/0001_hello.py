"""Create the hello table.

Revision ID: 0001_hello
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_hello"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``hello`` as ``c2cwsgiutils_app.models.Hello`` maps it."""
    op.create_table(
        "hello",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("value", sa.String(200), nullable=False, unique=True),
    )


def downgrade() -> None:
    """Drop ``hello``."""
    op.drop_table("hello")
