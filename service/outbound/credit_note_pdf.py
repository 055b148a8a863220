"""Renders a credit note as a PDF (the invoice PDF's fonts and helpers): "Credit note N for invoice M"."""

from __future__ import annotations

import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import SimpleDocTemplate, Spacer, Table

from service.domain.credit_notes import CreditNote, CreditNoteStatus
from service.domain.parties import Party
from service.domain.values import fmt_datetime
from service.outbound.formats import Formats
from service.outbound.pdf import _MARK, _TITLE, _p, parties_table


def file_name(note: CreditNote) -> str:
    return f"credit-note-{note.credit_note_number or 'draft-' + note.id}.pdf"


def heading(note: CreditNote) -> str:
    """The reference a credit note must carry: its number, the invoice it corrects and that invoice's date."""
    issued = fmt_datetime(note.invoice_issue_date)[:10] or "-"
    return f"Credit note {note.credit_note_number or '(draft)'} for invoice {note.invoice_number} (issued {issued})"


def render(note: CreditNote, seller: Party, buyer: Party, locale: str = "") -> bytes:
    """The credit note as a PDF: the reference to the corrected invoice, both parties, lines, totals and how
    the credit was applied."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        title=file_name(note),
        author=seller.name,
    )
    cur = note.currency
    fmt = Formats.of(locale)  # amounts and dates as the company's locale writes them
    story: list[object] = []
    if note.status is not CreditNoteStatus.ISSUED:
        story.append(_p(note.status.value, _MARK))
    story += [
        _p(heading(note), _TITLE),
        Spacer(1, 4 * mm),
        parties_table(seller, buyer, note.customer_id, "To"),
        Spacer(1, 4 * mm),
        _p(f"Issue date: {fmt.date(note.issue_time)}    Currency: {cur}"),
        _p(f"Reason: {note.reason or '-'} {f'({note.reason_code})' if note.reason_code else ''}"),
        Spacer(1, 6 * mm),
    ]
    rows: list[list[object]] = [[_p(h) for h in ("Description", "Qty", "Unit", "Tax", "Amount")]]
    for line in note.lines:
        rows.append(
            [
                _p(line.description or "-"),
                _p(fmt.quantity(line.quantity)),
                _p(fmt.price(line.unit_amount)),
                _p(fmt.amount(line.tax_amount, cur)),
                _p(fmt.amount(line.total_amount, cur)),
            ]
        )
    widths = [85 * mm, 15 * mm, 25 * mm, 22 * mm, 27 * mm]
    story += [Table(rows, colWidths=widths, repeatRows=1, splitInRow=1), Spacer(1, 6 * mm)]
    totals = [
        ("Subtotal", note.sub_total),
        ("Tax", note.total_tax_amount),
        ("Total credited", note.total_amount),
        ("Applied to the invoice", note.credit_amount),
        ("To the credit balance", note.balance_amount),
        ("Refunded", note.refund_amount),
    ]
    rows = [[_p(k), _p(fmt.money(v, cur))] for k, v in totals if v is not None]
    story.append(Table(rows, colWidths=[50 * mm, 40 * mm], hAlign="RIGHT"))
    if note.memo:
        story += [Spacer(1, 6 * mm), _p(note.memo)]
    doc.build(story)
    return out.getvalue()
