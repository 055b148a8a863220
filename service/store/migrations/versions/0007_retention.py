"""retention: finished push operations by completion time, for the periodic purge; invoices.write_xact
for snapshot-bounded pages

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows take the migration's own transaction: committed, so visible to every later snapshot.
    op.add_column(
        "invoices",
        sa.Column(
            "write_xact",
            sa.BigInteger(),
            server_default=sa.text("(pg_current_xact_id()::text::bigint)"),
            nullable=False,
        ),
    )
    op.create_index(
        "ix_push_operations_completed",
        "push_operations",
        ["completed_on_utc"],
        unique=False,
        postgresql_where=sa.text("status <> 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_column("invoices", "write_xact")
    op.drop_index(
        "ix_push_operations_completed",
        table_name="push_operations",
        postgresql_where=sa.text("status <> 'PENDING'"),
    )
