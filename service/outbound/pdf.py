"""Renders invoices and credit notes as PDF/A-3b documents with Typst (`document.typ`): every script shaped
(Arabic and Hebrew right to left) in the Noto fonts shipped in `fonts/` (OFL), embedded as subsets; headers
repeat on each page, and each page says "Page n of m". The PDF/A-3 base is what a Factur-X file needs."""

from __future__ import annotations

import functools
import io
import json
import re
import tempfile
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import typst
from fontTools.ttLib import TTFont
from PIL import Image as PILImage

from service.domain.models import Invoice, Status, TaxationItem, TaxBreakdown
from service.domain.parties import Party, PaymentMeans, PaymentTerms, PostalAddress, payment_reference
from service.domain.profile import CompanyProfile
from service.domain.totals import tax_breakdown
from service.outbound.formats import Formats

_HERE = Path(__file__).parent
_TEMPLATE = (_HERE / "document.typ").read_bytes()
FONT_DIR = _HERE / "fonts"


@functools.cache
def shipped_fonts() -> typst.Fonts:
    """Only the shipped fonts, read once: no system or Typst-bundled font, so every machine draws the same."""
    return typst.Fonts(include_system_fonts=False, include_embedded_fonts=False, font_paths=[str(FONT_DIR)])


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    fr: float = 0  # a share of the free width; 0 is as wide as the widest cell (for short values only)
    right: bool = False  # amounts and quantities


@dataclass(slots=True)
class Document:
    """What a page shows, already in words: the template only lays it out."""

    title: str
    author: str
    footer: str
    mark: str = ""
    han: str = "zh-cn"  # the forms of Han characters in a text without kana or Hangul (han_forms)
    parties: list[tuple[str, list[str]]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def table(self, caption: str, columns: Sequence[Column], rows: list[list[str]]) -> None:
        cols = [{"name": c.name, "fr": c.fr, "align": "right" if c.right else "start"} for c in columns]
        self.blocks.append({"kind": "table", "caption": caption, "columns": cols, "rows": rows})

    def totals(self, rows: list[tuple[str, str, bool]]) -> None:
        self.blocks.append({"kind": "totals", "caption": "", "rows": rows})

    def text(self, lines: list[str], caption: str = "") -> None:
        if lines:
            self.blocks.append({"kind": "text", "caption": caption, "lines": lines})


_COUNTRY_HAN = {"JP": "ja", "KR": "ko", "CN": "zh-cn", "SG": "zh-cn", "TW": "zh-tw", "HK": "zh-tw", "MO": "zh-tw"}


def han_forms(locale: str, *parties: Party) -> str:
    """Whose forms the Han characters of a text without kana or Hangul take, "ja", "ko", "zh-cn" or "zh-tw": a
    kanji-only Japanese name and a Chinese one are the same code points, drawn differently. The company
    locale's language when it is Chinese, Japanese or Korean (Hant, Taiwan, Hong Kong, Macau: traditional);
    else the country of the first of `parties` (the buyer, then the seller) in one of those countries; else
    simplified Chinese, the forms most Han text is written in."""
    loc = Formats.of(locale).locale
    if loc is not None and loc.language in ("ja", "ko"):
        return str(loc.language)
    if loc is not None and loc.language == "zh":
        return "zh-tw" if loc.script == "Hant" or _COUNTRY_HAN.get(loc.territory or "") == "zh-tw" else "zh-cn"
    countries = [p.address.country_code.upper() for p in parties if p.address is not None]
    return next((_COUNTRY_HAN[c] for c in countries if c in _COUNTRY_HAN), "zh-cn")


_UNBROKEN = re.compile(r"\S{30}")
REPLACEMENT = "\ufffd"  # what a character no shipped font has is drawn as


@functools.cache
def covered() -> frozenset[int]:
    """Every code point some shipped font has a glyph for (read once from their cmaps)."""
    points: set[int] = set()
    for path in sorted(FONT_DIR.glob("*.[ot]tf")):
        with TTFont(path, lazy=True) as font:
            points.update(font.getBestCmap())
    return frozenset(points)


# Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): joiners, bidi controls, variation
# selectors... They shape the text around them and are laid out without a glyph of their own.
_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


class _Drawable(dict[int, str | int]):
    """A str.translate table, filled as characters come: PDF/A forbids drawing a missing glyph (.notdef), and
    Typst refuses such a document, so an emoji, a Thai or a rare Han character (no shipped font has one) becomes
    U+FFFD, a control character or an unknown space a space: the PDF is made, and the e-invoice XML keeps the
    exact text."""

    def __missing__(self, point: int) -> str | int:
        category = unicodedata.category(chr(point))
        value: str | int
        if point in covered() or point in (0x0A, 0x09) or any(lo <= point <= hi for lo, hi in _IGNORABLE):
            value = point
        elif category in ("Cc", "Zs", "Zl", "Zp"):
            value = " "
        elif category == "Cf":
            value = ""  # another format character (a prefixed-number sign): nothing to draw
        else:
            value = REPLACEMENT
        self[point] = value
        return value


_DRAWABLE = _Drawable()


def drawable(text: str) -> str:
    """`text` with only characters the PDF can draw, and a zero-width break every 30 characters of a run
    without spaces, so a cell wraps it instead of running over its neighbours."""
    text = text.translate(_DRAWABLE)
    return _UNBROKEN.sub(lambda m: m.group(0) + "\u200b", text) if len(text) > 30 else text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return drawable(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def typeset(doc: Document, logo: bytes = b"") -> bytes:
    """The document as a PDF/A-3b. Text goes in as JSON data (never as markup), so nothing a client writes
    can change the layout; the logo is the only file the template reads."""
    data = {
        "title": doc.title,
        "author": doc.author,
        "footer": doc.footer,
        "mark": doc.mark,
        "han": doc.han,
        "parties": [{"title": title, "lines": lines} for title, lines in doc.parties],
        "facts": doc.facts,
        "blocks": doc.blocks,
        "logo": "logo.png" if logo else "",
    }
    inputs = {"doc": json.dumps(_clean(data), ensure_ascii=False)}
    with tempfile.TemporaryDirectory(prefix="invoice-pdf-") as root:
        if logo:
            (Path(root) / "logo.png").write_bytes(logo)
        compiler = typst.Compiler(root=root, font_paths=shipped_fonts(), ignore_system_fonts=True)
        pdf = compiler.compile(input=_TEMPLATE, format="pdf", sys_inputs=inputs, pdf_standards="a-3b")
    if not isinstance(pdf, bytes):  # a PDF is one file (a list is PNG or SVG pages)
        raise TypeError(f"typst returned {type(pdf).__name__}, not a PDF")
    return pdf


def file_name(inv: Invoice) -> str:
    return f"invoice-{inv.invoice_number or 'draft-' + inv.id}.pdf"


def _rate(rate: Decimal | None) -> str:
    return f"{rate}%" if rate is not None else ""


def _tax_label(t: TaxationItem) -> str:
    """A line's tax as printed: its name (or category) and rate, "VAT 19%"."""
    name = t.name or (t.tax_category.value if t.tax_category else "Tax")
    return " ".join(x for x in (name, _rate(t.tax_rate)) if x)


def _allowance_charge_section(doc: Document, inv: Invoice, fmt: Formats) -> None:
    """Invoice-level allowances (minus) and charges (plus), each with its reason and tax category/rate."""
    if not inv.allowance_charges:
        return
    rows = []
    for ac in inv.allowance_charges:
        kind = "Charge" if ac.charge else "Allowance"
        if ac.percentage is not None:
            kind += f" {ac.percentage}%"
        reason = " ".join(x for x in (ac.reason, f"({ac.reason_code})" if ac.reason_code else "") if x)
        tax = " ".join(x for x in (ac.tax_category.value if ac.tax_category else "", _rate(ac.tax_rate)) if x)
        rows.append([kind, reason or "-", tax or "-", fmt.money(ac.signed, inv.currency)])
    columns = [Column("Allowance / charge"), Column("Reason", 1), Column("Tax"), Column("Amount", right=True)]
    doc.table("", columns, rows)


def tax_breakdown_table(doc: Document, groups: list[TaxBreakdown], cur: str, fmt: Formats) -> None:
    """EN 16931 BG-23 (an invoice's or a credit note's): per category and rate the taxable amount, the tax and
    the exemption reason; none when nothing is taxed."""
    breakdown = [b for b in groups if b.tax_amount or b.rate is not None or b.tax_category]
    if not breakdown:
        return
    rows = [
        [
            b.category or "Tax",
            _rate(b.rate),
            fmt.money(b.taxable_amount, cur),
            fmt.money(b.tax_amount, cur),
            " ".join(x for x in (b.exemption_reason_code, b.exemption_reason) if x),
        ]
        for b in breakdown
    ]
    columns = [
        Column("Tax category", 0.6),
        Column("Rate", right=True),
        Column("Taxable amount", right=True),
        Column("Tax", right=True),
        Column("Exemption", 1),
    ]
    doc.table("Tax breakdown", columns, rows)


def _address_text(a: PostalAddress | None) -> list[str]:
    if a is None:
        return []
    place = " ".join(x for x in (a.postal_code, a.city) if x)
    return [*a.address_lines, ", ".join(x for x in (place, a.country_subdivision, a.country_code) if x)]


def party_lines(p: Party) -> list[str]:
    """A seller or buyer block: name, trading name, address, tax and registration ids, contact."""
    lines = [p.name, *([p.trading_name] if p.trading_name else []), *_address_text(p.address)]
    lines += [f"{t.scheme} {t.id}" for t in p.tax_registrations]
    if p.legal_registration_id:
        lines.append(f"Registration: {p.legal_registration_id}")
    if p.contact is not None:
        lines += [x for x in (p.contact.name, p.contact.email, p.contact.phone) if x]
    return [line for line in lines if line]


def parties(doc: Document, seller: Party, buyer: Party, customer_id: str, buyer_title: str) -> None:
    """The seller and buyer blocks side by side (invoices and credit notes alike)."""
    doc.parties = [("From", party_lines(seller)), (buyer_title, [*party_lines(buyer), f"Customer: {customer_id}"])]


def _payment_lines(inv: Invoice, terms: PaymentTerms | None, means: PaymentMeans | None) -> list[str]:
    """Payment terms and bank details, with the payment reference to quote."""
    out: list[str] = []
    if terms is not None and (terms.text or terms.net_days):
        out.append(f"Payment terms: {terms.text or f'net {terms.net_days} days'}")
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
        out.append("Bank details: " + "    ".join([*holder, *account]))
        if reference:
            out.append(f"Payment reference: {reference}")
    return out


MAX_LOGO_PIXELS = 4000  # per side: a small file may still decode to a huge bitmap
_OBJECT_REPR = re.compile(r"<[^<>]* at 0x[0-9a-fA-F]+>|0x[0-9a-fA-F]+")


def logo_problem(data: bytes) -> str:
    """Why the logo cannot be drawn (it is decoded whole, as drawing it will), or ""."""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) > MAX_LOGO_PIXELS:
                return f"must be at most {MAX_LOGO_PIXELS} pixels a side; got {width} x {height}"
            image.load()
    except Exception as exc:  # any decoder failure means the same to the client
        # The decoders name their in-memory objects by address: the client gets the cause without them.
        cause = " ".join(_OBJECT_REPR.sub("", str(exc)).split())[:80]
        return f"is not a readable PNG or JPEG image ({cause or type(exc).__name__})"
    return ""


LOGO_DRAWN_PIXELS = 600  # a side: 40 x 20 mm at 300 dpi needs 472 x 236
_LOGO_LOCK = threading.Lock()


@functools.lru_cache(maxsize=16)
def _drawable_logo(data: bytes) -> bytes:
    """The logo shrunk to what the PDF draws, as PNG bytes; b"" when unreadable. A logo within the upload
    limits can decode to 128 MB: each process decodes a logo once, not every PDF."""
    if logo_problem(data):
        return b""
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            image.thumbnail((LOGO_DRAWN_PIXELS, LOGO_DRAWN_PIXELS))
            alpha = "A" in image.getbands() or "transparency" in image.info
            small = image.convert("RGBA" if alpha else "RGB")
            out = io.BytesIO()
            small.save(out, "PNG")
            return out.getvalue()
    except Exception:  # decoded once already (logo_problem): a failure here leaves the logo out, as unreadable
        return b""


def drawable_logo(data: bytes) -> bytes:
    """The company's logo as the PDF draws it (at most 40 x 20 mm, its proportions kept); b"" for none."""
    if not data:
        return b""
    with _LOGO_LOCK:  # concurrent PDFs of one company wait for the one decode
        return _drawable_logo(data)


def render(inv: Invoice, seller: str, profile: CompanyProfile | None = None) -> bytes:
    """The invoice as a PDF/A-3b: parties, number, dates, lines with taxes and discounts, totals, tax breakdown,
    payments, terms and bank details. The seller, terms and bank details are the invoice's snapshot; a draft
    (no snapshot yet) shows the live `profile`; `seller` (SELLER_NAME) names a company without one."""
    profile = profile or CompanyProfile()
    party = inv.seller or profile.seller(seller)
    terms = inv.payment_terms if inv.seller else profile.payment_terms
    means = inv.payment_means if inv.seller else profile.payment_means
    buyer = inv.buyer or Party(name=inv.customer_name or inv.customer_id)
    cur = inv.currency
    fmt = Formats.of(profile.locale)  # amounts and dates as the company's locale writes them
    title = f"Invoice {inv.invoice_number or '(not yet numbered)'}"
    doc = Document(title=title, author=party.name, footer=f"{party.name} · {title}")
    doc.han = han_forms(profile.locale, buyer, party)
    if inv.status is Status.DRAFT:
        doc.mark = "DRAFT"
    elif inv.status is Status.VOID:
        doc.mark = f"VOID ({inv.void_reason.value if inv.void_reason else ''})"
    parties(doc, party, buyer, inv.customer_id, "Bill to")
    facts = [("Issue date", fmt.date(inv.issue_date)), ("Due date", fmt.date(inv.due_date))]
    facts += [
        (label, value)
        for label, value in (("Buyer reference", inv.buyer_reference), ("Purchase order", inv.purchase_order_reference))
        if value
    ]
    if inv.delivery is not None:
        where = ", ".join(x for x in [inv.delivery.name, *_address_text(inv.delivery.address)] if x)
        when = fmt.date(inv.delivery.delivery_date) if inv.delivery.delivery_date else ""
        facts.append(("Delivery", "  ".join(x for x in (where, when) if x)))
    facts += [("Status", inv.status.value), ("Currency", cur)]
    doc.facts = facts
    rows: list[list[str]] = []
    for line in inv.lines:
        taxes = ", ".join(_tax_label(t) for t in line.taxation_items)
        rows.append(
            [
                line.description or "-",
                fmt.quantity(line.quantity),
                fmt.price(line.unit_amount),  # a price keeps its own precision
                fmt.amount(line.discount_amount, cur),
                taxes,
                fmt.amount(line.tax_amount, cur),
                fmt.amount(line.total_amount, cur),
            ]
        )
        if line.charge_amount:
            charge = f"Charge {line.charge_reason or line.charge_reason_code}".strip()
            rows.append([charge, "", "", "", "", "", fmt.amount(line.charge_amount, cur)])
    if rows:
        columns = [
            Column("Description", 1),
            Column("Qty", right=True),
            Column("Unit price", right=True),
            Column("Discount", right=True),
            Column("Tax rate", 0.3),  # a share, not auto: a tax name may be 255 characters
            Column("Tax", right=True),
            Column(f"Amount ({cur})", right=True),
        ]
        doc.table("", columns, rows)
    _allowance_charge_section(doc, inv, fmt)
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
    doc.totals([(k, fmt.money(v, cur), k in ("Total", "Amount due")) for k, v in totals])
    tax_breakdown_table(doc, tax_breakdown(inv), cur, fmt)
    if inv.allocations:
        payments = []
        for a in inv.allocations:
            when = fmt.date(a.allocated_on_date) if a.allocated_on_date else ""
            ref = a.payment.get("reference") or a.payment.get("id") or a.source.value
            payments.append(f"{when}  {ref}  {fmt.money(a.applied_amount, cur)}")
        doc.text(payments, "Payments")
    if inv.status is not Status.VOID:
        doc.text(_payment_lines(inv, terms, means), "Payment")
    if inv.note:
        doc.text([inv.note])
    return typeset(doc, drawable_logo(profile.logo))
