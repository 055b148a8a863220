"""Staged uploads (attachments.staged_until) and the SendInvoice mail outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attachments", sa.Column("staged_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_attachments_staged_until", "attachments", ["staged_until"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("invoice_id", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("push_operation_key", postgresql.UUID(as_uuid=False), nullable=False),
        sa.Column("request_id", sa.Text(), server_default="", nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("recipients", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_time", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('QUEUED', 'SENDING', 'SENT', 'FAILED')", name=op.f("ck_mail_outbox_status")),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_mail_outbox_invoice_id_invoices"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_mail_outbox_message_id")),
        sa.UniqueConstraint("push_operation_key", name=op.f("uq_mail_outbox_push_operation_key")),
    )
    op.create_index(
        "ix_mail_outbox_company_id_request_id",
        "mail_outbox",
        ["company_id", "request_id"],
        unique=True,
        postgresql_where=sa.text("request_id <> ''"),
    )


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_company_id_request_id", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.drop_index("ix_attachments_staged_until", table_name="attachments")
    op.drop_column("attachments", "staged_until")
