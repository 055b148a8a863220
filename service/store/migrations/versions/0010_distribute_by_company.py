"""distribute by company: company_id leads every key and foreign key; per-company event positions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

Converts existing data in place (docs/citus.md):
- child tables without company_id (line_items, taxation_items, payment_allocations, credit_memos,
  attachment_chunks) get it, copied from their parent;
- every primary key, unique constraint and foreign key becomes composite with company_id leading;
- the change feed numbers events per company: invoice_event_heads holds each company's last position and
  the highest position retention purged. Positions given so far stay as they are (they were unique, hence
  unique per company); every company known today numbers on from today's global head, so no cursor a
  client holds can point past its company's new events, and its purge horizon is the global one so far.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (child table, parent table, child column naming the parent's id)
_CHILDREN = (
    ("line_items", "invoices", "invoice_id"),
    ("taxation_items", "invoices", "invoice_id"),
    ("payment_allocations", "invoices", "invoice_id"),
    ("credit_memos", "invoices", "invoice_id"),
    ("attachment_chunks", "attachments", "attachment_id"),
)
# Foreign keys, old single-column name -> new composite (company_id, column) name.
_FKS = (
    ("line_items", "invoice_id", "invoices"),
    ("taxation_items", "invoice_id", "invoices"),
    ("taxation_items", "line_item_id", "line_items"),
    ("payment_allocations", "invoice_id", "invoices"),
    ("credit_memos", "invoice_id", "invoices"),
    ("attachments", "invoice_id", "invoices"),
    ("attachment_chunks", "attachment_id", "attachments"),
    ("mail_outbox", "invoice_id", "invoices"),
)
# Primary keys: table -> (old columns, new columns).
_PKS = {
    "invoices": (["id"], ["company_id", "id"]),
    "line_items": (["id"], ["company_id", "id"]),
    "taxation_items": (["id"], ["company_id", "id"]),
    "payment_allocations": (["id"], ["company_id", "id"]),
    "credit_memos": (["id"], ["company_id", "id"]),
    "invoice_rounding_report": (["invoice_id"], ["company_id", "invoice_id"]),
    "credit_entries": (["id"], ["company_id", "id"]),
    "push_operations": (["push_operation_key"], ["company_id", "push_operation_key"]),
    "invoice_events": (["id"], ["company_id", "id"]),
    "attachments": (["id"], ["company_id", "id"]),
    "attachment_chunks": (["attachment_id", "seq"], ["company_id", "attachment_id", "seq"]),
    "mail_outbox": (["id"], ["company_id", "id"]),
}
# Unique constraints: (table, old columns, new columns).
_UNIQUES = (
    ("line_items", ["invoice_id", "position"], ["company_id", "invoice_id", "position"]),
    ("invoice_events", ["position"], ["company_id", "position"]),
    ("mail_outbox", ["message_id"], ["company_id", "message_id"]),
    ("mail_outbox", ["push_operation_key"], ["company_id", "push_operation_key"]),
)
# Plain indexes that now lead with company_id: name, table, old columns, new columns.
_INDEXES = (
    ("ix_taxation_items_invoice", "taxation_items", ["invoice_id"], ["company_id", "invoice_id"]),
    (
        "ix_taxation_items_line",
        "taxation_items",
        ["line_item_id", "position"],
        ["company_id", "line_item_id", "position"],
    ),
    (
        "ix_payment_allocations_invoice",
        "payment_allocations",
        ["invoice_id", "create_time"],
        ["company_id", "invoice_id", "create_time"],
    ),
    ("ix_credit_memos_invoice", "credit_memos", ["invoice_id"], ["company_id", "invoice_id"]),
    (
        "ix_attachments_invoice",
        "attachments",
        ["invoice_id", "date_created"],
        ["company_id", "invoice_id", "date_created"],
    ),
)


def _uq(table: str, columns: list[str]) -> str:
    return f"uq_{table}_{'_'.join(columns)}"


def upgrade() -> None:
    for child, parent, column in _CHILDREN:
        op.add_column(child, sa.Column("company_id", sa.Text(), nullable=True))
        op.execute(
            f"UPDATE {child} c SET company_id = p.company_id FROM {parent} p WHERE p.id = c.{column}"  # noqa: S608
        )
        op.alter_column(child, "company_id", nullable=False)
    for table, column, parent in _FKS:
        op.drop_constraint(f"fk_{table}_{column}_{parent}", table, type_="foreignkey")
    for table, old, _ in _UNIQUES:
        op.drop_constraint(_uq(table, old), table, type_="unique")
    for table, (_, new) in _PKS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, new)
    for table, _, new in _UNIQUES:
        op.create_unique_constraint(_uq(table, new), table, new)
    for name, table, _, new in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, new)
    # The unique (company_id, position) serves what this index did.
    op.drop_index("ix_invoice_events_company", table_name="invoice_events")
    op.create_index(
        "ix_invoice_events_create_time",
        "invoice_events",
        ["create_time"],
        postgresql_where=sa.text("position IS NOT NULL"),
    )
    for table, column, parent in _FKS:
        op.create_foreign_key(
            f"fk_{table}_company_id_{parent}",
            table,
            parent,
            ["company_id", column],
            ["company_id", "id"],
            ondelete="CASCADE",
        )
    op.create_table(
        "invoice_event_heads",
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("position", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("purged", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("company_id", name="pk_invoice_event_heads"),
    )
    # Every company known today: numbering goes on from the global head; the global purge horizon so far
    # (retention deleted a prefix of global positions, the oldest kept minus one) is each company's.
    op.execute(
        """
        WITH head AS (SELECT coalesce(max(position), 0) AS h, coalesce(min(position) - 1, 0) AS p
                      FROM invoice_events)
        INSERT INTO invoice_event_heads (company_id, position, purged)
        SELECT company_id, (SELECT h FROM head), (SELECT p FROM head) FROM (
            SELECT company_id FROM invoice_events UNION SELECT company_id FROM invoices
            UNION SELECT company_id FROM push_operations UNION SELECT company_id FROM idempotency_keys
            UNION SELECT company_id FROM api_keys
        ) companies
        """
    )


def downgrade() -> None:
    op.drop_table("invoice_event_heads")
    # Positions were per company: number sequenced events globally again, in append order.
    op.execute("UPDATE invoice_events SET position = -position WHERE position IS NOT NULL")
    op.execute(
        "UPDATE invoice_events e SET position = n.p FROM (SELECT company_id, id, row_number() OVER (ORDER BY id) "
        "AS p FROM invoice_events WHERE position IS NOT NULL) n WHERE e.company_id = n.company_id AND e.id = n.id"
    )
    op.drop_index("ix_invoice_events_create_time", table_name="invoice_events")
    op.create_index("ix_invoice_events_company", "invoice_events", ["company_id", "position"])
    for table, _, parent in _FKS:
        op.drop_constraint(f"fk_{table}_company_id_{parent}", table, type_="foreignkey")
    for name, table, old, _ in _INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, old)
    for table, _, new in _UNIQUES:
        op.drop_constraint(_uq(table, new), table, type_="unique")
    for table, (old, _) in _PKS.items():
        op.drop_constraint(f"pk_{table}", table, type_="primary")
        op.create_primary_key(f"pk_{table}", table, old)
    for table, old, _ in _UNIQUES:
        op.create_unique_constraint(_uq(table, old), table, old)
    for table, column, parent in _FKS:
        op.create_foreign_key(f"fk_{table}_{column}_{parent}", table, parent, [column], ["id"], ondelete="CASCADE")
    for child, _, _ in _CHILDREN:
        op.drop_column(child, "company_id")
