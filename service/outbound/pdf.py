"""Renders an invoice as a PDF with reportlab (its bundled Vera TrueType font covers Unicode text)."""

from __future__ import annotations

import functools
import io
import re
import threading
from decimal import Decimal
from pathlib import Path

import reportlab
from PIL import Image as PILImage
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from service.domain.models import Invoice, Status
from service.domain.parties import Party, PaymentMeans, PaymentTerms, PostalAddress, payment_reference
from service.domain.profile import CompanyProfile
from service.domain.totals import tax_breakdown
from service.outbound.formats import Formats

_FONTS = Path(reportlab.__file__).parent / "fonts"
pdfmetrics.registerFont(TTFont("Vera", str(_FONTS / "Vera.ttf")))
pdfmetrics.registerFont(TTFont("Vera-Bold", str(_FONTS / "VeraBd.ttf")))
_TEXT = ParagraphStyle("text", fontName="Vera", fontSize=9, leading=12)
_TITLE = ParagraphStyle("title", fontName="Vera-Bold", fontSize=18, leading=22)
_MARK = ParagraphStyle("mark", fontName="Vera-Bold", fontSize=28, leading=32, textColor=colors.red)


def file_name(inv: Invoice) -> str:
    return f"invoice-{inv.invoice_number or 'draft-' + inv.id}.pdf"


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


def _allowance_charge_section(inv: Invoice, fmt: Formats) -> list[object]:
    """Invoice-level allowances (minus) and charges (plus), each with its reason and tax category/rate."""
    if not inv.allowance_charges:
        return []
    cur = inv.currency
    rows: list[list[object]] = [[_p(h) for h in ("Allowance / charge", "Reason", "Tax", "Amount")]]
    for ac in inv.allowance_charges:
        kind = "Charge" if ac.charge else "Allowance"
        if ac.percentage is not None:
            kind += f" {ac.percentage}%"
        reason = " ".join(x for x in (ac.reason, f"({ac.reason_code})" if ac.reason_code else "") if x)
        tax = " ".join(x for x in (ac.tax_category.value if ac.tax_category else "", _rate(ac.tax_rate)) if x)
        rows.append([_p(kind), _p(reason or "-"), _p(tax or "-"), _p(fmt.money(ac.signed, cur))])
    table = Table(rows, colWidths=[45 * mm, 70 * mm, 25 * mm, 35 * mm], repeatRows=1, splitInRow=1)
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black)]))
    return [table, Spacer(1, 6 * mm)]


def _rate(rate: Decimal | None) -> str:
    return f"{rate}%" if rate is not None else ""


def _tax_breakdown_section(inv: Invoice, fmt: Formats) -> list[object]:
    """EN 16931 BG-23: per category and rate the taxable amount, the tax and the exemption reason."""
    cur = inv.currency
    breakdown = [b for b in tax_breakdown(inv) if b.tax_amount or b.rate is not None or b.tax_category]
    if not breakdown:
        return []
    rows: list[list[object]] = [[_p(h) for h in ("Tax category", "Rate", "Taxable amount", "Tax", "Exemption")]]
    for b in breakdown:
        exemption = " ".join(x for x in (b.exemption_reason_code, b.exemption_reason) if x)
        rows.append(
            [
                _p(b.category or "Tax"),
                _p(_rate(b.rate)),
                _p(fmt.money(b.taxable_amount, cur)),
                _p(fmt.money(b.tax_amount, cur)),
                _p(exemption),
            ]
        )
    table = Table(rows, colWidths=[28 * mm, 18 * mm, 38 * mm, 34 * mm, 57 * mm], repeatRows=1, splitInRow=1)
    table.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [Spacer(1, 6 * mm), _p("Tax breakdown", _TEXT), table]


def _address_text(a: PostalAddress | None) -> list[str]:
    if a is None:
        return []
    place = " ".join(x for x in (a.postal_code, a.city) if x)
    return [*a.address_lines, ", ".join(x for x in (place, a.country_subdivision, a.country_code) if x)]


def _party_block(title: str, p: Party) -> list[object]:
    """A seller or buyer block: name, trading name, address, tax and registration ids, contact."""
    lines = [f"{title}: {p.name}", *([p.trading_name] if p.trading_name else []), *_address_text(p.address)]
    lines += [f"{t.scheme} {t.id}" for t in p.tax_registrations]
    if p.legal_registration_id:
        lines.append(f"Registration: {p.legal_registration_id}")
    if p.contact is not None:
        lines += [x for x in (p.contact.name, p.contact.email, p.contact.phone) if x]
    return [_p(line) for line in lines if line]


def parties_table(seller: Party, buyer: Party, customer_id: str, buyer_title: str) -> Table:
    """The seller and buyer blocks side by side (invoices and credit notes alike)."""
    return Table(
        [[_party_block("From", seller), [*_party_block(buyer_title, buyer), _p(f"Customer: {customer_id}")]]],
        colWidths=[87 * mm, 87 * mm],
        splitInRow=1,  # parties at their length limits are taller than a page: they continue on the next
        style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]),
    )


def _payment_block(inv: Invoice, terms: PaymentTerms | None, means: PaymentMeans | None) -> list[object]:
    """Payment terms and bank details, with the payment reference to quote."""
    out: list[object] = []
    if terms is not None and (terms.text or terms.net_days):
        out.append(_p(f"Payment terms: {terms.text or f'net {terms.net_days} days'}"))
    if means is not None:
        account = (
            [f"IBAN {means.iban}", *([f"BIC {means.bic}"] if means.bic else [])]
            if means.iban
            else [f"Account {means.account_number}", f"Routing/sort code {means.routing_code}"]
        )
        holder = [x for x in (means.account_name, means.bank_name) if x]
        reference = means.payment_reference or payment_reference(
            means.payment_reference_rule, inv.invoice_number, inv.customer_id
        )
        out.append(_p("Bank details: " + "    ".join([*holder, *account])))
        if reference:
            out.append(_p(f"Payment reference: {reference}"))
    return out


_OBJECT_REPR = re.compile(r"fileName=<[^>]*>|identity=\[[^\]]*\]|<[^<>]* at 0x[0-9a-fA-F]+>")
MAX_LOGO_PIXELS = 4000  # per side: a small file may still decode to a huge bitmap


def logo_problem(data: bytes) -> str:
    """Why the logo cannot be drawn (it is decoded whole, as drawing it will), or ""."""
    try:
        reader = ImageReader(io.BytesIO(data))
        width, height = reader.getSize()
        if max(width, height) > MAX_LOGO_PIXELS:
            return f"must be at most {MAX_LOGO_PIXELS} pixels a side; got {width} x {height}"
        reader.getRGBData()
    except Exception as exc:  # any decoder failure means the same to the client
        # The decoders name their in-memory objects by address: the client gets the cause without them.
        cause = " ".join(_OBJECT_REPR.sub("", str(exc)).split())[:80]
        return f"is not a readable PNG or JPEG image ({cause or type(exc).__name__})"
    return ""


LOGO_DRAWN_PIXELS = 600  # a side: 40 x 20 mm at 300 dpi needs 472 x 236
_LOGO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _drawable_logo(data: bytes) -> tuple[bytes, int, int] | None:
    """The logo shrunk to what the PDF draws, as PNG bytes with their size; None when unreadable. A logo within
    the upload limits can decode to 128 MB: each process decodes a logo once, not every PDF."""
    if logo_problem(data):
        return None
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.thumbnail((LOGO_DRAWN_PIXELS, LOGO_DRAWN_PIXELS))
            alpha = "A" in image.getbands() or "transparency" in image.info
            small = image.convert("RGBA" if alpha else "RGB")
            out = io.BytesIO()
            small.save(out, "PNG")
            return out.getvalue(), small.width, small.height
    except Exception:  # decoded once already (logo_problem): a failure here leaves the logo out, as unreadable
        return None


def _logo(data: bytes) -> list[object]:
    """The company's logo, at most 40 x 20 mm, keeping its proportions; an unreadable image is left out."""
    if not data:
        return []
    with _LOGO_LOCK:  # concurrent PDFs of one company wait for the one decode
        drawable = _drawable_logo(data)
    if drawable is None:
        return []
    png, width, height = drawable
    scale = min(40 * mm / width, 20 * mm / height)
    return [Image(io.BytesIO(png), width * scale, height * scale, hAlign="LEFT"), Spacer(1, 3 * mm)]


def render(inv: Invoice, seller: str, profile: CompanyProfile | None = None) -> bytes:
    """The invoice as a PDF: parties, number, dates, lines with taxes and discounts, totals, payments. The
    seller, terms and bank details are the invoice's snapshot; a draft (no snapshot yet) shows the live
    `profile`; `seller` (SELLER_NAME) names a company without one."""
    profile = profile or CompanyProfile()
    party = inv.seller or profile.seller(seller)
    seller = party.name
    terms = inv.payment_terms if inv.seller else profile.payment_terms
    means = inv.payment_means if inv.seller else profile.payment_means
    buyer = inv.buyer or Party(name=inv.customer_name or inv.customer_id)
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
    fmt = Formats.of(profile.locale)  # amounts and dates as the company's locale writes them
    story: list[object] = []
    if inv.status is Status.DRAFT:
        story.append(_p("DRAFT", _MARK))
    elif inv.status is Status.VOID:
        story.append(_p(f"VOID ({inv.void_reason.value if inv.void_reason else ''})", _MARK))
    parties = parties_table(party, buyer, inv.customer_id, "Bill to")
    references = [
        _p(f"{label}: {value}")
        for label, value in (("Buyer reference", inv.buyer_reference), ("Purchase order", inv.purchase_order_reference))
        if value
    ]
    if inv.delivery is not None:
        where = ", ".join(x for x in [inv.delivery.name, *_address_text(inv.delivery.address)] if x)
        when = fmt.date(inv.delivery.delivery_date) if inv.delivery.delivery_date else ""
        references.append(_p(f"Delivery: {'  '.join(x for x in (where, when) if x)}"))
    story += [
        *_logo(profile.logo),
        _p(f"Invoice {inv.invoice_number or '(not yet numbered)'}", _TITLE),
        Spacer(1, 4 * mm),
        parties,
        Spacer(1, 3 * mm),
        *references,
        _p(f"Issue date: {fmt.date(inv.issue_date)}"),
        _p(f"Due date: {fmt.date(inv.due_date)}"),
        _p(f"Status: {inv.status.value}    Currency: {cur}"),
        Spacer(1, 6 * mm),
    ]
    rows: list[list[object]] = [[_p(h) for h in ("Description", "Qty", "Unit", "Discount", "Tax", "Amount")]]
    for line in inv.lines:
        rows.append(
            [
                _p(line.description or "-"),
                _p(fmt.quantity(line.quantity)),
                _p(fmt.price(line.unit_amount)),  # a price keeps its own precision
                _p(fmt.amount(line.discount_amount, cur)),
                _p(fmt.amount(line.tax_amount, cur)),
                _p(fmt.amount(line.total_amount, cur)),
            ]
        )
        if line.charge_amount:
            charge = f"Charge {line.charge_reason or line.charge_reason_code}".strip()
            rows.append(["", "", "", _p(charge), "", _p(fmt.amount(line.charge_amount, cur))])
        for t in line.taxation_items:
            rows.append(
                ["", "", "", _p(f"{t.name or 'Tax'} {t.tax_rate or ''}"), _p(fmt.amount(t.tax_amount, cur)), ""]
            )
    if len(rows) > 1:
        # splitInRow: a row taller than a page (a 10,000-character description) continues on the next page
        # instead of raising LayoutError; Paragraph's splitLongWords breaks runs without spaces.
        widths = [70 * mm, 15 * mm, 22 * mm, 22 * mm, 22 * mm, 24 * mm]
        table = Table(rows, colWidths=widths, repeatRows=1, splitInRow=1)
        table.setStyle(
            TableStyle([("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")])
        )
        story += [table, Spacer(1, 6 * mm)]
    story += _allowance_charge_section(inv, fmt)
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
    story.append(
        Table([[_p(k), _p(fmt.money(v, cur))] for k, v in totals], colWidths=[40 * mm, 40 * mm], hAlign="RIGHT")
    )
    story += _tax_breakdown_section(inv, fmt)
    if inv.allocations:
        story += [Spacer(1, 6 * mm), _p("Payments", _TEXT)]
        for a in inv.allocations:
            when = fmt.date(a.allocated_on_date) if a.allocated_on_date else ""
            ref = a.payment.get("reference") or a.payment.get("id") or a.source.value
            story.append(_p(f"{when}  {ref}  {fmt.money(a.applied_amount, cur)}"))
    payment = _payment_block(inv, terms, means)
    if payment and inv.status is not Status.VOID:
        story += [Spacer(1, 6 * mm), *payment]
    if inv.note:
        story += [Spacer(1, 6 * mm), _p(inv.note)]
    doc.build(story)
    return out.getvalue()
