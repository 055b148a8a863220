"""Hypothesis strategy for internally consistent EN 16931 Documents (invoices and credit notes): line net
amounts from quantity times price (per base quantity) plus line charges less line allowances; the VAT
breakdown per (category, rate) by the CEN rules (exemption reasons for E/AE/K/G/O, no rate for O, O alone);
document allowances/charges with their category; totals BT-106..BT-115 consistent; the parties' VAT
identifiers where the categories need them (none for O); a deliver-to country and date for K/G.
Syntax-neutral: UBL and CII tests both can use it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from hypothesis import strategies as st

from service.einvoice.document import (
    CREDIT_NOTE,
    INVOICE,
    Address,
    AllowanceCharge,
    Document,
    Line,
    Party,
    VatBreakdown,
)

CENT: Final = Decimal("0.01")
ZERO: Final = Decimal("0.00")
CURRENCIES: Final = ("EUR", "USD", "GBP", "SEK", "DKK", "CHF", "NOK", "PLN", "CZK")
COUNTRIES: Final = ("DE", "FR", "BE", "NL", "AT", "IT", "ES", "SE", "DK", "PL")
STANDARD_RATES: Final = tuple(Decimal(r) for r in ("25", "21", "20", "19", "10", "7", "5.5"))
ZERO_RATED: Final = ("Z", "E", "AE", "K", "G")
# VATEX code and text per category that needs an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, BR-G-10, BR-O-10).
EXEMPTIONS: Final = {
    "E": ("VATEX-EU-132", "Exempt based on article 132 of Council Directive 2006/112/EC"),
    "AE": ("VATEX-EU-AE", "Reverse charge"),
    "K": ("VATEX-EU-IC", "Intra-Community supply"),
    "G": ("VATEX-EU-G", "Export outside the EU"),
    "O": ("VATEX-EU-O", "Not subject to VAT"),
}
ALLOWANCE_CODES: Final = ("95", "41", "60", "64", "88", "100")  # UNCL5189
CHARGE_CODES: Final = ("FC", "AAA", "AA")  # UNCL7161
UNITS: Final = ("C62", "H87", "HUR", "KGM", "MTR", "DAY", "EA", "XPP")  # UN/ECE Rec 20/21

_FIRST = "A-Za-z0-9ÄÖÜäöüßéçñΩλЖж日本語"
text = st.from_regex(rf"[{_FIRST}][{_FIRST} .,&<>/'-]{{0,24}}", fullmatch=True).map(str.strip)
dates = st.dates(min_value=date(2015, 1, 1), max_value=date(2035, 12, 31))


def r2(x: Decimal) -> Decimal:
    return x.quantize(CENT, ROUND_HALF_UP)


def total(xs: list[Decimal]) -> Decimal:
    return sum(xs, ZERO)


def opt(draw: Any, strategy: st.SearchStrategy[Any], empty: Any = "") -> Any:
    return draw(strategy) if draw(st.booleans()) else empty


def vat_id(draw: Any, country: str) -> str:
    digits: str = draw(st.from_regex(r"[0-9]{9}", fullmatch=True))
    return country + digits


def addresses(draw: Any, country: str | None = None) -> Address:
    return Address(
        lines=draw(st.lists(text, max_size=3)),
        city=opt(draw, text),
        postal_code=opt(draw, st.from_regex(r"[0-9]{4,5}", fullmatch=True)),
        subdivision=opt(draw, text),
        country=country or draw(st.sampled_from(COUNTRIES)),
    )


def parties(draw: Any, *, vat: bool | None, tax_id: bool = True, legal_id: bool = False) -> Party:
    """vat: True required, False forbidden, None either."""
    country = draw(st.sampled_from(COUNTRIES))
    scheme, address = draw(
        st.sampled_from([("", ""), ("EM", "invoices@example.com"), ("0088", "4035811991021"), ("9930", "DE123456789")])
    )
    return Party(
        name=draw(text),
        trading_name=opt(draw, text),
        identifier=opt(draw, st.from_regex(r"[A-Z0-9]{3,12}", fullmatch=True)),
        legal_id=draw(st.from_regex(r"[0-9]{6,10}", fullmatch=True)) if legal_id else opt(draw, text),
        vat_id=vat_id(draw, country) if vat or (vat is None and draw(st.booleans())) else "",
        tax_id=opt(draw, st.from_regex(r"[0-9]{3}/[0-9]{3}/[0-9]{5}", fullmatch=True)) if tax_id else "",
        electronic_address=address,
        electronic_scheme=scheme,
        address=addresses(draw, country),
        contact_name=opt(draw, text),
        contact_phone=opt(draw, st.from_regex(r"\+[0-9]{8,12}", fullmatch=True)),
        contact_email=opt(draw, st.just("billing@example.org")),
    )


def reasons(draw: Any, charge: bool) -> tuple[str, str]:
    """(reason, code): at least one of them (BR-33, BR-38, BR-42, BR-44)."""
    code = draw(st.sampled_from(CHARGE_CODES if charge else ALLOWANCE_CODES))
    which = draw(st.sampled_from(["reason", "code", "both"]))
    return (draw(text) if which != "code" else "", code if which != "reason" else "")


def allowance_charge(draw: Any, base: Decimal, category: tuple[str, Decimal | None] | None) -> AllowanceCharge:
    charge = draw(st.booleans())
    reason, code = reasons(draw, charge)
    percentage = base_amount = None
    if draw(st.booleans()) and base >= 0:
        percentage = Decimal(draw(st.integers(1, 2000))).scaleb(-2)
        base_amount = base
        amount = r2(base * percentage / 100)
    else:
        amount = r2(abs(base) * draw(st.integers(0, 30)) / 100)
    cat, rate = category if category else ("", None)
    return AllowanceCharge(charge, amount, base_amount, percentage, cat, rate, reason, code)


def signed(acs: list[AllowanceCharge]) -> Decimal:
    return total([ac.amount if ac.charge else -ac.amount for ac in acs])


def period(draw: Any) -> tuple[date | None, date | None]:
    start = draw(dates)
    end = start + timedelta(days=draw(st.integers(0, 90)))
    chosen: tuple[date | None, date | None] = draw(st.sampled_from([(start, end), (start, None), (None, end)]))
    return chosen


def lines(draw: Any, categories: list[tuple[str, Decimal | None]], *, returns: bool) -> list[Line]:
    picks = categories + draw(st.lists(st.sampled_from(categories), max_size=3))
    out = []
    for i, (category, rate) in enumerate(draw(st.permutations(picks))):
        quantity = Decimal(draw(st.integers(1, 100_000))).scaleb(-draw(st.integers(0, 3)))
        if returns and draw(st.integers(0, 4)) == 0:
            quantity = -quantity  # a returned item on an invoice (EN 16931 example 2)
        price = Decimal(draw(st.integers(0, 1_000_000))).scaleb(-draw(st.integers(2, 4)))
        base = draw(st.sampled_from([None, None, Decimal("1"), Decimal("10"), Decimal("12")]))
        gross = r2(quantity * price / (base or 1))
        acs = [allowance_charge(draw, gross, None) for _ in range(draw(st.integers(0, 2)))]
        start, end = period(draw) if draw(st.booleans()) else (None, None)
        out.append(
            Line(
                id=str(i + 1),
                quantity=quantity,
                unit_code=draw(st.sampled_from(UNITS)),
                net_amount=gross + signed(acs),
                net_price=price,
                name=draw(text),
                category=category,
                rate=rate,
                period_start=start,
                period_end=end,
                allowances_charges=acs,
                seller_item_id=opt(draw, st.from_regex(r"[A-Z]{2}-[0-9]{3,6}", fullmatch=True)),
                price_base_quantity=base,
            )
        )
    return out


def breakdown(
    draw: Any, category: str, rate: Decimal | None, lines_: list[Line], acs: list[AllowanceCharge]
) -> VatBreakdown:
    taxable = total([ln.net_amount for ln in lines_ if (ln.category, ln.rate) == (category, rate)]) + signed(
        [ac for ac in acs if (ac.category, ac.rate) == (category, rate)]
    )
    reason = code = ""
    if category in EXEMPTIONS:
        code, reason = EXEMPTIONS[category]
        which = draw(st.sampled_from(["reason", "code", "both"]))
        reason, code = (reason if which != "code" else "", code if which != "reason" else "")
    tax = r2(taxable * rate / 100) if rate else ZERO
    return VatBreakdown(taxable, tax, category, rate, reason, code)


@st.composite
def documents(draw: Any, type_code: str | None = None, category: str | None = None) -> Document:
    """A document of `type_code` (either if None) with VAT `category` among its categories (any if None)."""
    type_code = type_code or draw(st.sampled_from([INVOICE, CREDIT_NOTE]))
    currency = draw(st.sampled_from(CURRENCIES))
    categories: list[tuple[str, Decimal | None]]
    if category == "O" or (category is None and draw(st.integers(0, 7)) == 0):
        categories = [("O", None)]  # not subject to VAT: alone in its document (BR-O-11..14)
    else:
        categories = []
        chosen = draw(st.lists(st.sampled_from(["S", *ZERO_RATED, "L", "M"]), min_size=1, max_size=3, unique=True))
        if category and category not in chosen:
            chosen[0] = category
        for name in dict.fromkeys(chosen):
            if name == "S":
                rates = draw(st.lists(st.sampled_from(STANDARD_RATES), min_size=1, max_size=2, unique=True))
                categories += [("S", r) for r in rates]
            elif name in ("L", "M"):  # Canary Islands IGIC / Ceuta and Melilla IPSI: any rate from 0
                categories.append((name, draw(st.sampled_from([Decimal("0"), Decimal("3"), Decimal("7")]))))
            else:
                categories.append((name, Decimal("0")))
    names = {c for c, _ in categories}
    lines_ = lines(draw, categories, returns=type_code == INVOICE)
    line_total = total([ln.net_amount for ln in lines_])
    acs = [
        allowance_charge(draw, line_total, draw(st.sampled_from(categories))) for _ in range(draw(st.integers(0, 3)))
    ]
    vat = [breakdown(draw, c, r, lines_, acs) for c, r in categories]
    allowances = [ac.amount for ac in acs if not ac.charge]
    charges = [ac.amount for ac in acs if ac.charge]
    exclusive = line_total - total(allowances) + total(charges)
    tax_total = total([b.tax_amount for b in vat])
    grand = exclusive + tax_total
    paid = r2(grand * draw(st.integers(1, 100)) / 100) if grand > 0 and draw(st.booleans()) else None
    rounding = opt(draw, st.sampled_from([Decimal("-0.02"), Decimal("0.01"), Decimal("0.03")]), None)
    due = grand - (paid or 0) + (rounding or 0)

    not_subject = names == {"O"}
    seller = parties(draw, vat=not not_subject, legal_id=not_subject)  # every category but O needs it
    buyer_vat = False if not_subject else (True if names & {"AE", "K"} else None)
    buyer = parties(draw, vat=buyer_vat, tax_id=False)

    means = opt(draw, st.sampled_from(["1", "10", "30", "31", "42", "58"]))
    account = "DE89370400440532013000" if means in ("30", "58") else opt(draw, st.just("NO9386011117947"))
    account = account if means else ""
    issue = draw(dates)
    due_date = opt(draw, st.integers(0, 60).map(lambda d: issue + timedelta(days=d)), None)
    if type_code == CREDIT_NOTE and not means:
        due_date = None  # a UBL 2.1 credit note carries BT-9 in its payment means only
    terms = opt(draw, text)
    if due > 0 and due_date is None and not terms:
        terms = "Payable within 30 days"  # BR-CO-25

    delivery_address = delivery_date = None
    period_start, period_end = period(draw) if draw(st.booleans()) else (None, None)
    if names & {"K", "G"} or draw(st.booleans()):
        delivery_address = addresses(draw) if names & {"K", "G"} or draw(st.booleans()) else None
        delivery_date = opt(draw, dates, None)
    if "K" in names and delivery_date is None and period_start is None and period_end is None:
        delivery_date = issue  # BR-IC-11
    purchase_order = opt(draw, text.filter(lambda t: t != "NA"))
    preceding = opt(draw, text)

    return Document(
        type_code=type_code,
        number=draw(st.from_regex(r"[A-Z]{2,4}-[0-9]{1,8}", fullmatch=True)),
        issue_date=issue,
        currency=currency,
        seller=seller,
        buyer=buyer,
        lines=lines_,
        vat_breakdown=vat,
        line_total=line_total,
        tax_exclusive_total=exclusive,
        tax_total=tax_total,
        grand_total=grand,
        due_payable=due,
        allowance_total=total(allowances) if allowances or draw(st.booleans()) else None,
        charge_total=total(charges) if charges or draw(st.booleans()) else None,
        paid_amount=paid,
        rounding_amount=rounding,
        due_date=due_date,
        buyer_reference=opt(draw, text),
        purchase_order_reference=purchase_order,
        sales_order_reference=opt(draw, text),
        payment_terms=terms,
        notes=draw(st.lists(text, max_size=2)),
        preceding_invoice=preceding,
        preceding_invoice_date=opt(draw, dates, None) if preceding else None,
        delivery_name=opt(draw, text) if delivery_address or delivery_date else "",
        delivery_date=delivery_date,
        delivery_address=delivery_address,
        period_start=period_start,
        period_end=period_end,
        payment_means_code=means,
        remittance_information=opt(draw, text) if means else "",
        payment_account=account,
        payment_account_name=opt(draw, text) if account else "",
        payment_service_provider=opt(draw, st.just("DEUTDEFF")) if account else "",
        allowances_charges=acs,
    )
