"""Renders an invoice as a PDF with reportlab (its bundled Vera TrueType font covers Unicode text)."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from service.domain.models import Invoice, Status
from service.domain.money import display
from service.domain.totals import tax_breakdown
from service.domain.values import fmt_datetime

_FONTS = Path(reportlab.__file__).parent / "fonts"
pdfmetrics.registerFont(TTFont("Vera", str(_FONTS / "Vera.ttf")))
pdfmetrics.registerFont(TTFont("Vera-Bold", str(_FONTS / "VeraBd.ttf")))
_TEXT = ParagraphStyle("text", fontName="Vera", fontSize=9, leading=12)
_TITLE = ParagraphStyle("title", fontName="Vera-Bold", fontSize=18, leading=22)
_MARK = ParagraphStyle("mark", fontName="Vera-Bold", fontSize=28, leading=32, textColor=colors.red)


def file_name(inv: Invoice) -> str:
    return f"invoice-{inv.invoice_number or 'draft-' + inv.id}.pdf"


def _money(value: Decimal | None, currency: str) -> str:
    """An amount at exactly its currency's minor unit (issue 13): the digits the API returns."""
    return f"{display(value, currency)} {currency}".strip() if value is not None else ""


def _p(text: str, style: ParagraphStyle = _TEXT) -> Paragraph:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    para = Paragraph(escaped, style)
    # reportlab makes each escaped character (&lt; &amp; &gt;) a fragment of its own, and breaking lines
    # costs fragments x lines on every page split: a 10,000-character description of '<' took seconds,
    # a client could pin the CPU for minutes with one invoice. Plain text has one style: one fragment.
    frags = para.frags
    if len(frags) > 1:
        style_of = [{k: v for k, v in f.__dict__.items() if k != "text"} for f in frags]
        if all(other == style_of[0] for other in style_of[1:]):
            frags[0].text = "".join(f.text for f in frags)
            para.frags = [frags[0]]
    return para


def render(inv: Invoice, seller: str) -> bytes:
    """The invoice as a PDF: parties, number, dates, lines with taxes and discounts, totals, payments."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        title=file_name(inv),
        author=seller,
    )
    cur = inv.currency
    story: list[object] = []
    if inv.status is Status.DRAFT:
        story.append(_p("DRAFT", _MARK))
    elif inv.status is Status.VOID:
        story.append(_p(f"VOID ({inv.void_reason.value if inv.void_reason else ''})", _MARK))
    story += [
        _p(f"Invoice {inv.invoice_number or '(not yet numbered)'}", _TITLE),
        Spacer(1, 4 * mm),
        _p(f"From: {seller}"),
        _p(f"Bill to: {inv.customer_name or inv.customer_id} ({inv.customer_id})"),
        _p(f"Issue date: {fmt_datetime(inv.issue_date)[:10] or '-'}"),
        _p(f"Due date: {fmt_datetime(inv.due_date)[:10] or '-'}"),
        _p(f"Status: {inv.status.value}    Currency: {cur}"),
        Spacer(1, 6 * mm),
    ]
    rows: list[list[object]] = [[_p(h) for h in ("Description", "Qty", "Unit", "Discount", "Tax", "Amount")]]
    for line in inv.lines:
        rows.append(
            [
                _p(line.description or "-"),
                _p(f"{line.quantity}"),
                _p(f"{line.unit_amount:,f}"),  # a price keeps its own precision
                _p(display(line.discount_amount, cur)),
                _p(display(line.tax_amount, cur)),
                _p(display(line.total_amount, cur)),
            ]
        )
        for t in line.taxation_items:
            rows.append(["", "", "", _p(f"{t.name or 'Tax'} {t.tax_rate or ''}"), _p(display(t.tax_amount, cur)), ""])
    if len(rows) > 1:
        # splitInRow: a row taller than a page (a 10,000-character description) continues on the next page
        # instead of raising LayoutError; Paragraph's splitLongWords breaks runs without spaces.
        widths = [70 * mm, 15 * mm, 22 * mm, 22 * mm, 22 * mm, 24 * mm]
        table = Table(rows, colWidths=widths, repeatRows=1, splitInRow=1)
        table.setStyle(
            TableStyle([("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")])
        )
        story += [table, Spacer(1, 6 * mm)]
    totals = [
        ("Subtotal", inv.sub_total),
        ("Discount", inv.total_discount),
        ("Tax", inv.total_tax_amount),
        ("Total", inv.total_amount),
        *(
            [("Rounding", inv.cash_rounding_amount), ("Payable", inv.payable_amount)]
            if inv.cash_rounding_amount
            else []
        ),
        ("Paid", inv.amount_paid),
        ("Credited", inv.amount_credited),
        ("Amount due", inv.amount_due),
    ]
    story.append(Table([[_p(k), _p(_money(v, cur))] for k, v in totals], colWidths=[40 * mm, 40 * mm], hAlign="RIGHT"))
    breakdown = [b for b in tax_breakdown(inv) if b.tax_amount or b.rate]
    if breakdown:
        story += [Spacer(1, 6 * mm), _p("Tax breakdown", _TEXT)]
        for b in breakdown:
            rate = f"{b.rate}%" if b.rate is not None else ""
            story.append(
                _p(f"{b.category or 'Tax'} {rate}  on {_money(b.taxable_amount, cur)}: {_money(b.tax_amount, cur)}")
            )
    if inv.allocations:
        story += [Spacer(1, 6 * mm), _p("Payments", _TEXT)]
        for a in inv.allocations:
            when = fmt_datetime(a.allocated_on_date)[:10]
            ref = a.payment.get("reference") or a.payment.get("id") or a.source.value
            story.append(_p(f"{when}  {ref}  {_money(a.applied_amount, cur)}"))
    if inv.note:
        story += [Spacer(1, 6 * mm), _p(inv.note)]
    doc.build(story)
    return out.getvalue()
