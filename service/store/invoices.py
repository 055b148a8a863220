"""Invoice queries. Every statement is parameterised; column lists are constants of this module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeAlias

import asyncpg

from service.domain.ids import new_id as new_id  # callers outside the store take ids from here too
from service.domain.ids import parse_id
from service.domain.models import (
    AllocationSource,
    BillingReason,
    CreditMemo,
    CreditMemoReason,
    Invoice,
    InvoiceType,
    LineItem,
    PaymentAllocation,
    PaymentStatus,
    Status,
    TaxationItem,
    TaxRateType,
    VoidReason,
)
from service.domain.money import Rounding, TaxMode
from service.store.schema import CURRENT_DOCUMENT, DOCUMENT_VERSION, WRITE_XACT
from service.store.statement import Piece, unnest_insert

Conn: TypeAlias = asyncpg.Connection

_ENUMS: dict[str, Any] = {
    "status": Status,
    "void_reason": VoidReason,
    "payment_status": PaymentStatus,
    "invoice_type": InvoiceType,
    "billing_reason": BillingReason,
    "rounding_mode": Rounding,
    "tax_mode": TaxMode,
}
_DEFAULTS = {"rounding_mode": Rounding.HALF_UP.value, "tax_mode": TaxMode.LINE.value}
_HEADER = (
    "id", "company_id", "invoice_number", "customer_id", "customer_name", "status", "void_reason",
    "payment_status", "vendor_status", "currency", "currency_rate", "issue_date", "due_date", "paid_on_date",
    "source_modified_date", "period_start", "period_end", "sub_total", "additional_tax_amount",
    "additional_tax_percentage", "total_tax_amount", "discount_percentage", "total_discount", "total_amount",
    "amount_due", "amount_paid", "amount_credited", "rounding_mode", "tax_mode", "cash_rounding_increment",
    "cash_rounding_amount", "note", "invoice_type", "billing_reason", "subscription_id",
    "metadata", "supplemental_data", "withholding_tax", "sales_order_refs", "version", "create_time",
    "modified_date", "finalize_time", "void_time", "sent_time",
)  # fmt: skip
_WRITTEN = (*_HEADER, "document", "document_version")
# Child rows carry their invoice's company_id (the distribution column, docs/citus.md).
_LINE = (
    "id", "company_id", "invoice_id", "position", "description", "quantity", "unit_amount", "discount_amount",
    "discount_percentage", "sub_total", "tax_amount", "total_amount", "service_start_date", "service_end_date",
    "sku", "unit_of_measure", "price_id", "is_direct_income", "refs", "metadata",
)  # fmt: skip
_TAX = (
    "id", "company_id", "line_item_id", "invoice_id", "position", "name", "tax_rate", "tax_amount", "tax_rate_type",
    "exempt_amount", "tax_code", "tax_code_description", "tax_rate_description", "jurisdiction",
    "location_code", "tax_date", "create_time",
)  # fmt: skip
_ALLOC = (
    "id", "company_id", "invoice_id", "amount", "currency", "currency_rate", "applied_amount", "allocated_on_date",
    "payment", "source", "create_time",
)  # fmt: skip
_MEMO = (
    "id",
    "company_id",
    "invoice_id",
    "reason",
    "total_amount",
    "currency",
    "comment",
    "reason_code",
    "create_time",
)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - constant names


_INSERT_INVOICE = _insert_sql("invoices", _WRITTEN)
_INSERT_LINE = _insert_sql("line_items", _LINE)
_INSERT_TAX = _insert_sql("taxation_items", _TAX)
_INSERT_ALLOC = _insert_sql("payment_allocations", _ALLOC)
_INSERT_MEMO = _insert_sql("credit_memos", _MEMO)
_UPDATABLE = [c for c in _WRITTEN if c not in ("id", "company_id", "create_time")]
_UPDATE_INVOICE = (
    "UPDATE invoices SET "  # noqa: S608 - constant names
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_UPDATABLE, start=3))
    + f", write_xact = {WRITE_XACT}"
    + f" WHERE id = $1 AND company_id = $2 AND version = ${len(_UPDATABLE) + 3}"
)
_SELECT_INVOICE = f"SELECT {', '.join(_HEADER)} FROM invoices"  # noqa: S608 - constant names
_UNNEST_LINES = unnest_insert("line_items", _LINE)
_UNNEST_TAXES = unnest_insert("taxation_items", _TAX)


def assign_ids(inv: Invoice) -> None:
    """Gives every new part of the aggregate its id, so the document can be rendered before writing."""
    inv.id = inv.id or new_id()
    for line in inv.lines:
        line.id = line.id or new_id()
        for t in line.taxation_items:
            t.id, t.line_item_id = t.id or new_id(), line.id
    for a in inv.allocations:
        a.id = a.id or new_id()
    for m in inv.credit_memos:
        m.id, m.invoice_id = m.id or new_id(), inv.id


def _header_values(inv: Invoice, document: bytes) -> dict[str, Any]:
    values: dict[str, Any] = {"document": document, "document_version": DOCUMENT_VERSION}
    for c in _HEADER:
        value = getattr(inv, c)
        values[c] = value.value if c in _ENUMS and value is not None else value
        if value is None and c in _DEFAULTS:
            values[c] = _DEFAULTS[c]
    values["invoice_number"] = inv.invoice_number or None
    values["amount_paid"] = inv.amount_paid
    values["amount_credited"] = inv.amount_credited
    return values


def _line_rows(inv: Invoice) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    lines, taxes = [], []
    for pos, line in enumerate(inv.lines):  # ids come from assign_ids
        lines.append(
            (
                line.id, inv.company_id, inv.id, pos, line.description, line.quantity, line.unit_amount,
                line.discount_amount, line.discount_percentage, line.sub_total, line.tax_amount, line.total_amount,
                line.service_start_date, line.service_end_date, line.sku, line.unit_of_measure, line.price_id,
                line.is_direct_income, line.refs, line.metadata,
            )
        )  # fmt: skip
        for tpos, t in enumerate(line.taxation_items):
            taxes.append(
                (
                    t.id, inv.company_id, line.id, inv.id, tpos, t.name, t.tax_rate, t.tax_amount,
                    t.tax_rate_type.value, t.exempt_amount, t.tax_code, t.tax_code_description,
                    t.tax_rate_description, t.jurisdiction, t.location_code, t.tax_date,
                    t.create_time or inv.modified_date,
                )
            )  # fmt: skip
    return lines, taxes


async def insert_invoice(conn: Conn, inv: Invoice, document: bytes) -> None:
    """Inserts a new aggregate (ids assigned) with its rendered document; the caller holds the transaction."""
    values = _header_values(inv, document)
    await conn.execute(_INSERT_INVOICE, *(values[c] for c in _WRITTEN))
    await _insert_lines(conn, inv)
    for alloc in inv.allocations:
        await insert_allocation(conn, inv, alloc)


def insert_pieces(inv: Invoice, document: bytes) -> list[Piece]:
    """A new aggregate without payments or memos (ids assigned) as statement pieces: header, lines, taxes."""
    values = _header_values(inv, document)
    lines, taxes = _line_rows(inv)
    return [
        Piece(_INSERT_INVOICE, tuple(values[c] for c in _WRITTEN)),
        Piece(_UNNEST_LINES, tuple(list(column) for column in zip(*lines, strict=True)) or _empty(_LINE)),
        Piece(_UNNEST_TAXES, tuple(list(column) for column in zip(*taxes, strict=True)) or _empty(_TAX)),
    ]


def _empty(columns: Sequence[str]) -> tuple[list[Any], ...]:
    return tuple([] for _ in columns)


async def _insert_lines(conn: Conn, inv: Invoice) -> None:
    lines, taxes = _line_rows(inv)
    if lines:
        await conn.executemany(_INSERT_LINE, lines)
    if taxes:
        await conn.executemany(_INSERT_TAX, taxes)


async def replace_lines(conn: Conn, inv: Invoice) -> None:
    await conn.execute("DELETE FROM line_items WHERE company_id = $1 AND invoice_id = $2", inv.company_id, inv.id)
    await _insert_lines(conn, inv)


async def update_header(conn: Conn, inv: Invoice, document: bytes) -> None:
    """Writes the header (version already bumped by the caller) and the document; the row is locked."""
    values = _header_values(inv, document)
    status = await conn.execute(
        _UPDATE_INVOICE, inv.id, inv.company_id, *(values[c] for c in _UPDATABLE), inv.version - 1
    )
    if status != "UPDATE 1":
        raise RuntimeError(f"invoice {inv.id} changed under a row lock")


async def insert_allocation(conn: Conn, inv: Invoice, a: PaymentAllocation) -> None:
    a.id = a.id or new_id()  # inserted before the header is saved
    await conn.execute(
        _INSERT_ALLOC, a.id, inv.company_id, inv.id, a.amount, a.currency, a.currency_rate, a.applied_amount,
        a.allocated_on_date, a.payment, a.source.value, a.create_time,
    )  # fmt: skip


async def insert_credit_memo(conn: Conn, inv: Invoice, m: CreditMemo) -> None:
    m.id, m.invoice_id = m.id or new_id(), inv.id
    await conn.execute(
        _INSERT_MEMO, m.id, inv.company_id, inv.id, m.reason.value, m.total_amount, m.currency, m.comment,
        m.reason_code, m.create_time,
    )  # fmt: skip


async def delete_invoice(conn: Conn, inv: Invoice) -> None:
    await conn.execute("DELETE FROM invoices WHERE id = $1 AND company_id = $2", inv.id, inv.company_id)


def _invoice_from_row(row: asyncpg.Record) -> Invoice:
    inv = Invoice()
    for c in _HEADER:
        if c in ("amount_paid", "amount_credited"):
            continue
        value = row[c]
        if c in _ENUMS and value is not None:
            value = _ENUMS[c](value)
        setattr(inv, c, value)
    inv.invoice_number = inv.invoice_number or ""
    return inv


async def load_invoice(
    conn: Conn, company_id: str, invoice_id: str = "", number: str = "", *, lock: bool = False
) -> Invoice | None:
    """One whole aggregate, optionally row-locked for the transaction.

    `invoice_id` is an invoice key as Zuora has it: the id, or else the invoice number. `number` looks
    up numbers only.
    """
    # NO KEY UPDATE: serialises writers of the invoice without blocking inserts that reference it
    # (lines, payments, attachments take KEY SHARE), so a long upload never stalls a payment.
    suffix = " FOR NO KEY UPDATE" if lock else ""
    row = None
    canonical = parse_id(invoice_id) if invoice_id and not number else None
    if canonical is not None:
        row = await conn.fetchrow(f"{_SELECT_INVOICE} WHERE company_id = $1 AND id = $2{suffix}", company_id, canonical)
    if row is None and (number or invoice_id):
        row = await conn.fetchrow(
            f"{_SELECT_INVOICE} WHERE company_id = $1 AND invoice_number = $2{suffix}", company_id, number or invoice_id
        )
    if row is None:
        return None
    inv = _invoice_from_row(row)
    await _load_children(conn, inv)
    return inv


async def save_document(conn: Conn, inv: Invoice, document: bytes) -> None:
    """Stores the document rendered from `inv` as read, unless a write changed the row since."""
    await conn.execute(
        "UPDATE invoices SET document = $3, document_version = $4 WHERE id = $1 AND company_id = $2 AND version = $5",
        inv.id,
        inv.company_id,
        document,
        DOCUMENT_VERSION,
        inv.version,
    )


async def stale_documents(conn: Conn, limit: int) -> list[tuple[str, str]]:
    """Up to `limit` invoices (company_id, id) with a document of another version than the current one.
    (Rows with none at all are rendered when first listed.)"""
    rows = await conn.fetch(
        "SELECT company_id, id FROM invoices WHERE document IS NOT NULL AND document_version IS DISTINCT FROM $1 "
        "LIMIT $2",
        DOCUMENT_VERSION,
        limit,
    )
    return [(r["company_id"], r["id"]) for r in rows]


_DOCUMENT_BY_ID = f"SELECT {CURRENT_DOCUMENT} FROM invoices WHERE company_id = $1 AND id = $2"  # noqa: S608
_DOCUMENT_BY_NUMBER = f"SELECT {CURRENT_DOCUMENT} FROM invoices WHERE company_id = $1 AND invoice_number = $2"  # noqa: S608


async def load_document(conn: Conn, company_id: str, key: str, *, number_only: bool = False) -> bytes | None:
    """The stored document by id or number (by number only with `number_only`); b"" when the row has
    none of the current version (DOCUMENT_VERSION), None when absent."""
    row = None
    canonical = None if number_only else parse_id(key)
    if canonical is not None:
        row = await conn.fetchrow(_DOCUMENT_BY_ID, company_id, canonical)
    if row is None:
        row = await conn.fetchrow(_DOCUMENT_BY_NUMBER, company_id, key)
    return None if row is None else (row["document"] or b"")


async def lock_invoices(conn: Conn, company_id: str, keys: list[str]) -> set[str]:
    """Locks the invoices named by id or number, in id order; returns the keys that matched."""
    ids = {k: parse_id(k) for k in keys}
    rows = await conn.fetch(
        "SELECT id, invoice_number FROM invoices WHERE company_id = $1 "
        "AND (id = ANY($2::uuid[]) OR invoice_number = ANY($3::text[])) ORDER BY id FOR NO KEY UPDATE",
        company_id, [i for i in ids.values() if i], keys,
    )  # fmt: skip
    found = {r["id"] for r in rows} | {r["invoice_number"] for r in rows if r["invoice_number"]}
    return {k for k in keys if k in found or ids[k] in found}


async def _load_children(conn: Conn, inv: Invoice) -> None:
    line_rows = await conn.fetch(
        f"SELECT {', '.join(_LINE)} FROM line_items WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "ORDER BY position",
        inv.company_id,
        inv.id,
    )
    tax_rows = await conn.fetch(
        f"SELECT {', '.join(_TAX)} FROM taxation_items WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "ORDER BY position",
        inv.company_id,
        inv.id,
    )
    inv.lines = [_line_from_row(r) for r in line_rows]
    by_line = {line.id: line for line in inv.lines}
    for r in tax_rows:
        by_line[r["line_item_id"]].taxation_items.append(_tax_from_row(r))
    alloc_rows = await conn.fetch(
        f"SELECT {', '.join(_ALLOC)} FROM payment_allocations WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "ORDER BY create_time, id",
        inv.company_id,
        inv.id,
    )
    inv.allocations = [
        PaymentAllocation(
            id=r["id"], amount=r["amount"], currency=r["currency"], currency_rate=r["currency_rate"],
            applied_amount=r["applied_amount"], allocated_on_date=r["allocated_on_date"], payment=r["payment"],
            source=AllocationSource(r["source"]), create_time=r["create_time"],
        )
        for r in alloc_rows
    ]  # fmt: skip
    memo_rows = await conn.fetch(
        f"SELECT {', '.join(_MEMO)} FROM credit_memos WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "ORDER BY create_time, id",
        inv.company_id,
        inv.id,
    )
    inv.credit_memos = [
        CreditMemo(
            id=r["id"], invoice_id=r["invoice_id"], reason=CreditMemoReason(r["reason"]),
            total_amount=r["total_amount"], currency=r["currency"], comment=r["comment"],
            reason_code=r["reason_code"], create_time=r["create_time"],
        )
        for r in memo_rows
    ]  # fmt: skip


_LINE_FIELDS = {f.name for f in fields(LineItem)} - {"taxation_items"}
_TAX_FIELDS = {f.name for f in fields(TaxationItem)}


def _line_from_row(r: asyncpg.Record) -> LineItem:
    return LineItem(**{c: r[c] for c in _LINE if c in _LINE_FIELDS})


def _tax_from_row(r: asyncpg.Record) -> TaxationItem:
    item = TaxationItem(**{c: r[c] for c in _TAX if c in _TAX_FIELDS})
    item.tax_rate_type = TaxRateType(r["tax_rate_type"])
    return item


async def list_lines(
    conn: Conn, company_id: str, invoice_id: str, after: int, limit: int
) -> list[tuple[int, LineItem]]:
    """A keyset page of lines (position > after), each with its taxation items."""
    rows = await conn.fetch(
        f"SELECT {', '.join(_LINE)} FROM line_items WHERE company_id = $1 AND invoice_id = $2 "  # noqa: S608
        "AND position > $3 ORDER BY position LIMIT $4",
        company_id,
        invoice_id,
        after,
        limit,
    )
    lines = [(r["position"], _line_from_row(r)) for r in rows]
    if lines:
        by_id = {line.id: line for _, line in lines}
        taxes = await conn.fetch(
            f"SELECT {', '.join(_TAX)} FROM taxation_items WHERE company_id = $1 "  # noqa: S608
            "AND line_item_id = ANY($2::uuid[]) ORDER BY position",
            company_id,
            list(by_id),
        )
        for r in taxes:
            by_id[r["line_item_id"]].taxation_items.append(_tax_from_row(r))
    return lines


async def next_invoice_number(conn: Conn, company_id: str, prefix: str, width: int) -> str:
    """The next number of the company's gapless sequence, inside the caller's transaction.

    The sequence row stays locked until commit, so concurrent finalizations queue and a rolled back one
    gives its number back. Clients cannot choose numbers of this form, so none is ever taken already.
    """
    value = await conn.fetchval(
        "INSERT INTO invoice_number_sequences (company_id, last_value) VALUES ($1, 1) "
        "ON CONFLICT (company_id) DO UPDATE SET last_value = invoice_number_sequences.last_value + 1 "
        "RETURNING last_value",
        company_id,
    )
    return f"{prefix}{value:0{width}d}"


async def number_taken(conn: Conn, company_id: str, number: str, exclude_id: str = "") -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM invoices WHERE company_id = $1 AND invoice_number = $2 AND id::text <> $3",
            company_id, number, exclude_id,
        )
    )  # fmt: skip


# Customer credit balances ---------------------------------------------------------------------


async def lock_credit_balance(conn: Conn, company_id: str, customer_id: str, currency: str) -> Decimal:
    value = await conn.fetchval(
        "SELECT balance FROM customer_credit_balances WHERE company_id = $1 AND customer_id = $2 "
        "AND currency = $3 FOR UPDATE",
        company_id, customer_id, currency,
    )  # fmt: skip
    return value if value is not None else Decimal(0)


async def move_credit(
    conn: Conn,
    company_id: str,
    customer_id: str,
    currency: str,
    amount: Decimal,
    reason: str,
    now: datetime,
    invoice_id: str | None = None,
    note: str = "",
) -> asyncpg.Record:
    """Adds `amount` (negative to draw) to a balance and journals it; CHECK keeps it >= 0."""
    await conn.execute(
        "INSERT INTO credit_entries (company_id, customer_id, currency, amount, reason, invoice_id, note, "
        "create_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        company_id, customer_id, currency, amount, reason, invoice_id, note, now,
    )  # fmt: skip
    if amount < 0:  # a draw: the row exists and is locked by the caller (lock_credit_balance)
        return await conn.fetchrow(
            "UPDATE customer_credit_balances SET balance = balance + $4, update_time = $5 "
            "WHERE company_id = $1 AND customer_id = $2 AND currency = $3 "
            "RETURNING company_id, customer_id, currency, balance, update_time",
            company_id, customer_id, currency, amount, now,
        )  # fmt: skip
    return await conn.fetchrow(
        "INSERT INTO customer_credit_balances AS b (company_id, customer_id, currency, balance, update_time) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (company_id, customer_id, currency) "
        "DO UPDATE SET balance = b.balance + EXCLUDED.balance, update_time = EXCLUDED.update_time "
        "RETURNING company_id, customer_id, currency, balance, update_time",
        company_id, customer_id, currency, amount, now,
    )  # fmt: skip


async def credit_balances(conn: Conn, company_id: str, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT company_id, customer_id, currency, balance, update_time FROM customer_credit_balances "
            "WHERE company_id = $1 AND customer_id = $2 ORDER BY currency",
            company_id, customer_id,
        )
    )  # fmt: skip
