"""Renders a credit note as a PDF (the invoice PDF's layout and fonts): "Credit note N for invoice M"."""

from __future__ import annotations

from service.domain.credit_notes import CreditNote, CreditNoteStatus, note_tax_breakdown
from service.domain.models import Invoice
from service.domain.parties import Party
from service.domain.values import fmt_datetime
from service.outbound.formats import Formats
from service.outbound.pdf import Column, Document, han_forms, parties, tax_breakdown_table, typeset


def file_name(note: CreditNote) -> str:
    return f"credit-note-{note.credit_note_number or 'draft-' + note.id}.pdf"


def heading(note: CreditNote) -> str:
    """The reference a credit note must carry: its number, the invoice it corrects and that invoice's date."""
    issued = fmt_datetime(note.invoice_issue_date)[:10] or "-"
    return f"Credit note {note.credit_note_number or '(draft)'} for invoice {note.invoice_number} (issued {issued})"


def render(note: CreditNote, seller: Party, buyer: Party, locale: str = "", invoice: Invoice | None = None) -> bytes:
    """The credit note as a PDF/A-3b: the reference to the corrected invoice, both parties, lines, totals, the
    tax breakdown and how the credit was applied. The lines are taxed as the lines of `invoice` they correct
    (its VAT categories); without it, by their rates alone."""
    cur = note.currency
    fmt = Formats.of(locale)  # amounts and dates as the company's locale writes them
    title = heading(note)
    doc = Document(title=title, author=seller.name, footer=f"{seller.name} · {title}")
    doc.han = han_forms(locale, buyer, seller)
    if note.status is not CreditNoteStatus.ISSUED:
        doc.mark = note.status.value
    parties(doc, seller, buyer, note.customer_id, "To")
    doc.facts = [
        ("Issue date", fmt.date(note.issue_time)),
        ("Currency", cur),
        ("Reason", f"{note.reason or '-'} {f'({note.reason_code})' if note.reason_code else ''}".strip()),
    ]
    rows = [
        [
            line.description or "-",
            fmt.quantity(line.quantity),
            fmt.price(line.unit_amount),
            f"{line.tax_rate}%" if line.tax_rate is not None else "",
            fmt.amount(line.tax_amount, cur),
            fmt.amount(line.total_amount, cur),
        ]
        for line in note.lines
    ]
    columns = [
        Column("Description", 1),
        Column("Qty", right=True),
        Column("Unit price", right=True),
        Column("Tax rate", right=True),
        Column("Tax", right=True),
        Column(f"Amount ({cur})", right=True),
    ]
    doc.table("", columns, rows)
    totals = [
        ("Subtotal", note.sub_total),
        ("Tax", note.total_tax_amount),
        ("Total credited", note.total_amount),
        ("Applied to the invoice", note.credit_amount),
        ("To the credit balance", note.balance_amount),
        ("Refunded", note.refund_amount),
    ]
    doc.totals([(k, fmt.money(v, cur), k == "Total credited") for k, v in totals if v is not None])
    corrected = invoice if invoice is not None else Invoice(currency=cur)
    tax_breakdown_table(doc, note_tax_breakdown(note, corrected), cur, fmt)
    if note.memo:
        doc.text([note.memo])
    return typeset(doc)
