"""money exact to the currency (issue 13): modes, cash rounding, company defaults; stored amounts re-rounded

Every stored invoice is brought to the money rules (service/domain/money.py) in SQL, in LINE tax mode and
HALF_UP (PostgreSQL's round(numeric, n) rounds half away from zero, as HALF_UP does):
- line gross = round(quantity x unit_amount); a discount or tax item the old rules computed from its
  percentage (the stored value equals what they gave) is computed again from the new net, others (sent by a
  client) are rounded; line and invoice totals are the sums of the rounded parts;
- an invoice without lines keeps its rounded total and tax, and its sub total becomes total - tax;
- payments in the invoice's currency are rounded, foreign ones become round(amount x rate); credit memos are
  rounded; amount_due and the status follow from the rounded amounts; credit balances are rounded with an
  audit entry (reason ROUNDING) so the balance stays the sum of its entries;
- every invoice whose totals or status changed gets a row in invoice_rounding_report, a new version (etag)
  and its stored document dropped (rendered again at the next read); every document is dropped, since
  amounts are now written at exactly the currency's exponent;
- the invariants are checked in SQL afterwards; any breach stops the migration with the invoices named.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import op

from service.domain.money import exponent

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None
log = logging.getLogger("alembic.runtime.migration")

_MODES = "rounding_mode IN ('HALF_UP','HALF_EVEN','UP','DOWN') AND tax_mode IN ('LINE','DOCUMENT_PER_RATE')"
_AMOUNT_DUE_OLD = (
    "(status = 'VOID' AND amount_due = 0 AND void_reason IS NOT NULL) OR (status <> 'VOID' "
    "AND void_reason IS NULL AND amount_due <= total_amount "
    "AND amount_due = total_amount - amount_paid - amount_credited)"
)
_AMOUNT_DUE = (
    "(status = 'VOID' AND amount_due = 0 AND void_reason IS NOT NULL) OR (status <> 'VOID' "
    "AND void_reason IS NULL AND amount_due <= total_amount + cash_rounding_amount "
    "AND amount_due = total_amount + cash_rounding_amount - amount_paid - amount_credited)"
)

# r(x, currency): x at the currency's minor unit; unchanged for a currency without one (XAU, XXX).
_FUNCTIONS = [
    """CREATE FUNCTION pg_temp.r(x numeric, cur text) RETURNS numeric LANGUAGE sql STABLE AS $$
         SELECT CASE WHEN x IS NULL THEN NULL
                     WHEN (SELECT e FROM pg_temp.minor_units m WHERE m.currency = cur) IS NULL THEN x
                     ELSE round(x, (SELECT e FROM pg_temp.minor_units m WHERE m.currency = cur)) END
       $$""",
    # What the old rules stored for a computed value: at most 9 decimals, half up.
    """CREATE FUNCTION pg_temp.c9(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
         SELECT CASE WHEN scale(x) > 9 THEN round(x, 9) ELSE x END
       $$""",
]

_CONVERT = [
    # What the invoices were, for the report.
    """CREATE TEMP TABLE old_totals ON COMMIT DROP AS
       SELECT id, company_id, currency, sub_total, total_tax_amount, total_amount, amount_due, status,
              additional_tax_amount, additional_tax_percentage FROM invoices""",
    """CREATE TEMP TABLE old_lines ON COMMIT DROP AS
       SELECT l.id, l.quantity, l.unit_amount, l.discount_amount, l.discount_percentage, l.sub_total
       FROM line_items l""",
    # Lines: gross rounded; a discount the old rules computed from its percentage is computed again.
    """UPDATE line_items l SET discount_amount = CASE
         WHEN l.discount_percentage IS NOT NULL AND (l.discount_amount IS NULL OR l.discount_amount =
              pg_temp.c9(pg_temp.c9(l.quantity * l.unit_amount) * l.discount_percentage / 100))
         THEN pg_temp.r(pg_temp.r(l.quantity * l.unit_amount, i.currency) * l.discount_percentage / 100, i.currency)
         ELSE pg_temp.r(coalesce(l.discount_amount, 0), i.currency) END
       FROM invoices i WHERE i.id = l.invoice_id""",
    """UPDATE line_items l SET sub_total = pg_temp.r(l.quantity * l.unit_amount, i.currency) - l.discount_amount
       FROM invoices i WHERE i.id = l.invoice_id""",
    # Tax items: computed from the rate again when the old rules had computed them, else rounded.
    """UPDATE taxation_items t SET tax_amount = CASE
         WHEN t.tax_rate_type = 'PERCENTAGE' AND t.tax_rate IS NOT NULL
              AND t.tax_amount = pg_temp.c9(o.sub_total * t.tax_rate / 100)
         THEN pg_temp.r(l.sub_total * t.tax_rate / 100, i.currency)
         ELSE pg_temp.r(t.tax_amount, i.currency) END,
       exempt_amount = pg_temp.r(t.exempt_amount, i.currency)
       FROM line_items l, old_lines o, invoices i
       WHERE l.id = t.line_item_id AND o.id = l.id AND i.id = l.invoice_id""",
    """UPDATE line_items l SET tax_amount = CASE
         WHEN EXISTS (SELECT 1 FROM taxation_items t WHERE t.line_item_id = l.id)
         THEN (SELECT sum(t.tax_amount) FROM taxation_items t WHERE t.line_item_id = l.id)
         ELSE pg_temp.r(coalesce(l.tax_amount, 0), i.currency) END
       FROM invoices i WHERE i.id = l.invoice_id""",
    "UPDATE line_items SET total_amount = sub_total + tax_amount",
    # Invoices with lines: sums of the rounded parts.
    """UPDATE invoices i SET sub_total = s.sub_total, total_discount = s.discount, additional_tax_amount = CASE
         WHEN o.additional_tax_percentage IS NOT NULL
              AND o.additional_tax_amount = pg_temp.c9(o.sub_total * o.additional_tax_percentage / 100)
         THEN pg_temp.r(s.sub_total * o.additional_tax_percentage / 100, i.currency)
         ELSE pg_temp.r(i.additional_tax_amount, i.currency) END
       FROM (SELECT invoice_id, sum(sub_total) AS sub_total, sum(discount_amount) AS discount
             FROM line_items GROUP BY invoice_id) s, old_totals o
       WHERE s.invoice_id = i.id AND o.id = i.id""",
    """UPDATE invoices i SET total_tax_amount = s.tax + i.additional_tax_amount,
         total_amount = i.sub_total + s.tax + i.additional_tax_amount
       FROM (SELECT invoice_id, sum(tax_amount) AS tax FROM line_items GROUP BY invoice_id) s
       WHERE s.invoice_id = i.id""",
    # Invoices without lines: the total and the tax rounded; the sub total is what makes them add up.
    """UPDATE invoices i SET total_amount = pg_temp.r(i.total_amount, i.currency),
         total_tax_amount = pg_temp.r(i.total_tax_amount, i.currency),
         additional_tax_amount = pg_temp.r(i.additional_tax_amount, i.currency),
         total_discount = pg_temp.r(i.total_discount, i.currency),
         sub_total = pg_temp.r(i.total_amount, i.currency) - pg_temp.r(i.total_tax_amount, i.currency)
       WHERE NOT EXISTS (SELECT 1 FROM line_items l WHERE l.invoice_id = i.id)""",
    # Payments and credit memos.
    """UPDATE payment_allocations a SET amount = pg_temp.r(a.amount, a.currency), applied_amount = CASE
         WHEN a.currency <> i.currency AND a.currency_rate IS NOT NULL
         THEN pg_temp.r(pg_temp.r(a.amount, a.currency) * a.currency_rate, i.currency)
         ELSE pg_temp.r(a.applied_amount, i.currency) END
       FROM invoices i WHERE i.id = a.invoice_id""",
    """UPDATE credit_memos m SET total_amount = pg_temp.r(m.total_amount, i.currency)
       FROM invoices i WHERE i.id = m.invoice_id""",
    """UPDATE invoices i SET
         amount_paid = coalesce((SELECT sum(applied_amount) FROM payment_allocations a WHERE a.invoice_id = i.id), 0),
         amount_credited = coalesce((SELECT sum(total_amount) FROM credit_memos m WHERE m.invoice_id = i.id), 0)""",
    # A void invoice's memo is what its balance was: written off (or reversed) to exactly zero.
    """UPDATE credit_memos m SET total_amount = m.total_amount + (i.total_amount - i.amount_paid - i.amount_credited)
       FROM invoices i WHERE i.id = m.invoice_id AND i.status = 'VOID'
         AND i.total_amount - i.amount_paid - i.amount_credited <> 0
         AND m.id = (SELECT id FROM credit_memos x WHERE x.invoice_id = i.id ORDER BY create_time DESC, id LIMIT 1)
         AND m.total_amount + (i.total_amount - i.amount_paid - i.amount_credited) >= 0""",
    """UPDATE invoices i SET
         amount_credited = coalesce((SELECT sum(total_amount) FROM credit_memos m WHERE m.invoice_id = i.id), 0)
       WHERE i.status = 'VOID'""",
    """UPDATE invoices SET amount_due = CASE WHEN status = 'VOID' THEN 0
         ELSE total_amount - amount_paid - amount_credited END""",
    """UPDATE invoices SET status = CASE WHEN amount_due = 0 THEN 'PAID'
         WHEN amount_due = total_amount THEN 'SUBMITTED' ELSE 'PARTIALLY_PAID' END,
         paid_on_date = CASE WHEN amount_due = 0 THEN coalesce(paid_on_date, modified_date) ELSE paid_on_date END
       WHERE status IN ('SUBMITTED', 'PARTIALLY_PAID', 'PAID')""",
    # The report, a new version for what changed, and documents rendered again at the next read.
    """INSERT INTO invoice_rounding_report
       SELECT o.id, o.company_id, o.currency, o.sub_total, i.sub_total, o.total_tax_amount, i.total_tax_amount,
              o.total_amount, i.total_amount, o.amount_due, i.amount_due, o.status, i.status, now()
       FROM old_totals o JOIN invoices i ON i.id = o.id
       WHERE (o.sub_total, o.total_tax_amount, o.total_amount, o.amount_due, o.status)
             IS DISTINCT FROM (i.sub_total, i.total_tax_amount, i.total_amount, i.amount_due, i.status)""",
    """UPDATE invoices i SET version = version + 1 FROM invoice_rounding_report r WHERE r.invoice_id = i.id""",
    "UPDATE invoices SET document = NULL",
    # Credit balances: rounded, with the difference as an audit entry.
    """INSERT INTO credit_entries (company_id, customer_id, currency, amount, reason, note, create_time)
       SELECT company_id, customer_id, currency, pg_temp.r(balance, currency) - balance, 'ROUNDING',
              'rounded to the currency minor unit (migration 0008)', now()
       FROM customer_credit_balances WHERE pg_temp.r(balance, currency) <> balance""",
    "UPDATE customer_credit_balances SET balance = pg_temp.r(balance, currency)",
]

# Each query lists the invoices breaking an invariant after the conversion; all must be empty.
_CHECKS = {
    "an amount is not at the currency's minor unit": """
       SELECT id FROM invoices WHERE sub_total <> pg_temp.r(sub_total, currency)
         OR total_tax_amount <> pg_temp.r(total_tax_amount, currency)
         OR total_amount <> pg_temp.r(total_amount, currency) OR amount_due <> pg_temp.r(amount_due, currency)
       UNION SELECT l.invoice_id FROM line_items l JOIN invoices i ON i.id = l.invoice_id
         WHERE l.total_amount <> pg_temp.r(l.total_amount, i.currency)""",
    "a line does not add up": """
       SELECT l.invoice_id FROM line_items l JOIN invoices i ON i.id = l.invoice_id
       WHERE l.sub_total <> pg_temp.r(l.quantity * l.unit_amount, i.currency) - l.discount_amount
          OR l.total_amount <> l.sub_total + l.tax_amount""",
    "the lines do not add up to the totals": """
       SELECT i.id FROM invoices i JOIN (SELECT invoice_id, sum(sub_total) s, sum(tax_amount) t FROM line_items
                                        GROUP BY invoice_id) l ON l.invoice_id = i.id
       WHERE i.sub_total <> l.s OR i.total_tax_amount <> l.t + i.additional_tax_amount""",
    "sub_total + tax <> total": "SELECT id FROM invoices WHERE total_amount <> sub_total + total_tax_amount",
    "amount_due outside [0, total] or not total - paid - credited": """
       SELECT id FROM invoices WHERE status <> 'VOID' AND (amount_due < 0 OR amount_due > total_amount
         OR amount_due <> total_amount - amount_paid - amount_credited)""",
    "a negative total": "SELECT id FROM invoices WHERE total_amount < 0",
}


def upgrade() -> None:
    op.add_column("invoices", sa.Column("rounding_mode", sa.Text(), server_default="HALF_UP", nullable=False))
    op.add_column("invoices", sa.Column("tax_mode", sa.Text(), server_default="LINE", nullable=False))
    op.add_column("invoices", sa.Column("cash_rounding_increment", sa.Numeric(), nullable=True))
    op.add_column("invoices", sa.Column("cash_rounding_amount", sa.Numeric(), server_default="0", nullable=False))
    op.create_check_constraint("money_modes", "invoices", _MODES)
    op.create_table(
        "company_money_settings",
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("rounding_mode", sa.Text(), server_default="HALF_UP", nullable=False),
        sa.Column("tax_mode", sa.Text(), server_default="LINE", nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(_MODES, name=op.f("ck_company_money_settings_modes")),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_company_money_settings")),
    )
    op.create_table(
        "invoice_rounding_report",
        sa.Column("invoice_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("company_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        *(
            sa.Column(f"{age}_{name}", sa.Numeric(), nullable=True)
            for name in ("sub_total", "total_tax_amount", "total_amount", "amount_due")
            for age in ("old", "new")
        ),
        sa.Column("old_status", sa.Text(), nullable=False),
        sa.Column("new_status", sa.Text(), nullable=False),
        sa.Column("report_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("pk_invoice_rounding_report")),
    )
    # The old invariant holds again only once every amount of an invoice is converted.
    op.drop_constraint(op.f("ck_invoices_amount_due"), "invoices", type_="check")
    _convert()
    op.create_check_constraint("amount_due", "invoices", _AMOUNT_DUE)


def _convert() -> None:
    bind = op.get_bind()
    bind.exec_driver_sql("CREATE TEMP TABLE minor_units (currency text PRIMARY KEY, e int) ON COMMIT DROP")
    currencies = {
        row[0]
        for table in ("invoices", "payment_allocations", "customer_credit_balances")
        for row in bind.exec_driver_sql(f"SELECT DISTINCT currency FROM {table}")  # noqa: S608 - constant names
    }
    for code in sorted(currencies):
        bind.execute(sa.text("INSERT INTO pg_temp.minor_units VALUES (:c, :e)"), {"c": code, "e": exponent(code)})
    for statement in [*_FUNCTIONS, *_CONVERT]:
        bind.exec_driver_sql(statement)
    breaches = []
    for what, query in _CHECKS.items():
        ids = [str(row[0]) for row in bind.exec_driver_sql(query)]
        if ids:
            breaches.append(f"{what}: {', '.join(sorted(set(ids))[:20])}")
    if breaches:
        raise RuntimeError("migration 0008 would break invoice invariants; nothing was changed. " + "; ".join(breaches))
    changed = bind.exec_driver_sql("SELECT count(*) FROM invoice_rounding_report").scalar()
    log.info("0008: %s invoice(s) changed by rounding to the currency; see table invoice_rounding_report", changed)
    bind.exec_driver_sql("DROP FUNCTION pg_temp.r(numeric, text)")
    bind.exec_driver_sql("DROP FUNCTION pg_temp.c9(numeric)")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_invoices_amount_due"), "invoices", type_="check")
    op.execute("UPDATE invoices SET amount_due = 0 WHERE status = 'VOID'")
    op.execute(
        "UPDATE invoices SET total_amount = total_amount + cash_rounding_amount, "
        "sub_total = sub_total + cash_rounding_amount WHERE cash_rounding_amount <> 0"
    )
    op.create_check_constraint("amount_due", "invoices", _AMOUNT_DUE_OLD)
    op.drop_table("invoice_rounding_report")
    op.drop_table("company_money_settings")
    op.drop_constraint(op.f("ck_invoices_money_modes"), "invoices", type_="check")
    op.drop_column("invoices", "cash_rounding_amount")
    op.drop_column("invoices", "cash_rounding_increment")
    op.drop_column("invoices", "tax_mode")
    op.drop_column("invoices", "rounding_mode")
