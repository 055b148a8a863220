"""Invoice queries. Every statement is parameterised; column lists come from the schema."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeAlias

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from service.domain import parties
from service.domain.ids import new_id as new_id  # callers outside the store take ids from here too
from service.domain.ids import parse_id
from service.domain.models import (
    AllocationSource,
    AllowanceCharge,
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
    TaxCategory,
    TaxRateType,
    VoidReason,
)
from service.domain.money import Rounding, TaxMode
from service.store import schema
from service.store.schema import CURRENT_DOCUMENT, DOCUMENT_VERSION, WRITE_XACT
from service.store.statement import GATE, Piece, columns, insert

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
# Party columns (issue 16): JSON objects in the row, values of service/domain/parties.py on the invoice.
_PARTIES: dict[str, Any] = {
    "seller": parties.party_from_json,
    "buyer": parties.party_from_json,
    "delivery": parties.delivery_from_json,
    "payment_terms": parties.terms_from_json,
    "payment_means": parties.means_from_json,
}
_WRITTEN = columns("invoices")
_HEADER = tuple(c for c in _WRITTEN if c not in ("document", "document_version"))
_UPDATABLE = [c for c in _WRITTEN if c not in ("id", "company_id", "create_time")]
INVOICE = "invoice"  # the check of update_piece: the locked row was written
_UPDATE_INVOICE = (
    "UPDATE invoices SET "  # noqa: S608 - constant names
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_UPDATABLE, start=3))
    + f", write_xact = {WRITE_XACT}"
    + f" WHERE id = $1 AND company_id = $2 AND version = ${len(_UPDATABLE) + 3} {GATE} RETURNING 1"
)
# The children of an invoice, each as one JSON array in the invoice's row (one statement reads it all).
_CHILDREN = {
    "lines": "SELECT coalesce(json_agg(c ORDER BY c.position), '[]') FROM line_items c",
    "taxes": "SELECT coalesce(json_agg(c ORDER BY c.position), '[]') FROM taxation_items c",
    "allocations": "SELECT coalesce(json_agg(c ORDER BY c.create_time, c.id), '[]') FROM payment_allocations c",
    "memos": "SELECT coalesce(json_agg(c ORDER BY c.create_time, c.id), '[]') FROM credit_memos c",
}
_CHILD_SELECT = ", ".join(
    f"({sql} WHERE c.company_id = inv.company_id AND c.invoice_id = inv.id) AS {name}"
    for name, sql in _CHILDREN.items()
)


def _draw(source: str) -> str:
    """The next value of a company's gapless number sequence, for the company `source` selects."""
    return (
        f"INSERT INTO invoice_number_sequences AS s (company_id, last_value) {source} "
        "ON CONFLICT (company_id) DO UPDATE SET last_value = s.last_value + 1 RETURNING last_value"
    )


_DRAFT_WITHOUT_NUMBER = "SELECT company_id, 1 FROM inv WHERE status = 'DRAFT' AND invoice_number IS NULL"
_NEXT_NUMBER = _draw("VALUES ($1, 1)")
# The number a DRAFT without one would be given next, read but not drawn (an optimistic finalization draws
# it with its write, by number_guard).
_PEEK = (
    "(SELECT coalesce((SELECT s.last_value FROM invoice_number_sequences s WHERE s.company_id = $1), 0) + 1 "
    "FROM inv WHERE status = 'DRAFT' AND invoice_number IS NULL)"
)
_PROFILE = "(SELECT p.profile FROM company_profiles p WHERE p.company_id = $1)"
DRAW, PEEK = "draw", "peek"  # load(draw=...): draw the next number under the lock, or only read it


def _load_sql(by: str, lock: bool, number: str) -> str:
    """The whole aggregate in one statement. Locked: the row lock waits for a concurrent writer and then
    returns the row as it committed, while the children come from the statement's snapshot, taken before;
    `seen_version` (the row in that snapshot) tells the caller when they may be older than the row. With
    `number` DRAW, the company's next invoice number is drawn in the same statement (for a DRAFT without
    one); with PEEK, it is only read."""
    lock_clause = " FOR NO KEY UPDATE" if lock else ""
    num = f", num AS ({_draw(_DRAFT_WITHOUT_NUMBER)})" if number == DRAW else ""
    drawn = {DRAW: "(SELECT last_value FROM num)", PEEK: _PEEK}.get(number, "NULL::bigint")
    return (
        f"WITH inv AS (SELECT {', '.join(_HEADER)} FROM invoices "  # noqa: S608 - constant names
        f"WHERE company_id = $1 AND {by} = $2{lock_clause}){num} "
        f"SELECT inv.*, {drawn} AS drawn, "
        # A finalization numbers and snapshots the seller from the company profile: read in the same trip.
        f"{_PROFILE if number else 'NULL::jsonb'} AS profile, "
        "(SELECT v.version FROM invoices v WHERE v.company_id = inv.company_id AND v.id = inv.id) AS seen_version, "
        f"{_CHILD_SELECT} FROM inv"
    )


_LOAD = {
    (by, lock, number): _load_sql(by, lock, number)
    for by in ("id", "invoice_number")
    for lock in (False, True)
    for number in ("", DRAW, PEEK)
}


def version_guard(inv: Invoice) -> Piece:
    """A guard (statement.execute_guarded): the invoice is still at the version read. It locks the row
    without waiting (NOWAIT): a writer holding it means the version is about to change, a conflict."""
    return Piece(
        "SELECT 1 FROM invoices WHERE company_id = $1 AND id = $2 AND version = $3 "  # noqa: S608
        f"{GATE} FOR NO KEY UPDATE NOWAIT",
        (inv.company_id, inv.id, inv.version),
    )


def number_draw(company_id: str, drawn: int) -> tuple[Piece, list[Piece]]:
    """The guard and pieces that draw `drawn` from the company's sequence if it still stands at `drawn - 1`
    (as read): numbers stay gapless and unique, each drawn by the statement that writes it. The guard locks
    the sequence's row without waiting (a holder is drawing: a conflict); the company's first number is
    the row's insertion instead, the statement's one write that may not apply."""
    if drawn == 1:
        first = (
            "INSERT INTO invoice_number_sequences (company_id, last_value) SELECT $1, 1 WHERE true "
            f"{GATE} ON CONFLICT (company_id) DO NOTHING RETURNING 1"
        )
        return Piece(first, (company_id,)), []
    guard = (
        "SELECT 1 FROM invoice_number_sequences WHERE company_id = $1 AND last_value = $2 "  # noqa: S608
        f"{GATE} FOR UPDATE NOWAIT"
    )
    draw = f"UPDATE invoice_number_sequences SET last_value = $2 + 1 WHERE company_id = $1 {GATE}"  # noqa: S608
    return Piece(guard, (company_id, drawn - 1)), [Piece(draw, (company_id, drawn - 1))]


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


# Allowances and charges as JSONB: decimals as strings (exact), the category by its code.
_AC_DECIMALS = ("amount", "base_amount", "percentage", "tax_rate", "tax_amount")


def _ac_to_json(ac: AllowanceCharge) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: getattr(ac, f.name) for f in fields(AllowanceCharge)}
    for name in _AC_DECIMALS:
        row[name] = None if row[name] is None else str(row[name])
    row["tax_category"] = ac.tax_category.value if ac.tax_category is not None else None
    return row


def _ac_from_json(row: dict[str, Any]) -> AllowanceCharge:
    ac = AllowanceCharge(**{f.name: row.get(f.name, f.default) for f in fields(AllowanceCharge)})
    for name in _AC_DECIMALS:
        value = getattr(ac, name)
        setattr(ac, name, None if value is None else Decimal(value))
    ac.tax_category = TaxCategory(row["tax_category"]) if row.get("tax_category") else None
    return ac


def _header_values(inv: Invoice, document: bytes) -> dict[str, Any]:
    values: dict[str, Any] = {"document": document, "document_version": DOCUMENT_VERSION}
    for c in _HEADER:
        value = getattr(inv, c)
        values[c] = value.value if c in _ENUMS and value is not None else value
        if c in _PARTIES:
            values[c] = parties.to_json(value)
        if value is None and c in _DEFAULTS:
            values[c] = _DEFAULTS[c]
    values["invoice_number"] = inv.invoice_number or None
    values["allowance_charges"] = [_ac_to_json(ac) for ac in inv.allowance_charges]
    return values


# Children rows carry their invoice's company_id (the distribution column, docs/citus.md).
def _line_row(inv: Invoice, pos: int, line: LineItem) -> dict[str, Any]:
    row = dict(zip(_LINE_FIELDS, _LINE_VALUES(line), strict=True))
    row.update(company_id=inv.company_id, invoice_id=inv.id, position=pos)
    return row


def _tax_row(inv: Invoice, line: LineItem, pos: int, t: TaxationItem) -> dict[str, Any]:
    row = dict(zip(_TAX_FIELDS, _TAX_VALUES(t), strict=True))
    row.update(company_id=inv.company_id, line_item_id=line.id, invoice_id=inv.id, position=pos)
    row.update(tax_rate_type=t.tax_rate_type.value, create_time=t.create_time or inv.modified_date)
    row.update(tax_category=t.tax_category.value if t.tax_category is not None else None)
    return row


def _allocation_row(inv: Invoice, a: PaymentAllocation) -> dict[str, Any]:
    row = dict(zip(_ALLOCATION_FIELDS, _ALLOCATION_VALUES(a), strict=True))
    row.update(company_id=inv.company_id, invoice_id=inv.id, source=a.source.value)
    return row


def _memo_row(inv: Invoice, m: CreditMemo) -> dict[str, Any]:
    row = dict(zip(_MEMO_FIELDS, _MEMO_VALUES(m), strict=True))
    row.update(company_id=inv.company_id, invoice_id=inv.id, reason=m.reason.value)
    row.update(credit_note_id=m.credit_note_id or None)
    return row


def insert_pieces(inv: Invoice, document: bytes) -> list[Piece]:
    """A new aggregate (ids assigned) as statement pieces: header, lines, taxes, payments, memos."""
    return [insert("invoices", [_header_values(inv, document)]), *lines_pieces(inv), *payment_pieces(inv)]


def lines_pieces(inv: Invoice) -> list[Piece]:
    lines = [_line_row(inv, pos, line) for pos, line in enumerate(inv.lines)]
    taxes = [_tax_row(inv, line, pos, t) for line in inv.lines for pos, t in enumerate(line.taxation_items)]
    return [insert("line_items", lines), insert("taxation_items", taxes)]


def payment_pieces(
    inv: Invoice, allocations: list[PaymentAllocation] | None = None, memos: list[CreditMemo] | None = None
) -> list[Piece]:
    """Inserts of payments and credit memos (all the invoice's when not named); none when there are none."""
    allocations = inv.allocations if allocations is None else allocations
    memos = inv.credit_memos if memos is None else memos
    pieces = []
    if allocations:
        pieces.append(insert("payment_allocations", [_allocation_row(inv, a) for a in allocations]))
    if memos:
        pieces.append(insert("credit_memos", [_memo_row(inv, m) for m in memos]))
    return pieces


async def delete_lines(conn: Conn, inv: Invoice) -> None:
    """Its own statement: the cascade to taxation items must run before the new lines go in."""
    await conn.execute("DELETE FROM line_items WHERE company_id = $1 AND invoice_id = $2", inv.company_id, inv.id)


def update_piece(inv: Invoice, document: bytes) -> Piece:
    """The header (version already bumped by the caller) and the document; the row is locked. Checked as
    INVOICE."""
    values = _header_values(inv, document)
    return Piece(_UPDATE_INVOICE, (inv.id, inv.company_id, *(values[c] for c in _UPDATABLE), inv.version - 1), INVOICE)


def delete_piece(inv: Invoice) -> Piece:
    return Piece("DELETE FROM invoices WHERE id = $1 AND company_id = $2", (inv.id, inv.company_id))


def _invoice_from_row(row: asyncpg.Record) -> Invoice:
    inv = Invoice()
    for c in _HEADER:
        if c in ("amount_paid", "amount_credited"):
            continue
        value = row[c]
        if c in _ENUMS and value is not None:
            value = _ENUMS[c](value)
        elif c in _PARTIES:
            value = _PARTIES[c](value)
        setattr(inv, c, value)
    inv.invoice_number = inv.invoice_number or ""
    inv.allowance_charges = [_ac_from_json(r) for r in row["allowance_charges"]]
    return inv


@dataclass(frozen=True, slots=True)
class Loaded:
    invoice: Invoice
    drawn: int | None  # the number drawn from the company's sequence, if asked and the invoice needs one
    current: bool  # the children are as of the row returned (always, unless locked after a wait)
    # With a drawn number: the company profile's stored form ({} without one), for numbering and the seller.
    profile: dict[str, Any] | None = None


async def load(
    conn: Conn, company_id: str, invoice_id: str = "", number: str = "", *, lock: bool = False, draw: str = ""
) -> Loaded | None:
    """One whole aggregate in one statement (two when a key that parses as an id names a number).

    `invoice_id` is an invoice key as Zuora has it: the id, or else the invoice number. `number` looks
    up numbers only. `lock` takes the row for the transaction: NO KEY UPDATE serialises writers of the
    invoice without blocking inserts that reference it (lines, payments, attachments take KEY SHARE), so a
    long upload never stalls a payment. `draw`: DRAW or PEEK the next number (see _load_sql).
    """
    row = None
    canonical = parse_id(invoice_id) if invoice_id and not number else None
    if canonical is not None:
        row = await conn.fetchrow(_LOAD["id", lock, draw], company_id, canonical)
    if row is None and (number or invoice_id):
        row = await conn.fetchrow(_LOAD["invoice_number", lock, draw], company_id, number or invoice_id)
    if row is None:
        return None
    inv = _invoice_from_row(row)
    inv.lines = [_line_from_json(r) for r in _json(row["lines"])]
    by_line = {line.id: line for line in inv.lines}
    for r in _json(row["taxes"]):
        by_line[r["line_item_id"]].taxation_items.append(_tax_from_json(r))
    inv.allocations = [_allocation_from_json(r) for r in _json(row["allocations"])]
    inv.credit_memos = [_memo_from_json(r) for r in _json(row["memos"])]
    profile = (row["profile"] or {}) if draw else None
    return Loaded(inv, row["drawn"], row["seen_version"] == row["version"], profile)


async def load_invoice(
    conn: Conn, company_id: str, invoice_id: str = "", number: str = "", *, lock: bool = False
) -> Invoice | None:
    """One whole aggregate, optionally row-locked for the transaction (see `load`)."""
    loaded = await load(conn, company_id, invoice_id, number, lock=lock)
    if loaded is not None and not loaded.current:  # locked after a concurrent write: read again, under the lock
        loaded = await load(conn, company_id, loaded.invoice.id, lock=lock)
    return None if loaded is None else loaded.invoice


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
        company_id,
        [i for i in ids.values() if i],
        keys,
    )
    found = {r["id"] for r in rows} | {r["invoice_number"] for r in rows if r["invoice_number"]}
    return {k for k in keys if k in found or ids[k] in found}


# JSON rows (the children, read with their invoice) back to Python values, by the schema's column types:
# numbers parse as Decimal (exact), timestamps and dates from ISO form, JSONB values as the pool decodes them.
def _to_float(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _to_float(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_float(v) for v in value]
    return value


def _decoder(column: Any) -> Any:
    kind = column.type
    if isinstance(kind, sa.DateTime):
        return lambda v: datetime.fromisoformat(v).astimezone(UTC)
    if isinstance(kind, sa.Date):
        return date.fromisoformat
    if isinstance(kind, sa.Numeric):
        return Decimal
    if isinstance(kind, JSONB):
        return _to_float
    return None


_DECODERS = {
    table: {c.name: d for c in schema.metadata.tables[table].columns if (d := _decoder(c)) is not None}
    for table in ("line_items", "taxation_items", "payment_allocations", "credit_memos")
}


def _json(text: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(text, parse_float=Decimal)
    return rows


def _decoded(table: str, row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    decoders = _DECODERS[table]
    return {c: (decoders[c](v) if v is not None and c in decoders else v) for c, v in row.items() if c in names}


# The fields of each child that are columns of its table, and a getter of their values (one C call).
_LINE_FIELDS = tuple(f.name for f in fields(LineItem) if f.name != "taxation_items")
_TAX_FIELDS = tuple(f.name for f in fields(TaxationItem))
_ALLOCATION_FIELDS = tuple(f.name for f in fields(PaymentAllocation))
_MEMO_FIELDS = tuple(f.name for f in fields(CreditMemo))
_LINE_VALUES, _TAX_VALUES, _ALLOCATION_VALUES, _MEMO_VALUES = (
    attrgetter(*names) for names in (_LINE_FIELDS, _TAX_FIELDS, _ALLOCATION_FIELDS, _MEMO_FIELDS)
)


def _line_from_json(r: dict[str, Any]) -> LineItem:
    return LineItem(**_decoded("line_items", r, _LINE_FIELDS))


def _tax_enums(item: TaxationItem, r: Any) -> TaxationItem:
    item.tax_rate_type = TaxRateType(r["tax_rate_type"])
    item.tax_category = TaxCategory(r["tax_category"]) if r["tax_category"] else None
    return item


def _tax_from_json(r: dict[str, Any]) -> TaxationItem:
    return _tax_enums(TaxationItem(**_decoded("taxation_items", r, _TAX_FIELDS)), r)


def _allocation_from_json(r: dict[str, Any]) -> PaymentAllocation:
    a = PaymentAllocation(**_decoded("payment_allocations", r, _ALLOCATION_FIELDS))
    a.source = AllocationSource(r["source"])
    return a


def _memo_from_json(r: dict[str, Any]) -> CreditMemo:
    m = CreditMemo(**_decoded("credit_memos", r, _MEMO_FIELDS))
    m.reason = CreditMemoReason(r["reason"])
    m.credit_note_id = m.credit_note_id or ""
    return m


_LINE = columns("line_items")
_TAX = columns("taxation_items")


def _line_from_row(r: asyncpg.Record) -> LineItem:
    return LineItem(**{c: r[c] for c in _LINE if c in _LINE_FIELDS})


def _tax_from_row(r: asyncpg.Record) -> TaxationItem:
    return _tax_enums(TaxationItem(**{c: r[c] for c in _TAX if c in _TAX_FIELDS}), r)


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


async def next_invoice_number(conn: Conn, company_id: str) -> int:
    """The next value of the company's gapless sequence, inside the caller's transaction.

    The sequence row stays locked until commit, so concurrent finalizations queue and a rolled back one
    gives its number back. Clients cannot choose numbers of the service's form, so none is ever taken.
    """
    value: int = await conn.fetchval(_NEXT_NUMBER, company_id)
    return value


async def number_taken(conn: Conn, company_id: str, number: str, exclude_id: str = "") -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM invoices WHERE company_id = $1 AND invoice_number = $2 AND id::text <> $3",
            company_id,
            number,
            exclude_id,
        )
    )


# Customer credit balances ---------------------------------------------------------------------


async def lock_credit_balance(conn: Conn, company_id: str, customer_id: str, currency: str) -> Decimal:
    value = await conn.fetchval(
        "SELECT balance FROM customer_credit_balances WHERE company_id = $1 AND customer_id = $2 "
        "AND currency = $3 FOR UPDATE",
        company_id,
        customer_id,
        currency,
    )
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
        company_id,
        customer_id,
        currency,
        amount,
        reason,
        invoice_id,
        note,
        now,
    )
    if amount < 0:  # a draw: the row exists and is locked by the caller (lock_credit_balance)
        return await conn.fetchrow(
            "UPDATE customer_credit_balances SET balance = balance + $4, update_time = $5 "
            "WHERE company_id = $1 AND customer_id = $2 AND currency = $3 "
            "RETURNING company_id, customer_id, currency, balance, update_time",
            company_id,
            customer_id,
            currency,
            amount,
            now,
        )
    return await conn.fetchrow(
        "INSERT INTO customer_credit_balances AS b (company_id, customer_id, currency, balance, update_time) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (company_id, customer_id, currency) "
        "DO UPDATE SET balance = b.balance + EXCLUDED.balance, update_time = EXCLUDED.update_time "
        "RETURNING company_id, customer_id, currency, balance, update_time",
        company_id,
        customer_id,
        currency,
        amount,
        now,
    )


async def credit_balances(conn: Conn, company_id: str, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT company_id, customer_id, currency, balance, update_time FROM customer_credit_balances "
            "WHERE company_id = $1 AND customer_id = $2 ORDER BY currency",
            company_id,
            customer_id,
        )
    )
