"""ListInvoices: stored documents, byte-order text, list indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT_COLUMNS = (
    "invoice_number",
    "customer_id",
    "customer_name",
    "vendor_status",
    "currency",
    "note",
    "subscription_id",
)
INDEXES = {
    "ix_invoices_company_created": ("company_id", "create_time", "id"),
    "ix_invoices_company_status": ("company_id", "status", "create_time", "id"),
    "ix_invoices_company_customer": ("company_id", "customer_id", "create_time", "id"),
    "ix_invoices_company_due": ("company_id", "due_date", "id"),
    "ix_invoices_company_amount_due": ("company_id", "amount_due", "id"),
    "ix_invoices_company_modified": ("company_id", "modified_date", "id"),
}


def upgrade() -> None:
    op.add_column("invoices", sa.Column("document", sa.LargeBinary(), nullable=True))
    op.drop_index("ix_invoices_company_customer", table_name="invoices")
    op.drop_constraint("uq_invoices_company_id_invoice_number", "invoices", type_="unique")
    for name in TEXT_COLUMNS:
        op.alter_column("invoices", name, type_=sa.Text(collation="C"), existing_type=sa.Text())
    op.create_unique_constraint("uq_invoices_company_id_invoice_number", "invoices", ["company_id", "invoice_number"])
    for index, columns in INDEXES.items():
        op.create_index(index, "invoices", list(columns))


def downgrade() -> None:
    for index in INDEXES:
        op.drop_index(index, table_name="invoices")
    for name in TEXT_COLUMNS:
        op.alter_column("invoices", name, type_=sa.Text(), existing_type=sa.Text(collation="C"))
    op.create_index("ix_invoices_company_customer", "invoices", ["company_id", "customer_id", "currency"])
    op.drop_column("invoices", "document")
