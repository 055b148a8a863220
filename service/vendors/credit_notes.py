"""Credit notes as vendor JSON (issue 16): Zuora credit memos and Codat credit notes. Pure and table-driven:
each vendor is a table of (field, how it is read from the note), the lines a table of their own.

Amounts are exact Decimals at the currency's minor unit (json_payload.dumps writes them as JSON numbers).
Every issued note is applied in full at issue: Zuora's appliedAmount is the credit_amount, refundAmount the
refund_amount and unappliedAmount the balance_amount (credit that sits on the customer's balance); Codat's
remainingCredit is that balance part too (credit not allocated to an invoice).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from service.domain import money
from service.domain.credit_notes import CreditNote, CreditNoteLine, CreditNoteStatus
from service.domain.errors import FieldViolation, InvalidArgument
from service.domain.values import ZERO, fmt_datetime

Field = tuple[str, Callable[[CreditNote], Any]]
LineField = tuple[str, Callable[[CreditNoteLine], Any]]

_ZUORA_STATUS = {CreditNoteStatus.DRAFT: "Draft", CreditNoteStatus.ISSUED: "Posted", CreditNoteStatus.VOID: "Canceled"}


def _amount(note: CreditNote, value: Decimal | None) -> Decimal:
    return money.round_amount(value if value is not None else ZERO, note.currency)


def _date(value: Any) -> str:
    return fmt_datetime(value)[:10] if value is not None else ""


def _invoice_ref(note: CreditNote) -> dict[str, str]:
    return {"id": note.invoice_id, "number": note.invoice_number, "issueDate": fmt_datetime(note.invoice_issue_date)}


def _codat_status(note: CreditNote) -> str:
    if note.status is CreditNoteStatus.DRAFT:
        return "Draft"
    if note.status is CreditNoteStatus.VOID:
        return "Void"
    return "Submitted" if note.balance_amount else "Paid"  # credit left on the balance: not used up


ZUORA: list[Field] = [
    ("id", lambda n: n.id),
    ("number", lambda n: n.credit_note_number),
    ("status", lambda n: _ZUORA_STATUS[n.status]),
    ("accountId", lambda n: n.customer_id),
    ("currency", lambda n: n.currency),
    ("memoDate", lambda n: _date(n.issue_time or n.create_time)),
    ("referredInvoiceId", lambda n: n.invoice_id),
    ("reasonCode", lambda n: n.reason_code),
    ("comment", lambda n: n.reason),
    ("amount", lambda n: _amount(n, n.total_amount)),
    ("taxAmount", lambda n: _amount(n, n.total_tax_amount)),
    ("appliedAmount", lambda n: _amount(n, n.credit_amount)),
    ("refundAmount", lambda n: _amount(n, n.refund_amount)),
    ("unappliedAmount", lambda n: _amount(n, n.balance_amount)),
    ("createdDate", lambda n: fmt_datetime(n.create_time)),
]
ZUORA_ITEMS: list[LineField] = [
    ("id", lambda x: x.id),
    ("sourceItemId", lambda x: x.invoice_line_item_id),
    ("comment", lambda x: x.description),
    ("quantity", lambda x: x.quantity),
    ("unitPrice", lambda x: x.unit_amount),
    ("amountWithoutTax", lambda x: x.sub_total),
    ("taxAmount", lambda x: x.tax_amount),
    ("amount", lambda x: x.total_amount),
]
CODAT: list[Field] = [
    ("id", lambda n: n.id),
    ("creditNoteNumber", lambda n: n.credit_note_number),
    ("customerRef", lambda n: {"id": n.customer_id, "companyName": n.customer_name}),
    ("issueDate", lambda n: fmt_datetime(n.issue_time or n.create_time)),
    ("currency", lambda n: n.currency),
    ("status", _codat_status),
    ("subTotal", lambda n: _amount(n, n.sub_total)),
    ("totalTaxAmount", lambda n: _amount(n, n.total_tax_amount)),
    ("totalDiscount", lambda n: _amount(n, ZERO)),
    ("totalAmount", lambda n: _amount(n, n.total_amount)),
    ("remainingCredit", lambda n: _amount(n, n.balance_amount)),
    ("note", lambda n: n.memo or n.reason),
    ("allocatedOnDate", lambda n: fmt_datetime(n.issue_time)),
    # The corrected invoice: Codat's credit note has no field for it, so it goes in supplementalData.
    ("supplementalData", lambda n: {"content": {"invoice": _invoice_ref(n)}}),
]
CODAT_LINES: list[LineField] = [
    ("description", lambda x: x.description),
    ("quantity", lambda x: x.quantity),
    ("unitAmount", lambda x: x.unit_amount),
    ("subTotal", lambda x: x.sub_total),
    ("taxAmount", lambda x: x.tax_amount),
    ("totalAmount", lambda x: x.total_amount),
]

_TABLES: dict[str, tuple[list[Field], str, list[LineField]]] = {
    "zuora": (ZUORA, "items", ZUORA_ITEMS),
    "codat": (CODAT, "lineItems", CODAT_LINES),
}


def export_credit_note(vendor: str, note: CreditNote) -> dict[str, Any]:
    """The note as `vendor`'s JSON object (Zuora credit memo, Codat credit note)."""
    if vendor not in _TABLES:
        raise InvalidArgument([FieldViolation("vendor", "credit notes export to VENDOR_CODAT or VENDOR_ZUORA")])
    fields, lines_name, line_fields = _TABLES[vendor]
    out = {name: read(note) for name, read in fields}
    out[lines_name] = [{name: read(line) for name, read in line_fields} for line in note.lines]
    return out
