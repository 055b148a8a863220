"""credit notes, their lines and number sequence, refunds; invoices.amount_refunded; memos link their note

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01

Every key leads with company_id (docs/citus.md). Existing invoices have refunded nothing (amount_refunded 0);
existing credit memos have no credit note.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_C = sa.Text(collation="C")


def _money(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(), nullable=nullable)


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("invoices", sa.Column("amount_refunded", sa.Numeric(), server_default="0", nullable=False))
    op.create_check_constraint(
        op.f("ck_invoices_refunded"), "invoices", "amount_refunded >= 0 AND amount_refunded <= amount_paid"
    )
    op.add_column("payment_allocations", sa.Column("refunded_amount", sa.Numeric(), server_default="0", nullable=False))
    op.create_check_constraint(
        op.f("ck_payment_allocations_refunded"),
        "payment_allocations",
        "refunded_amount >= 0 AND refunded_amount <= applied_amount",
    )
    op.add_column("credit_memos", sa.Column("credit_note_id", UUID(as_uuid=False), nullable=True))
    op.add_column("credit_memos", sa.Column("credit_note_number", sa.Text(), server_default="", nullable=False))
    op.create_table(
        "credit_notes",
        sa.Column("id", UUID(as_uuid=False), nullable=False),
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("credit_note_number", _C, nullable=True),
        sa.Column("invoice_id", UUID(as_uuid=False), nullable=False),
        sa.Column("invoice_number", _C, nullable=False),
        _ts("invoice_issue_date"),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("customer_id", _C, nullable=False),
        sa.Column("customer_name", _C, server_default="", nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        _money("sub_total", False),
        _money("total_tax_amount", False),
        _money("total_amount", False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("reason_code", sa.Text(), server_default="", nullable=False),
        sa.Column("memo", sa.Text(), server_default="", nullable=False),
        _money("credit_amount"),
        _money("balance_amount"),
        _money("refund_amount"),
        sa.Column("version", sa.Integer(), nullable=False),
        _ts("create_time", False),
        _ts("issue_time"),
        _ts("void_time"),
        sa.CheckConstraint("status IN ('DRAFT','ISSUED','VOID')", name=op.f("ck_credit_notes_status")),
        sa.CheckConstraint(
            "total_amount >= 0 AND sub_total + total_tax_amount = total_amount", name=op.f("ck_credit_notes_totals")
        ),
        sa.CheckConstraint(
            "status <> 'ISSUED' OR (credit_note_number IS NOT NULL AND credit_amount >= 0 AND balance_amount >= 0 "
            "AND refund_amount >= 0 AND credit_amount + balance_amount + refund_amount = total_amount)",
            name=op.f("ck_credit_notes_issued"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id", "invoice_id"],
            ["invoices.company_id", "invoices.id"],
            name=op.f("fk_credit_notes_company_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "id", name=op.f("pk_credit_notes")),
        sa.UniqueConstraint(
            "company_id", "credit_note_number", name=op.f("uq_credit_notes_company_id_credit_note_number")
        ),
    )
    op.create_index("ix_credit_notes_invoice", "credit_notes", ["company_id", "invoice_id"])
    op.create_index("ix_credit_notes_customer", "credit_notes", ["company_id", "customer_id", "create_time"])
    op.create_index("ix_credit_notes_company_created", "credit_notes", ["company_id", "create_time", "id"])
    op.create_table(
        "credit_note_lines",
        sa.Column("id", UUID(as_uuid=False), nullable=False),
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("credit_note_id", UUID(as_uuid=False), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("invoice_line_item_id", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        _money("quantity", False),
        _money("unit_amount", False),
        _money("tax_rate"),
        _money("sub_total", False),
        _money("tax_amount", False),
        _money("total_amount", False),
        sa.ForeignKeyConstraint(
            ["company_id", "credit_note_id"],
            ["credit_notes.company_id", "credit_notes.id"],
            name=op.f("fk_credit_note_lines_company_id_credit_notes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "id", name=op.f("pk_credit_note_lines")),
        sa.UniqueConstraint(
            "company_id",
            "credit_note_id",
            "position",
            name=op.f("uq_credit_note_lines_company_id_credit_note_id_position"),
        ),
    )
    op.create_table(
        "credit_note_number_sequences",
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("last_value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_credit_note_number_sequences")),
    )
    op.create_table(
        "refunds",
        sa.Column("id", UUID(as_uuid=False), nullable=False),
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", UUID(as_uuid=False), nullable=True),
        sa.Column("payment_allocation_id", UUID(as_uuid=False), nullable=True),
        sa.Column("credit_note_id", UUID(as_uuid=False), nullable=True),
        sa.Column("customer_id", _C, nullable=False),
        _money("amount", False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("reference", sa.Text(), server_default="", nullable=False),
        _ts("create_time", False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_positive")),
        sa.ForeignKeyConstraint(
            ["company_id", "invoice_id"],
            ["invoices.company_id", "invoices.id"],
            name=op.f("fk_refunds_company_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "id", name=op.f("pk_refunds")),
    )
    op.create_index("ix_refunds_invoice", "refunds", ["company_id", "invoice_id"])


def downgrade() -> None:
    op.drop_table("refunds")
    op.drop_table("credit_note_number_sequences")
    op.drop_table("credit_note_lines")
    op.drop_table("credit_notes")
    op.drop_column("credit_memos", "credit_note_number")
    op.drop_column("credit_memos", "credit_note_id")
    op.drop_constraint(op.f("ck_payment_allocations_refunded"), "payment_allocations", type_="check")
    op.drop_column("payment_allocations", "refunded_amount")
    op.drop_constraint(op.f("ck_invoices_refunded"), "invoices", type_="check")
    op.drop_column("invoices", "amount_refunded")
