"""Random valid canonical invoices and credit notes for the e-invoice property tests, made as the service makes
them: priced and finalized by the domain (lifecycle), the seller, terms and means snapshot from a company
profile, payments recorded, credit notes drafted and issued by the credit note rules. Valid here means what
EN 16931 needs beyond the domain's own rules: a seller VAT id for every category but O (which has none, and
is alone on its invoice), a buyer VAT id with AE and K, a delivery country and date with K."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import strategies as st

from service.domain import credit_notes, lifecycle
from service.domain.credit_notes import CreditNote, CreditNoteLine, Issued, Parts
from service.domain.errors import Violations
from service.domain.models import AllowanceCharge, Invoice, LineItem, PaymentAllocation, TaxationItem, TaxCategory
from service.domain.money import Rounding, TaxMode
from service.domain.parties import (
    Contact,
    Delivery,
    Party,
    PaymentMeans,
    PaymentReferenceRule,
    PaymentTerms,
    PostalAddress,
    TaxRegistration,
)
from service.domain.profile import CompanyProfile, snapshot_seller

D = Decimal
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CURRENCIES = ["EUR", "USD", "GBP", "CHF"]
CATEGORIES = [c for c in TaxCategory if c is not TaxCategory.O]
RATES: dict[TaxCategory, list[Decimal]] = {
    TaxCategory.S: [D(19), D(20), D(7), D("5.5"), D(21), D("8.1")],
    TaxCategory.L: [D(3), D("6.5"), D(7)],
    TaxCategory.M: [D(0), D(4), D(10)],
}
VATEX: dict[TaxCategory, str] = {
    TaxCategory.E: "VATEX-EU-132",
    TaxCategory.AE: "VATEX-EU-AE",
    TaxCategory.K: "VATEX-EU-IC",
    TaxCategory.G: "VATEX-EU-G",
    TaxCategory.O: "VATEX-EU-O",
}
REASONS: dict[TaxCategory, str] = {
    TaxCategory.E: "Exempt (Art. 132 VAT directive)",
    TaxCategory.AE: "Reverse charge",
    TaxCategory.K: "Intra-community supply",
    TaxCategory.G: "Export outside the EU",
    TaxCategory.O: "Not subject to VAT",
}
TEXT = st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs"]), min_size=1, max_size=20).map(
    lambda s: s.strip() or "x"
)


@dataclass
class Case:
    invoice: Invoice
    note: CreditNote | None


def _rate(draw: st.DrawFn, category: TaxCategory) -> Decimal | None:
    if category is TaxCategory.O:
        return None
    return draw(st.sampled_from(RATES[category])) if category in RATES else D(0)


def _item(draw: st.DrawFn, category: TaxCategory) -> TaxationItem:
    item = TaxationItem(name="VAT", tax_category=category, tax_rate=_rate(draw, category))
    if category in VATEX:
        which = draw(st.sampled_from(["text", "code", "both"]))
        item.exemption_reason = REASONS[category] if which != "code" else ""
        item.exemption_reason_code = VATEX[category] if which != "text" else ""
    return item


def _line(draw: st.DrawFn, categories: list[TaxCategory]) -> LineItem:
    category = draw(st.sampled_from(categories))
    line = LineItem(
        quantity=draw(st.sampled_from([D(1), D(2), D(3), D(5), D("0.5"), D("1.5")])),
        unit_amount=D(draw(st.integers(500, 50_000)) * 2).scaleb(-2),  # even cents: x 0.5 stays exact
        description=draw(TEXT),
        sku=draw(st.sampled_from(["", "SKU-1", "A/42"])),
        unit_of_measure=draw(st.sampled_from(["", "C62", "HUR", "KGM"])),
        taxation_items=[_item(draw, category)],
    )
    discount = draw(st.sampled_from(["none", "amount", "percentage"]))
    if discount == "amount":
        line.discount_amount = D(draw(st.integers(1, 400))).scaleb(-2)
    elif discount == "percentage":
        line.discount_percentage = D(draw(st.integers(1, 50)))
    charge = draw(st.sampled_from(["none", "amount", "percentage"]))
    if charge == "amount":
        line.charge_amount = D(draw(st.integers(1, 500))).scaleb(-2)
    elif charge == "percentage":
        line.charge_percentage = D(draw(st.integers(1, 20)))
    if charge != "none":
        line.charge_reason = draw(st.sampled_from(["", "Packaging"]))
        line.charge_reason_code = draw(st.sampled_from(["", "ABL"]))
    if draw(st.booleans()):
        line.service_start_date, line.service_end_date = date(2026, 2, 1), date(2026, 2, 28)
    return line


def _allowance_charge(draw: st.DrawFn, lines: list[LineItem]) -> AllowanceCharge:
    """At most 2.00 (or 10% of at most 10.00), in the category and rate of a line (every line nets >= 5.00),
    so no breakdown row turns negative."""
    item = draw(st.sampled_from(lines)).taxation_items[0]
    charge = draw(st.booleans())
    ac = AllowanceCharge(charge=charge, tax_category=item.tax_category, tax_rate=item.tax_rate)
    if draw(st.booleans()):
        ac.amount = D(draw(st.integers(1, 200))).scaleb(-2)
    else:
        ac.percentage = D(draw(st.integers(1, 10)))
        ac.base_amount = D(draw(st.integers(100, 1000))).scaleb(-2)
    ac.reason = draw(st.sampled_from(["", "Freight" if charge else "Loyalty"]))
    ac.reason_code = draw(st.sampled_from(["", "FC" if charge else "95"]))
    return ac


def _profile(draw: st.DrawFn, outside_scope: bool) -> CompanyProfile:
    regs = [] if outside_scope else [TaxRegistration("VAT", "DE123456789")]
    if draw(st.booleans()):
        regs.append(TaxRegistration("FC", "201/113/40209"))
    if draw(st.booleans()):
        means = PaymentMeans(iban="DE89370400440532013000", bic=draw(st.sampled_from(["", "COBADEFFXXX"])))
    else:
        means = PaymentMeans(account_number="12345678", routing_code="40-47-84", account_name="Seller Ltd")
    means.payment_reference_rule = draw(st.sampled_from([None, PaymentReferenceRule.CUSTOMER_ID]))
    return CompanyProfile(
        legal_name="Lieferant GmbH",
        trading_name=draw(st.sampled_from(["", "Lieferant"])),
        address=PostalAddress(["Lieferantenstraße 20"], "München", "80333", "", "DE"),
        tax_registrations=regs,
        legal_registration_id="HRB 12345",
        contact=Contact("Hans Muster", "hans@lieferant.de", "+49 89 123456"),
        payment_terms=PaymentTerms(30, draw(st.sampled_from(["", "Net 30 days"]))),
        payment_means=means,
    )


def _buyer(draw: st.DrawFn, outside_scope: bool) -> Party:
    return Party(
        name=draw(TEXT),
        address=PostalAddress(
            draw(st.sampled_from([[], ["Rue de la Paix 1"], ["Rue 1", "Bât. B", "3e étage"]])),
            "Paris",
            "75002",
            draw(st.sampled_from(["", "Île-de-France"])),
            "FR",
        ),
        tax_registrations=[] if outside_scope else [TaxRegistration("VAT", "FR12345678901")],
        legal_registration_id=draw(st.sampled_from(["", "552 100 554"])),
        contact=draw(st.sampled_from([None, Contact("Marie Curie", "marie@acheteur.fr", "+33 1 23 45 67 89")])),
    )


def _credit_note(draw: st.DrawFn, inv: Invoice) -> CreditNote | None:
    kind = draw(st.sampled_from(["none", "whole", "lines"]))
    if kind == "none":
        return None
    lines = []
    if kind == "lines":
        for source in draw(st.lists(st.sampled_from(inv.lines), min_size=1, max_size=2)):
            lines.append(
                CreditNoteLine(
                    unit_amount=D(draw(st.integers(1, 500))).scaleb(-2),
                    description=f"Refund {source.description}",
                    invoice_line_item_id=source.id,
                    tax_rate=source.taxation_items[0].tax_rate,
                )
            )
    note = credit_notes.draft(inv, lines, kind == "whole", Parts(), NOW, reason=draw(st.sampled_from(["", "Damaged"])))
    for i, line in enumerate(note.lines):
        line.id = f"cnl-{i}"
    issue = draw(st.booleans())
    if issue and note.total_amount > inv.payable_amount:
        # The domain refuses it: a whole-invoice note credits total_amount, above a cash-rounded payable amount,
        # and random lines can add up past it.
        issue = False
    if issue:
        credit_notes.issue(note, inv, Issued(), "CN-0001", NOW)
    else:
        note.credit_note_number = "CN-DRAFT"  # a draft has none yet: without one, BR-02 refuses the export
    return note


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A finalized invoice (maybe partly paid, maybe credited) and maybe a credit note against it."""
    currency = draw(st.sampled_from(CURRENCIES))
    outside_scope = draw(st.integers(0, 7)) == 0
    if outside_scope:
        categories = [TaxCategory.O]
    else:
        categories = draw(st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True))
    lines = [_line(draw, categories) for _ in range(draw(st.integers(1, 6)))]
    for i, line in enumerate(lines):
        line.id = f"line-{i}"
    inv = Invoice(id="inv-1", company_id="co", customer_id=draw(st.sampled_from(["cust-1", "C 42"])), currency=currency)
    inv.customer_name = draw(TEXT)
    inv.lines = lines
    inv.allowance_charges = [_allowance_charge(draw, lines) for _ in range(draw(st.integers(0, 2)))]
    inv.rounding_mode = draw(st.sampled_from(list(Rounding)[:2]))
    inv.tax_mode = draw(st.sampled_from(list(TaxMode)))
    if currency == "CHF" and draw(st.booleans()):
        inv.cash_rounding_increment = D("0.05")
    inv.buyer = _buyer(draw, outside_scope)
    inv.buyer_reference = draw(st.sampled_from(["", "04011000-12345-34"]))
    inv.purchase_order_reference = draw(st.sampled_from(["", "PO-4711"]))
    inv.note = draw(st.sampled_from(["", "Thank you for your order.", "Zeile 1\nZeile 2"]))
    if draw(st.booleans()):
        inv.sales_order_refs = [{"id": "SO-77"}]
    if draw(st.booleans()):
        inv.period_start, inv.period_end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC)
    if TaxCategory.K in categories or draw(st.booleans()):
        address = PostalAddress(["Quai 3"], "Lyon", "69001", "", "FR")
        inv.delivery = Delivery(draw(st.sampled_from(["", "Entrepôt Lyon"])), address, date(2026, 2, 27))
    v = Violations()
    lifecycle.prepare_new(inv, v, NOW)
    lifecycle.finalize(inv, draw(st.sampled_from(["INV-00001", "2026/17"])), NOW)
    snapshot_seller(inv, _profile(draw, outside_scope), "Fallback seller")
    assert inv.amount_due is not None
    paid = draw(st.sampled_from([0, 0, 30, 100]))
    if paid:
        amount = (inv.amount_due * paid / 100).quantize(D("0.01"))
        lifecycle.record_payment(inv, PaymentAllocation(amount=amount, currency=currency), NOW)
    note = _credit_note(draw, inv) if inv.amount_due or paid else None
    return Case(inv, note)


SELLER = CompanyProfile(
    legal_name="Lieferant GmbH",
    address=PostalAddress(["Lieferantenstraße 20"], "München", "80333", "", "DE"),
    tax_registrations=[TaxRegistration("VAT", "DE123456789")],
    legal_registration_id="HRB 12345",
    contact=Contact("Hans Muster", "hans@lieferant.de", "+49 89 123456"),
    payment_terms=PaymentTerms(30, "Net 30 days"),
    payment_means=PaymentMeans(iban="DE89370400440532013000", bic="COBADEFFXXX"),
)
BUYER = Party(
    name="Kunden AG Mitte",
    address=PostalAddress(["Kundenstraße 15"], "Frankfurt", "69876", "", "DE"),
    tax_registrations=[TaxRegistration("VAT", "DE987654321")],
)


def taxed(rate: str = "19", category: TaxCategory = TaxCategory.S, reason: str = "", code: str = "") -> TaxationItem:
    return TaxationItem(
        tax_category=category,
        tax_rate=None if category is TaxCategory.O else D(rate),
        exemption_reason=reason,
        exemption_reason_code=code,
    )


def line(
    quantity: str = "1", unit_amount: str = "100.00", item: TaxationItem | None = None, **attrs: object
) -> LineItem:
    out = LineItem(
        quantity=D(quantity), unit_amount=D(unit_amount), description="Item", taxation_items=[item or taxed()]
    )
    for name, value in attrs.items():
        setattr(out, name, value)
    return out


def issued(
    lines: list[LineItem] | None = None, profile: CompanyProfile = SELLER, currency: str = "EUR", **attrs: object
) -> Invoice:
    """A priced, finalized invoice as the service stores it: one line of 100.00 at 19 % unless told."""
    inv = Invoice(id="inv-1", company_id="co", customer_id="cust-1", currency=currency, buyer=BUYER)
    inv.lines = lines if lines is not None else [line()]
    for i, each in enumerate(inv.lines):
        each.id = each.id or f"line-{i}"
    for name, value in attrs.items():
        setattr(inv, name, value)
    lifecycle.prepare_new(inv, Violations(), NOW)
    lifecycle.finalize(inv, "INV-00001", NOW)
    snapshot_seller(inv, profile, "Fallback seller")
    return inv
