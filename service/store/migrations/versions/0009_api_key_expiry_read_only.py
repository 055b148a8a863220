"""api keys: optional expiry and a read-only scope

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("expire_time", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("read_only", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column("api_keys", "read_only")
    op.drop_column("api_keys", "expire_time")
