"""tax categories, exemption reasons, allowances and charges (issue 16)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01

Taxation items gain their EN 16931 VAT category and exemption reason; lines a charge (BG-28); invoices
their document-level allowances and charges (BG-20/21) as one JSONB array. Existing rows get no category,
no charge and no allowances: their totals are unchanged. Documents are rendered again (DOCUMENT_VERSION 2:
the new fields).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("taxation_items", sa.Column("tax_category", sa.Text(), nullable=True))
    op.add_column("taxation_items", sa.Column("exemption_reason", sa.Text(), server_default="", nullable=False))
    op.add_column("taxation_items", sa.Column("exemption_reason_code", sa.Text(), server_default="", nullable=False))
    op.create_check_constraint(
        "tax_category", "taxation_items", "tax_category IN ('S','Z','E','AE','K','G','O','L','M')"
    )
    op.add_column("line_items", sa.Column("charge_amount", sa.Numeric(), server_default="0", nullable=False))
    op.add_column("line_items", sa.Column("charge_percentage", sa.Numeric(), nullable=True))
    op.add_column("line_items", sa.Column("charge_reason", sa.Text(), server_default="", nullable=False))
    op.add_column("line_items", sa.Column("charge_reason_code", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "invoices",
        sa.Column("allowance_charges", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("invoices", "allowance_charges")
    for name in ("charge_reason_code", "charge_reason", "charge_percentage", "charge_amount"):
        op.drop_column("line_items", name)
    op.drop_constraint(op.f("ck_taxation_items_tax_category"), "taxation_items", type_="check")
    for name in ("exemption_reason_code", "exemption_reason", "tax_category"):
        op.drop_column("taxation_items", name)
