"""company profiles; seller and buyer parties on invoices

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01

Issue 16: one profile per company (keyed by company_id), and on each invoice the seller, payment terms and
means as they were at finalization, the buyer, its references and the delivery. Existing invoices keep no
seller (they were issued under SELLER_NAME).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_JSON_COLUMNS = ("seller", "buyer", "delivery", "payment_terms", "payment_means")


def upgrade() -> None:
    op.create_table(
        "company_profiles",
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("profile", JSONB(), server_default="{}", nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_content_type", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_profiles")),
    )
    for name in _JSON_COLUMNS:
        op.add_column("invoices", sa.Column(name, JSONB(), nullable=True))
    for name in ("buyer_reference", "purchase_order_reference"):
        op.add_column("invoices", sa.Column(name, sa.Text(collation="C"), server_default="", nullable=False))


def downgrade() -> None:
    for name in (*_JSON_COLUMNS, "buyer_reference", "purchase_order_reference"):
        op.drop_column("invoices", name)
    op.drop_table("company_profiles")
