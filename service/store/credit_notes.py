"""Credit note and refund queries (issue 16). Every statement is parameterised; inserts take their columns
from the schema (statement.insert)."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from service.domain.credit_notes import CreditNote, CreditNoteLine, CreditNoteStatus, Issued
from service.domain.ids import new_id, parse_id
from service.domain.models import Invoice
from service.store.statement import Piece, columns, insert

NOTE = "credit_note"  # the check of update_piece: the note's row was written
REFUNDED = "allocation refunded"  # the check of allocation_refunded_piece
_NOTE_COLUMNS = columns("credit_notes")
_LINE_FIELDS = tuple(f.name for f in fields(CreditNoteLine))
_UPDATABLE = (
    "status",
    "credit_note_number",
    "sub_total",
    "total_tax_amount",
    "total_amount",
    "reason",
    "reason_code",
    "memo",
    "credit_amount",
    "balance_amount",
    "refund_amount",
    "version",
    "issue_time",
    "void_time",
)
_UPDATE = (
    "UPDATE credit_notes SET "  # noqa: S608 - constant names
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(_UPDATABLE, start=3))
    + f" WHERE company_id = $1 AND id = $2 AND version = ${len(_UPDATABLE) + 3} RETURNING 1"
)
_SELECT = f"SELECT {', '.join(_NOTE_COLUMNS)} FROM credit_notes"  # noqa: S608 - names from the schema


def assign_ids(note: CreditNote) -> None:
    note.id = note.id or new_id()
    for line in note.lines:
        line.id = line.id or new_id()


def _row(note: CreditNote) -> dict[str, Any]:
    row = {c: getattr(note, c) for c in _NOTE_COLUMNS}
    row["status"] = note.status.value
    row["credit_note_number"] = note.credit_note_number or None
    return row


def insert_pieces(note: CreditNote) -> list[Piece]:
    """A new note (ids assigned) and its lines."""
    return [insert("credit_notes", [_row(note)]), lines_piece(note)]


async def delete_lines(conn: asyncpg.Connection, note: CreditNote) -> None:
    """Its own statement, before the new lines go in (their positions are unique)."""
    await conn.execute(
        "DELETE FROM credit_note_lines WHERE company_id = $1 AND credit_note_id = $2", note.company_id, note.id
    )


def lines_piece(note: CreditNote) -> Piece:
    lines = [
        {
            **{f: getattr(line, f) for f in _LINE_FIELDS},
            "company_id": note.company_id,
            "credit_note_id": note.id,
            "position": pos,
        }
        for pos, line in enumerate(note.lines)
    ]
    return insert("credit_note_lines", lines)


def update_piece(note: CreditNote) -> Piece:
    """The note's new state (version already bumped by the domain); checked as NOTE."""
    row = _row(note)
    return Piece(_UPDATE, (note.company_id, note.id, *(row[c] for c in _UPDATABLE), note.version - 1), NOTE)


def _note(row: asyncpg.Record, lines: list[asyncpg.Record]) -> CreditNote:
    note = CreditNote(**{c: row[c] for c in _NOTE_COLUMNS if c not in ("status", "credit_note_number")})
    note.status = CreditNoteStatus(row["status"])
    note.credit_note_number = row["credit_note_number"] or ""
    note.lines = [CreditNoteLine(**{f: r[f] for f in _LINE_FIELDS}) for r in lines]
    return note


async def _lines(conn: asyncpg.Connection, company_id: str, ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    rows = await conn.fetch(
        "SELECT * FROM credit_note_lines WHERE company_id = $1 AND credit_note_id = ANY($2::uuid[]) "
        "ORDER BY credit_note_id, position",
        company_id,
        ids,
    )
    out: dict[str, list[asyncpg.Record]] = {i: [] for i in ids}
    for r in rows:
        out[r["credit_note_id"]].append(r)
    return out


async def load(conn: asyncpg.Connection, company_id: str, key: str, *, lock: bool = False) -> CreditNote | None:
    """One note by id, or else by number; `lock` takes its row for the transaction."""
    suffix = " FOR UPDATE" if lock else ""
    row = None
    canonical = parse_id(key)
    if canonical is not None:
        row = await conn.fetchrow(f"{_SELECT} WHERE company_id = $1 AND id = $2{suffix}", company_id, canonical)
    if row is None:
        row = await conn.fetchrow(
            f"{_SELECT} WHERE company_id = $1 AND credit_note_number = $2{suffix}", company_id, key
        )
    if row is None:
        return None
    return _note(row, (await _lines(conn, company_id, [row["id"]]))[row["id"]])


async def page(
    conn: asyncpg.Connection,
    company_id: str,
    invoice_id: str | None,
    customer_id: str,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[CreditNote]:
    """Newest first (create_time, id descending), after a keyset position."""
    where, args = ["company_id = $1"], [company_id]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if invoice_id is not None:
        where.append(f"invoice_id = {arg(invoice_id)}")
    if customer_id:
        where.append(f"customer_id = {arg(customer_id)}")
    if after is not None:
        where.append(f"(create_time, id) < ({arg(after[0])}, {arg(after[1])}::uuid)")
    sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY create_time DESC, id DESC LIMIT {arg(limit)}"
    rows = await conn.fetch(sql, *args)
    lines = await _lines(conn, company_id, [r["id"] for r in rows])
    return [_note(r, lines[r["id"]]) for r in rows]


async def issued(conn: asyncpg.Connection, company_id: str, invoice_id: str) -> Issued:
    """What the invoice's issued notes took; read under the invoice's row lock, so it is current."""
    row = await conn.fetchrow(
        "SELECT coalesce(sum(total_amount), 0) AS total, coalesce(sum(balance_amount), 0) AS balance "
        "FROM credit_notes WHERE company_id = $1 AND invoice_id = $2 AND status = 'ISSUED'",
        company_id,
        invoice_id,
    )
    assert row is not None
    return Issued(row["total"], row["balance"])


async def next_number(conn: asyncpg.Connection, company_id: str) -> int:
    """The next of the company's gapless credit note numbers; the row stays locked until commit, so
    concurrent issues queue and a rolled back one gives its number back."""
    value: int = await conn.fetchval(
        "INSERT INTO credit_note_number_sequences AS s (company_id, last_value) VALUES ($1, 1) "
        "ON CONFLICT (company_id) DO UPDATE SET last_value = s.last_value + 1 RETURNING last_value",
        company_id,
    )
    return value


def allocation_refunded_piece(company_id: str, allocation_id: str, amount: Decimal) -> Piece:
    """A payment allocation's refunded_amount grows by `amount` (its invoice is locked); checked as REFUNDED."""
    return Piece(
        "UPDATE payment_allocations SET refunded_amount = refunded_amount + $3 "
        "WHERE company_id = $1 AND id = $2 RETURNING 1",
        (company_id, allocation_id, amount),
        REFUNDED,
    )


def refund_piece(row: dict[str, Any]) -> Piece:
    """A refund row (every column of `refunds`)."""
    return insert("refunds", [row])


async def issued_credit(conn: asyncpg.Connection, inv: Invoice) -> Issued:
    return await issued(conn, inv.company_id, inv.id)
