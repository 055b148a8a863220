"""invoice documents carry their format version

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

Every stored document so far is of the first format (schema.DOCUMENT_VERSION 1). A document whose version
is not the current one is read as none: rendered again from its row when it is next read.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("document_version", sa.SmallInteger(), nullable=True))
    op.execute("UPDATE invoices SET document_version = 1 WHERE document IS NOT NULL")


def downgrade() -> None:
    op.drop_column("invoices", "document_version")
