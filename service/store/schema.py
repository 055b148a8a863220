"""The schema in SQLAlchemy Core. Migrations in migrations/versions are generated from it.

Money is unconstrained `numeric` (exact); amounts are stored at their currency's minor unit (issue 13).
The section 5 invariants are also CHECK constraints, so no code path can store a corrupt invoice.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

# The format of invoices.document, as transport/document.py renders it. Bump it with any change to what
# render produces (tests/test_document.py pins the rendering): stored documents of an older version are
# then never answered; each is rendered again from its row the first time it is read.
DOCUMENT_VERSION = 2
CURRENT_DOCUMENT = f"CASE WHEN document_version = {DOCUMENT_VERSION} THEN document END AS document"

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _money(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(asdecimal=True), nullable=nullable)


def _ts(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# Distribution by company (Citus, docs/citus.md): every key and foreign key leads with company_id, so a
# company's rows of every table live on one shard and each key is checked there.
def _parent(table: str) -> sa.Column[object]:
    return sa.Column(f"{table[:-1]}_id", UUID(as_uuid=False), nullable=False)


def _parent_key(table: str) -> sa.ForeignKeyConstraint:
    """(company_id, <parent>_id) -> <parent>(company_id, id), deleted with the parent."""
    column = f"{table[:-1]}_id"
    return sa.ForeignKeyConstraint(["company_id", column], [f"{table}.company_id", f"{table}.id"], ondelete="CASCADE")


# Byte-order collation: text sorts and compares the same in PostgreSQL, Python and every client.
_TEXT = sa.Text(collation="C")
STATUSES = "('DRAFT','SUBMITTED','PARTIALLY_PAID','PAID','VOID')"
ROUNDING_MODES = "('HALF_UP','HALF_EVEN','UP','DOWN')"
TAX_MODES = "('LINE','DOCUMENT_PER_RATE')"
TAX_CATEGORIES = "('S','Z','E','AE','K','G','O','L','M')"

WRITE_XACT = "(pg_current_xact_id()::text::bigint)"  # the writing transaction, as a number
# A column the database fills (its default, a sequencer, a worker lease): inserts leave it out.
SERVER_SET = {"set_by": "server"}

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("invoice_number", _TEXT),
    sa.Column("customer_id", _TEXT, nullable=False),
    sa.Column("customer_name", _TEXT, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("void_reason", sa.Text),
    sa.Column("payment_status", sa.Text),
    sa.Column("vendor_status", _TEXT, nullable=False, server_default=""),
    sa.Column("currency", _TEXT, nullable=False),
    _money("currency_rate"),
    _ts("issue_date"),
    _ts("due_date"),
    _ts("paid_on_date"),
    _ts("source_modified_date"),
    _ts("period_start"),
    _ts("period_end"),
    _money("sub_total", False),
    _money("additional_tax_amount", False),
    _money("additional_tax_percentage"),
    _money("total_tax_amount", False),
    _money("discount_percentage"),
    _money("total_discount", False),
    _money("total_amount", False),
    _money("amount_due", False),
    _money("amount_paid", False),
    _money("amount_credited", False),
    # Refunds of payments (issue 16): they never reopen amount_due, and never exceed amount_paid.
    sa.Column("amount_refunded", sa.Numeric(asdecimal=True), nullable=False, server_default="0"),
    # Money rules (issue 13): the modes the invoice is rounded in, and its cash rounding (EN 16931 BT-114).
    sa.Column("rounding_mode", sa.Text, nullable=False, server_default="HALF_UP"),
    sa.Column("tax_mode", sa.Text, nullable=False, server_default="LINE"),
    _money("cash_rounding_increment"),
    sa.Column("cash_rounding_amount", sa.Numeric(asdecimal=True), nullable=False, server_default="0"),
    sa.Column("note", _TEXT, nullable=False, server_default=""),
    sa.Column("invoice_type", sa.Text),
    sa.Column("billing_reason", sa.Text),
    sa.Column("subscription_id", _TEXT, nullable=False, server_default=""),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    sa.Column("supplemental_data", JSONB),
    sa.Column("withholding_tax", JSONB, nullable=False, server_default="[]"),
    sa.Column("sales_order_refs", JSONB, nullable=False, server_default="[]"),
    # Invoice-level allowances and charges (EN 16931 BG-20/21), amounts as exact decimal strings; always
    # read and written with the whole invoice (store/invoices.py _AC_CODEC).
    sa.Column("allowance_charges", JSONB, nullable=False, server_default="[]"),
    sa.Column("version", sa.Integer, nullable=False),
    _ts("create_time", False),
    _ts("modified_date", False),
    _ts("finalize_time"),
    _ts("void_time"),
    _ts("sent_time"),
    # Parties (issue 16), as JSON objects of service/domain/parties.py: the seller, terms and means are the
    # company profile as it was at finalization (NULL on drafts); the buyer and delivery are the client's.
    sa.Column("seller", JSONB),
    sa.Column("buyer", JSONB),
    sa.Column("buyer_reference", _TEXT, nullable=False, server_default=""),
    sa.Column("purchase_order_reference", _TEXT, nullable=False, server_default=""),
    sa.Column("delivery", JSONB),
    sa.Column("payment_terms", JSONB),
    sa.Column("payment_means", JSONB),
    # The digest (company_logos) of the logo the seller snapshot was taken with: "" for none; NULL for
    # drafts and for invoices issued before logos were snapshotted (their PDFs draw the live logo).
    sa.Column("seller_logo", sa.Text),
    # The serialized invoices.v1.Invoice, rewritten with every change: reads stream it as stored. Its
    # format is DOCUMENT_VERSION's: a document of another version is read as none, and rendered again.
    sa.Column("document", sa.LargeBinary),
    sa.Column("document_version", sa.SmallInteger),
    # The transaction (xid8) that last wrote the row: ListInvoices pages by a key that can change keep to
    # the rows unchanged since their first page's snapshot (pg_visible_in_snapshot).
    sa.Column("write_xact", sa.BigInteger, nullable=False, server_default=sa.text(WRITE_XACT), info=SERVER_SET),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "invoice_number"),
    sa.CheckConstraint(f"status IN {STATUSES}", name="status"),
    sa.CheckConstraint("amount_due >= 0 AND amount_paid >= 0 AND amount_credited >= 0", name="non_negative"),
    sa.CheckConstraint(
        "(status = 'VOID' AND amount_due = 0 AND void_reason IS NOT NULL) OR (status <> 'VOID' "
        "AND void_reason IS NULL AND amount_due <= total_amount + cash_rounding_amount "
        "AND amount_due = total_amount + cash_rounding_amount - amount_paid - amount_credited)",
        name="amount_due",
    ),
    sa.CheckConstraint(f"rounding_mode IN {ROUNDING_MODES} AND tax_mode IN {TAX_MODES}", name="money_modes"),
    sa.CheckConstraint("status <> 'DRAFT' OR amount_paid = 0", name="draft_unpaid"),
    sa.CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount_paid", name="refunded"),
    sa.CheckConstraint("status IN ('DRAFT','VOID') OR invoice_number IS NOT NULL", name="numbered"),
)
# ListInvoices: each common filter and the default order (create_time desc) walk an index, so a
# first page costs the same at any table size; id breaks ties for keyset pages.
c = invoices.c
sa.Index("ix_invoices_company_created", c.company_id, c.create_time, c.id)
sa.Index("ix_invoices_company_status", c.company_id, c.status, c.create_time, c.id)
sa.Index("ix_invoices_company_customer", c.company_id, c.customer_id, c.create_time, c.id)
sa.Index("ix_invoices_company_due", c.company_id, c.due_date, c.id)
sa.Index("ix_invoices_company_amount_due", c.company_id, c.amount_due, c.id)
sa.Index("ix_invoices_company_modified", c.company_id, c.modified_date, c.id)

line_items = sa.Table(
    "line_items",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("invoices"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    _money("quantity", False),
    _money("unit_amount", False),
    _money("discount_amount", False),
    _money("discount_percentage"),
    _money("sub_total", False),
    _money("tax_amount", False),
    _money("total_amount", False),
    # A charge on the line (EN 16931 BG-28), included in sub_total.
    sa.Column("charge_amount", sa.Numeric(asdecimal=True), nullable=False, server_default="0"),
    _money("charge_percentage"),
    sa.Column("charge_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("charge_reason_code", sa.Text, nullable=False, server_default=""),
    sa.Column("service_start_date", sa.Date),
    sa.Column("service_end_date", sa.Date),
    sa.Column("sku", sa.Text, nullable=False, server_default=""),
    sa.Column("unit_of_measure", sa.Text, nullable=False, server_default=""),
    sa.Column("price_id", sa.Text, nullable=False, server_default=""),
    sa.Column("is_direct_income", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("refs", JSONB, nullable=False, server_default="{}"),
    sa.Column("metadata", JSONB, nullable=False, server_default="{}"),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "invoice_id", "position"),
    _parent_key("invoices"),
    sa.CheckConstraint("quantity >= 0", name="quantity"),
)

taxation_items = sa.Table(
    "taxation_items",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("line_items"),
    _parent("invoices"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.Text, nullable=False, server_default=""),
    _money("tax_rate"),
    _money("tax_amount", False),
    sa.Column("tax_rate_type", sa.Text, nullable=False),
    _money("exempt_amount"),
    sa.Column("tax_code", sa.Text, nullable=False, server_default=""),
    sa.Column("tax_code_description", sa.Text, nullable=False, server_default=""),
    sa.Column("tax_rate_description", sa.Text, nullable=False, server_default=""),
    sa.Column("jurisdiction", sa.Text, nullable=False, server_default=""),
    sa.Column("location_code", sa.Text, nullable=False, server_default=""),
    sa.Column("tax_date", sa.Date),
    _ts("create_time", False),
    # EN 16931 VAT category (UNCL5305 subset) and exemption reason (BT-120/121); NULL: no category.
    sa.Column("tax_category", sa.Text),
    sa.Column("exemption_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("exemption_reason_code", sa.Text, nullable=False, server_default=""),
    sa.PrimaryKeyConstraint("company_id", "id"),
    _parent_key("line_items"),
    _parent_key("invoices"),
    sa.CheckConstraint(f"tax_category IN {TAX_CATEGORIES}", name="tax_category"),
)
sa.Index("ix_taxation_items_invoice", taxation_items.c.company_id, taxation_items.c.invoice_id)
sa.Index(
    "ix_taxation_items_line", taxation_items.c.company_id, taxation_items.c.line_item_id, taxation_items.c.position
)

payment_allocations = sa.Table(
    "payment_allocations",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("invoices"),
    _money("amount", False),
    sa.Column("currency", sa.Text, nullable=False),
    _money("currency_rate"),
    _money("applied_amount", False),
    _ts("allocated_on_date"),
    sa.Column("payment", JSONB, nullable=False, server_default="{}"),
    sa.Column("source", sa.Text, nullable=False),
    _ts("create_time", False),
    sa.Column("refunded_amount", sa.Numeric(asdecimal=True), nullable=False, server_default="0"),
    sa.PrimaryKeyConstraint("company_id", "id"),
    _parent_key("invoices"),
    sa.CheckConstraint("applied_amount > 0 AND amount > 0", name="positive"),
    sa.CheckConstraint("refunded_amount >= 0 AND refunded_amount <= applied_amount", name="refunded"),
)
sa.Index(
    "ix_payment_allocations_invoice",
    payment_allocations.c.company_id,
    payment_allocations.c.invoice_id,
    payment_allocations.c.create_time,
)

credit_memos = sa.Table(
    "credit_memos",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("invoices"),
    sa.Column("reason", sa.Text, nullable=False),
    _money("total_amount", False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=""),
    sa.Column("reason_code", sa.Text, nullable=False, server_default=""),
    _ts("create_time", False),
    # The credit note that issued the memo (issue 16); none on memos from before credit notes.
    sa.Column("credit_note_id", UUID(as_uuid=False)),
    sa.Column("credit_note_number", sa.Text, nullable=False, server_default=""),
    sa.PrimaryKeyConstraint("company_id", "id"),
    _parent_key("invoices"),
    sa.CheckConstraint("total_amount >= 0", name="non_negative"),
)
sa.Index("ix_credit_memos_invoice", credit_memos.c.company_id, credit_memos.c.invoice_id)

customer_credit_balances = sa.Table(
    "customer_credit_balances",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("currency", sa.Text, primary_key=True),
    _money("balance", False),
    _ts("update_time", False),
    sa.CheckConstraint("balance >= 0", name="non_negative"),
)

# Each company's money defaults (issue 13), applied to invoices created without their own modes.
company_money_settings = sa.Table(
    "company_money_settings",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("rounding_mode", sa.Text, nullable=False, server_default="HALF_UP"),
    sa.Column("tax_mode", sa.Text, nullable=False, server_default="LINE"),
    _ts("update_time", False),
    sa.CheckConstraint(f"rounding_mode IN {ROUNDING_MODES} AND tax_mode IN {TAX_MODES}", name="modes"),
)

# Each company's profile (issue 16): the seller, payment terms and means, numbering, locale and logo. Its
# rounding modes stay in company_money_settings (the money defaults every create reads).
company_profiles = sa.Table(
    "company_profiles",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("profile", JSONB, nullable=False, server_default="{}"),
    sa.Column("logo", sa.LargeBinary),
    sa.Column("logo_content_type", sa.Text, nullable=False, server_default=""),
    sa.Column("version", sa.Integer, nullable=False),
    _ts("update_time", False),
)

# Every logo a company profile has held, by content digest: an issued invoice's seller snapshot names the
# logo it was issued with (invoices.seller_logo), so a later logo edit leaves its PDF unchanged.
company_logos = sa.Table(
    "company_logos",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("digest", sa.Text, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
)

# What migration 0008 changed when it rounded stored invoices to their currency: one row per invoice.
invoice_rounding_report = sa.Table(
    "invoice_rounding_report",
    metadata,
    sa.Column("invoice_id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    _money("old_sub_total"),
    _money("new_sub_total"),
    _money("old_total_tax_amount"),
    _money("new_total_tax_amount"),
    _money("old_total_amount"),
    _money("new_total_amount"),
    _money("old_amount_due"),
    _money("new_amount_due"),
    sa.Column("old_status", sa.Text, nullable=False),
    sa.Column("new_status", sa.Text, nullable=False),
    _ts("report_time", False),
    sa.PrimaryKeyConstraint("company_id", "invoice_id"),
)

# Every movement of a credit balance, for audit: the balance is the sum of its entries.
credit_entries = sa.Table(
    "credit_entries",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("customer_id", sa.Text, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    _money("amount", False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("invoice_id", UUID(as_uuid=False)),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    _ts("create_time", False),
    sa.PrimaryKeyConstraint("company_id", "id"),
)
sa.Index("ix_credit_entries_customer", credit_entries.c.company_id, credit_entries.c.customer_id)

# Gapless numbering: the row is locked and bumped inside the finalizing transaction.
invoice_number_sequences = sa.Table(
    "invoice_number_sequences",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("last_value", sa.BigInteger, nullable=False),
)

# Credit notes (issue 16): documents of their own, numbered from their own gapless sequence at issue.
CREDIT_NOTE_STATUSES = "('DRAFT','ISSUED','VOID')"
credit_notes = sa.Table(
    "credit_notes",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("credit_note_number", _TEXT),
    _parent("invoices"),
    sa.Column("invoice_number", _TEXT, nullable=False),
    _ts("invoice_issue_date"),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("customer_id", _TEXT, nullable=False),
    sa.Column("customer_name", _TEXT, nullable=False, server_default=""),
    sa.Column("status", sa.Text, nullable=False),
    _money("sub_total", False),
    _money("total_tax_amount", False),
    _money("total_amount", False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("reason_code", sa.Text, nullable=False, server_default=""),
    sa.Column("memo", sa.Text, nullable=False, server_default=""),
    # How the total is applied: all three are set at issue (a draft keeps what the client asked, or none).
    _money("credit_amount"),
    _money("balance_amount"),
    _money("refund_amount"),
    sa.Column("version", sa.Integer, nullable=False),
    _ts("create_time", False),
    _ts("issue_time"),
    _ts("void_time"),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "credit_note_number"),
    _parent_key("invoices"),
    sa.CheckConstraint(f"status IN {CREDIT_NOTE_STATUSES}", name="status"),
    sa.CheckConstraint("total_amount >= 0 AND sub_total + total_tax_amount = total_amount", name="totals"),
    sa.CheckConstraint(
        "status <> 'ISSUED' OR (credit_note_number IS NOT NULL AND credit_amount >= 0 AND balance_amount >= 0 "
        "AND refund_amount >= 0 AND credit_amount + balance_amount + refund_amount = total_amount)",
        name="issued",
    ),
)
sa.Index("ix_credit_notes_invoice", credit_notes.c.company_id, credit_notes.c.invoice_id)
sa.Index("ix_credit_notes_customer", credit_notes.c.company_id, credit_notes.c.customer_id, credit_notes.c.create_time)
sa.Index("ix_credit_notes_company_created", credit_notes.c.company_id, credit_notes.c.create_time, credit_notes.c.id)

credit_note_lines = sa.Table(
    "credit_note_lines",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("credit_notes"),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("invoice_line_item_id", sa.Text, nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    _money("quantity", False),
    _money("unit_amount", False),
    _money("tax_rate"),
    _money("sub_total", False),
    _money("tax_amount", False),
    _money("total_amount", False),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "credit_note_id", "position"),
    _parent_key("credit_notes"),
)

# Each company's gapless credit note numbers, drawn at issue (the row stays locked until commit).
credit_note_number_sequences = sa.Table(
    "credit_note_number_sequences",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("last_value", sa.BigInteger, nullable=False),
)

# Money paid back: of a payment allocation, of a credit note's refund_amount, or of a credit balance.
refunds = sa.Table(
    "refunds",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("invoice_id", UUID(as_uuid=False)),
    sa.Column("payment_allocation_id", UUID(as_uuid=False)),
    sa.Column("credit_note_id", UUID(as_uuid=False)),
    sa.Column("customer_id", _TEXT, nullable=False),
    _money("amount", False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("reference", sa.Text, nullable=False, server_default=""),
    _ts("create_time", False),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.ForeignKeyConstraint(["company_id", "invoice_id"], ["invoices.company_id", "invoices.id"], ondelete="CASCADE"),
    sa.CheckConstraint("amount > 0", name="positive"),
)
sa.Index("ix_refunds_invoice", refunds.c.company_id, refunds.c.invoice_id)

push_operations = sa.Table(
    "push_operations",
    metadata,
    sa.Column("push_operation_key", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("data_type", sa.Text, nullable=False),
    sa.Column("operation", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("error_message", sa.Text, nullable=False, server_default=""),
    sa.Column("validation", JSONB, nullable=False, server_default="{}"),
    sa.Column("changes", JSONB, nullable=False, server_default="[]"),
    _ts("requested_on_utc", False),
    _ts("completed_on_utc"),
    sa.Column("timeout_in_minutes", sa.Integer, nullable=False, server_default="0"),
    # Asynchronous writes: the request to apply, and the worker lease that makes it applied once.
    sa.Column("request", sa.LargeBinary),
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0", info=SERVER_SET),
    sa.PrimaryKeyConstraint("company_id", "push_operation_key"),
    sa.CheckConstraint("status IN ('PENDING','SUCCESS','FAILED','TIMED_OUT')", name="status"),
)
sa.Index("ix_push_operations_company", push_operations.c.company_id, push_operations.c.requested_on_utc)
# Retention purges finished operations oldest first.
sa.Index(
    "ix_push_operations_completed",
    push_operations.c.completed_on_utc,
    postgresql_where=push_operations.c.status != "PENDING",
)
sa.Index(
    "ix_push_operations_pending",
    push_operations.c.requested_on_utc,
    postgresql_where=push_operations.c.status == "PENDING",
)

# The change feed. Writers append rows (position NULL) in their own transaction; per company, one sequencer
# at a time (holding the company's invoice_event_heads row) numbers them in the order they became visible,
# which is commit order. Positions count per company; watchers (each scoped to one company) read by position.
invoice_events = sa.Table(
    "invoice_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
    sa.Column("position", sa.BigInteger, info=SERVER_SET),  # given by the sequencer
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("invoice_id", sa.Text, nullable=False, server_default=""),
    sa.Column("push_operation_key", sa.Text, nullable=False, server_default=""),
    sa.Column("attachment_id", sa.Text, nullable=False, server_default=""),
    sa.Column("invoice", sa.LargeBinary),  # the serialized Invoice, for COMMUNICATION_TRIGGERED
    _ts("create_time", False),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "position"),  # watchers read a company's events by it
)
sa.Index("ix_invoice_events_unsequenced", invoice_events.c.id, postgresql_where=invoice_events.c.position.is_(None))
# Retention takes the oldest events first.
sa.Index(
    "ix_invoice_events_create_time",
    invoice_events.c.create_time,
    postgresql_where=invoice_events.c.position.isnot(None),
)

# Each company's feed: the last position given (the sequencer numbers on from it, under this row's lock) and
# the highest position retention deleted (every event up to it is gone: a watcher behind it lost events).
invoice_event_heads = sa.Table(
    "invoice_event_heads",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("purged", sa.BigInteger, nullable=False, server_default="0"),
)

# AIP-155 request ids: the first answer to a write, replayed for a day.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("company_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # RUNNING or DONE
    sa.Column("response", sa.LargeBinary),  # the serialized response, or
    sa.Column("status", sa.LargeBinary),  # the serialized google.rpc.Status of a refusal
    _ts("create_time", False),
    _ts("expire_time", False),
)
sa.Index("ix_idempotency_keys_expiry", idempotency_keys.c.expire_time)

attachments = sa.Table(
    "attachments",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    _parent("invoices"),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("file_size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("include_when_sent", sa.Boolean, nullable=False),
    _ts("date_created", False),
    _ts("modified_date", False),
    # Set while an upload streams in (its pieces are staged outside any transaction): the row is invisible
    # to every read until the upload commits, and removed by anyone once this time has passed.
    _ts("staged_until"),
    sa.PrimaryKeyConstraint("company_id", "id"),
    _parent_key("invoices"),
    sa.CheckConstraint("file_size >= 0", name="size"),
)
sa.Index("ix_attachments_invoice", attachments.c.company_id, attachments.c.invoice_id, attachments.c.date_created)
sa.Index("ix_attachments_staged_until", attachments.c.staged_until)

# An attachment's bytes in fixed-size pieces: uploads and downloads stream them, memory stays flat.
attachment_chunks = sa.Table(
    "attachment_chunks",
    metadata,
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("attachment_id", UUID(as_uuid=False), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("start", sa.BigInteger, nullable=False),  # byte offset of this chunk in the file
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("company_id", "attachment_id", "seq"),
    _parent_key("attachments"),
)

# API keys: only a SHA-256 of each key is kept; a key is shown once, when it is created. A reference table
# on Citus (replicated to every node, keyed globally): authentication finds a key by its hash before any
# company is known.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column("company_id", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("prefix", sa.Text, nullable=False),  # the first characters, to tell keys apart in lists
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    _ts("create_time", False),
    _ts("revoke_time"),
    _ts("expire_time"),  # NULL: never expires
    sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()),  # read RPCs only
)
sa.Index("ix_api_keys_company", api_keys.c.company_id)

# SendInvoice's outbox: the intent commits with the invoice locked; delivery happens afterwards, outside any
# lock and without a pooled connection, and its result is recorded here and on the push operation.
mail_outbox = sa.Table(
    "mail_outbox",
    metadata,
    sa.Column("id", UUID(as_uuid=False), nullable=False),
    sa.Column("company_id", sa.Text, nullable=False),
    _parent("invoices"),
    sa.Column("push_operation_key", UUID(as_uuid=False), nullable=False),
    # The caller's request_id (or idempotency-key): a retry after a lost answer finds this send, not a new one.
    sa.Column("request_id", sa.Text, nullable=False, server_default=""),
    sa.Column("message_id", sa.Text, nullable=False),  # the same Message-ID on every attempt
    sa.Column("recipients", sa.ARRAY(sa.Text), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # QUEUED, SENDING, SENT or FAILED
    _ts("claimed_until"),  # SENDING: a delivery may be in flight until then; nobody else claims it
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    _ts("create_time", False),
    _ts("sent_time"),
    sa.PrimaryKeyConstraint("company_id", "id"),
    sa.UniqueConstraint("company_id", "push_operation_key"),
    sa.UniqueConstraint("company_id", "message_id"),
    _parent_key("invoices"),
    sa.CheckConstraint("status IN ('QUEUED', 'SENDING', 'SENT', 'FAILED')", name="status"),
)
sa.Index(
    "ix_mail_outbox_company_id_request_id",
    mail_outbox.c.company_id,
    mail_outbox.c.request_id,
    unique=True,
    postgresql_where=mail_outbox.c.request_id != "",
)
