"""The canonical model as an EN 16931 document and back: every syntax-independent rule of the mapping, once.
Pure. `terms.py` says which canonical field each business term is; this module says how the values are
derived so that the CEN calculation rules hold exactly (`cii.py` and `ubl.py` only place them in XML):

    BT-106 line_total         = sum of line_items[].sub_total (each after its discount and charge)
    BT-107 / BT-108           = allowance_total_amount / charge_total_amount (absent without allowances/charges)
    BT-109 tax_exclusive      = sub_total (= BT-106 - BT-107 + BT-108, BR-CO-13)
    BT-110 tax_total          = total_tax_amount (= sum of the breakdown's tax, BR-CO-14)
    BT-112 grand_total        = total_amount (= BT-109 + BT-110, BR-CO-15)
    BT-113 paid_amount        = amount_paid + amount_credited (payments and credit memos already settle it)
    BT-114 rounding_amount    = cash_rounding_amount
    BT-115 due_payable        = amount_due (= BT-112 - BT-113 + BT-114, BR-CO-16)
    BG-23  vat_breakdown      = domain/totals.tax_breakdown (line sub totals plus signed allowances/charges
                                per (category, rate): BR-S-08 and its siblings)
    BG-27  line allowance     = line discount_amount (reason code 95 "Discount": BR-CO-23 wants a reason)
    BG-28  line charge        = line charge_amount (reason code ZZZ when the line gives none: BR-CO-24)

Derivations: BT-126 is the line's position (1, 2, ...: stored line ids are the service's UUIDs); BT-130
defaults to C62 ("one"); BT-81 is 58 (SEPA credit transfer) with an IBAN, else 30 (credit transfer) with an
account number; BT-34/BT-49 are the contact e-mail with scheme EM; a breakdown row of an exempt category
without a reason gets the category's standard text and VATEX code; document allowances/charges without a
reason get code 95 / ZZZ (BR-CO-21/22); a credit note line takes the VAT of the invoice line it corrects
(domain credit_notes.line_taxes).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final

from service.domain.credit_notes import CreditNote, CreditNoteLine, CreditNoteStatus, line_taxes, note_tax_breakdown
from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.models import (
    AllowanceCharge as DomainAllowanceCharge,
)
from service.domain.models import (
    Invoice,
    LineItem,
    Status,
    TaxationItem,
    TaxBreakdown,
    TaxCategory,
)
from service.domain.money import Rounding, Rules, TaxMode
from service.domain.parties import (
    Contact,
    Delivery,
    PaymentMeans,
    PaymentTerms,
    PostalAddress,
    TaxRegistration,
    iban_problem,
)
from service.domain.parties import Party as DomainParty
from service.domain.tax import RULES
from service.domain.totals import cash_rounding, price_invoice, rules_of, tax_breakdown
from service.domain.values import ZERO
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
from service.vendors.rules import paid_allocations

Exemptions = dict[tuple[str, Decimal | None], tuple[str, str]]  # (category, rate) -> (reason, code)
UNIT_ONE: Final = "C62"  # UN/ECE Rec 20 "one": a line without a unit of measure
SEPA_CREDIT_TRANSFER: Final = "58"
CREDIT_TRANSFER: Final = "30"
EMAIL_SCHEME: Final = "EM"
VAT_SCHEME: Final = "VAT"
DISCOUNT_REASON: Final = "95"  # UNTDID 5189 "Discount": a line discount, an allowance without a reason
CHARGE_REASON: Final = "ZZZ"  # UNTDID 7161 "Mutually defined": a charge without a reason
# The standard exemption text and VATEX code of a breakdown row whose items gave none (BR-x-10 wants one).
EXEMPTIONS: Final[dict[str, tuple[str, str]]] = {
    "E": ("Exempt from VAT", ""),
    "AE": ("Reverse charge", "VATEX-EU-AE"),
    "K": ("Intra-Community supply", "VATEX-EU-IC"),
    "G": ("Export outside the EU", "VATEX-EU-G"),
    "O": ("Not subject to VAT", "VATEX-EU-O"),
}
# Cash rounding increments tried, smallest first, to find one that explains an imported BT-114.
_INCREMENTS: Final = tuple(Decimal(x) for x in ("0.05", "0.10", "0.20", "0.25", "0.50", "1", "5", "10"))


@dataclass(slots=True)
class Inbound:
    """An e-invoice in canonical form. For an invoice (380), `invoice` is it: totals as client-sent values
    (the importer prices and checks them; rounding and tax modes are left to `totals.infer_modes`), paid
    history (BT-113) as one IMPORTED allocation, the status its amounts imply. For a credit note (381),
    `credit_note` is it (invoice_number = BT-25) and `invoice` is the document's view of the corrected
    invoice: parties, currency, terms, means, and one line per credit note line (id = BT-126, which the note
    line's invoice_line_item_id names) carrying its VAT category, so `from_credit_note(note, invoice)`
    gives the document back; the importer maps those lines onto the stored invoice's. An imported invoice's
    and credit note's own line ids are left empty (the store assigns its own)."""

    invoice: Invoice
    credit_note: CreditNote | None = None
    notes: list[str] = field(default_factory=list)  # BT-22 as given (the canonical note joins them)


# -- canonical -> document ----------------------------------------------------------------------


def _day(value: datetime | None) -> date | None:
    return value.astimezone(UTC).date() if value is not None and value.tzinfo else value.date() if value else None


def _address(a: PostalAddress | None) -> Address | None:
    if a is None:
        return None
    return Address(list(a.address_lines), a.city, a.postal_code, a.country_subdivision, a.country_code)


def _party(p: DomainParty | None, name: str = "", identifier: str = "") -> Party:
    out = Party(name=name, identifier=identifier)
    if p is None:
        return out
    out.name = p.name or name
    out.trading_name = p.trading_name
    out.legal_id = p.legal_registration_id
    out.vat_id = next((t.id for t in p.tax_registrations if t.scheme.upper() == VAT_SCHEME), "")
    out.tax_id = next((t.id for t in p.tax_registrations if t.scheme.upper() != VAT_SCHEME), "")
    out.address = _address(p.address)
    if p.contact is not None:
        out.contact_name, out.contact_phone, out.contact_email = p.contact.name, p.contact.phone, p.contact.email
        if p.contact.email:
            out.electronic_address, out.electronic_scheme = p.contact.email, EMAIL_SCHEME
    return out


def _line_tax(line: LineItem) -> tuple[str, Decimal | None]:
    """BG-30 of a line: its first taxation item's category and rate (EN 16931 has one VAT per line)."""
    item = line.taxation_items[0] if line.taxation_items else None
    if item is None or item.tax_category is None:
        return "", item.tax_rate if item else None
    return item.tax_category.value, item.tax_rate


def _line(line: LineItem, position: int, r: Rules) -> Line:
    gross = r.round(line.quantity * line.unit_amount)
    category, rate = _line_tax(line)
    out = Line(
        id=str(position),
        quantity=line.quantity,
        unit_code=line.unit_of_measure or UNIT_ONE,
        net_amount=line.sub_total if line.sub_total is not None else gross,
        net_price=line.unit_amount,
        name=line.description,
        category=category,
        rate=rate,
        period_start=line.service_start_date,
        period_end=line.service_end_date,
        seller_item_id=line.sku,
    )
    if line.discount_amount:
        pct = line.discount_percentage
        exact = pct is not None and r.percent(gross, pct) == line.discount_amount  # not a share of a spread
        out.allowances_charges.append(
            AllowanceCharge(
                charge=False,
                amount=line.discount_amount,
                base_amount=gross if exact else None,
                percentage=pct if exact else None,
                reason_code=DISCOUNT_REASON,
            )
        )
    if line.charge_amount:
        pct = line.charge_percentage
        exact = pct is not None and r.percent(gross, pct) == line.charge_amount
        out.allowances_charges.append(
            AllowanceCharge(
                charge=True,
                amount=line.charge_amount,
                base_amount=gross if exact else None,
                percentage=pct if exact else None,
                reason=line.charge_reason,
                reason_code=line.charge_reason_code or ("" if line.charge_reason else CHARGE_REASON),
            )
        )
    return out


def _document_allowance_charge(ac: DomainAllowanceCharge, lines_net: Decimal, r: Rules) -> AllowanceCharge:
    base = ac.base_amount
    if ac.percentage is not None and base is None:
        base = lines_net  # the domain's default base: the line sub totals
    default_code = CHARGE_REASON if ac.charge else DISCOUNT_REASON
    return AllowanceCharge(
        charge=ac.charge,
        amount=ac.amount if ac.amount is not None else r.round(ZERO),
        base_amount=base,
        percentage=ac.percentage,
        category=ac.tax_category.value if ac.tax_category is not None else "",
        rate=ac.tax_rate,
        reason=ac.reason,
        reason_code=ac.reason_code or ("" if ac.reason else default_code),
    )


def _breakdown_row(
    category: str, rate: Decimal | None, taxable: Decimal, tax: Decimal, reason: str, code: str
) -> VatBreakdown:
    """A BG-23 row: an exempt category's reason (its standard one when none was given), none for the others."""
    try:
        rule = RULES[TaxCategory(category)]
    except ValueError:
        return VatBreakdown(taxable, tax, category, rate, reason, code)
    if not rule.reason_required:
        reason = code = ""
    elif not reason and not code:
        reason, code = EXEMPTIONS[category]
    return VatBreakdown(taxable, tax, category, None if rule.rate == "none" else rate, reason, code)


def _breakdown(rows: list[TaxBreakdown]) -> list[VatBreakdown]:
    """BG-23 of an invoice's or a credit note's breakdown (service/domain/totals.group_taxes)."""
    return [
        _breakdown_row(
            row.tax_category.value if row.tax_category is not None else "",
            row.rate,
            row.taxable_amount,
            row.tax_amount,
            row.exemption_reason,
            row.exemption_reason_code,
        )
        for row in rows
    ]


def _payment(doc: Document, means: PaymentMeans | None) -> None:
    if means is None:
        return
    doc.remittance_information = means.payment_reference
    account = means.iban or means.account_number
    if account:
        doc.payment_means_code = SEPA_CREDIT_TRANSFER if means.iban else CREDIT_TRANSFER
        doc.payment_account = account
        doc.payment_account_name = means.account_name
        doc.payment_service_provider = means.bic


def _delivery(doc: Document, d: Delivery | None) -> None:
    if d is not None:
        doc.delivery_name, doc.delivery_date, doc.delivery_address = d.name, d.delivery_date, _address(d.address)


def _issue_date(value: datetime | None, today: date | None) -> date:
    day = _day(value) or today
    if day is None:
        raise InvalidArgument([FieldViolation("issue_date", "is required for an e-invoice")])
    return day


def from_invoice(inv: Invoice, *, today: date | None = None) -> Document:
    """The EN 16931 invoice (380) of a priced invoice. A draft has no seller snapshot: the caller gives it
    one (profile.snapshot_seller on a copy) and `today` stands for its issue date."""
    r = rules_of(inv)
    zero = r.round(ZERO)
    lines_net = sum((line.sub_total or ZERO for line in inv.lines), zero)
    paid = inv.amount_paid + inv.amount_credited
    total = inv.total_amount if inv.total_amount is not None else zero
    doc = Document(
        type_code=INVOICE,
        number=inv.invoice_number,
        issue_date=_issue_date(inv.issue_date, today),
        currency=inv.currency,
        seller=_party(inv.seller),
        buyer=_party(inv.buyer, inv.customer_name, inv.customer_id),
        lines=[_line(line, i + 1, r) for i, line in enumerate(inv.lines)],
        vat_breakdown=_breakdown(tax_breakdown(inv)),
        line_total=lines_net,
        tax_exclusive_total=inv.sub_total if inv.sub_total is not None else zero,
        tax_total=inv.total_tax_amount if inv.total_tax_amount is not None else zero,
        grand_total=total,
        due_payable=inv.amount_due if inv.amount_due is not None else inv.payable_amount - paid,
        allowance_total=inv.allowance_total_amount if any(not a.charge for a in inv.allowance_charges) else None,
        charge_total=inv.charge_total_amount if any(a.charge for a in inv.allowance_charges) else None,
        paid_amount=paid or None,
        rounding_amount=inv.cash_rounding_amount or None,
        due_date=_day(inv.due_date),
        buyer_reference=inv.buyer_reference,
        purchase_order_reference=inv.purchase_order_reference,
        sales_order_reference=str(inv.sales_order_refs[0].get("id", "")) if inv.sales_order_refs else "",
        payment_terms=inv.payment_terms.text if inv.payment_terms else "",
        notes=[inv.note] if inv.note else [],
        period_start=_day(inv.period_start),
        period_end=_day(inv.period_end),
        allowances_charges=[_document_allowance_charge(ac, lines_net, r) for ac in inv.allowance_charges],
    )
    _delivery(doc, inv.delivery)
    _payment(doc, inv.payment_means)
    return doc


def _note_line(line: CreditNoteLine, item: TaxationItem, position: int, r: Rules) -> Line:
    category = item.tax_category.value if item.tax_category is not None else ""
    rate = None if item.tax_category is TaxCategory.O else item.tax_rate
    out = Line(
        id=str(position),
        quantity=line.quantity,
        unit_code=UNIT_ONE,
        net_amount=line.sub_total,
        net_price=line.unit_amount,
        name=line.description,
        category=category,
        rate=rate,
    )
    # A line copied from a discounted invoice line keeps its sub total: the difference is its allowance.
    difference = line.sub_total - r.round(line.quantity * line.unit_amount)
    if difference:
        charge = difference > 0
        code = CHARGE_REASON if charge else DISCOUNT_REASON
        out.allowances_charges.append(AllowanceCharge(charge=charge, amount=abs(difference), reason_code=code))
    return out


def from_credit_note(note: CreditNote, inv: Invoice, *, today: date | None = None) -> Document:
    """The EN 16931 credit note (381) of `note`, which corrects `inv`: the invoice's parties, currency,
    terms and means; BT-25/26 its number and date. An issued note was settled when issued (credit memo,
    customer balance, refund), so it is fully paid (BT-113 = total, BT-115 = 0); a draft is due whole."""
    r = rules_of(inv)
    zero = r.round(ZERO)
    parts = [part for line in note.lines for part in line_taxes(line, inv)]
    lines = [_note_line(line, item, i + 1, r) for i, (line, item) in enumerate(parts)]
    settled = note.status is CreditNoteStatus.ISSUED
    doc = Document(
        type_code=CREDIT_NOTE,
        number=note.credit_note_number,
        issue_date=_issue_date(note.issue_time or note.create_time, today),
        currency=note.currency or inv.currency,
        seller=_party(inv.seller),
        buyer=_party(inv.buyer, inv.customer_name or note.customer_name, inv.customer_id or note.customer_id),
        lines=lines,
        vat_breakdown=_breakdown(note_tax_breakdown(note, inv)),
        line_total=note.sub_total,
        tax_exclusive_total=note.sub_total,
        tax_total=note.total_tax_amount,
        grand_total=note.total_amount,
        due_payable=zero if settled else note.total_amount,
        paid_amount=note.total_amount if settled else None,
        buyer_reference=inv.buyer_reference,
        purchase_order_reference=inv.purchase_order_reference,
        payment_terms=inv.payment_terms.text if inv.payment_terms else "",
        notes=[note.reason] if note.reason else [],
        preceding_invoice=note.invoice_number or inv.invoice_number,
        preceding_invoice_date=_day(note.invoice_issue_date or inv.issue_date),
    )
    _payment(doc, inv.payment_means)
    _delivery(doc, inv.delivery)  # what it corrects was delivered then (BR-IC-11/12 hold for the note too)
    doc.period_start, doc.period_end = _day(inv.period_start), _day(inv.period_end)
    return doc


# -- document -> canonical ----------------------------------------------------------------------


def _when(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day is not None else None


def _postal(a: Address | None) -> PostalAddress | None:
    if a is None:
        return None
    return PostalAddress(list(a.lines), a.city, a.postal_code, a.subdivision, a.country)


def _domain_party(p: Party) -> DomainParty:
    regs = [TaxRegistration(VAT_SCHEME, p.vat_id)] if p.vat_id else []
    if p.tax_id:
        regs.append(TaxRegistration("FC", p.tax_id))
    email = p.contact_email or (p.electronic_address if p.electronic_scheme == EMAIL_SCHEME else "")
    contact = None
    if p.contact_name or p.contact_phone or email:
        contact = Contact(name=p.contact_name, email=email, phone=p.contact_phone)
    return DomainParty(
        name=p.name,
        trading_name=p.trading_name,
        address=_postal(p.address),
        tax_registrations=regs,
        legal_registration_id=p.legal_id,
        contact=contact,
    )


def _category(code: str) -> TaxCategory | None:
    try:
        return TaxCategory(code)
    except ValueError:
        return None


def _exemptions(doc: Document) -> Exemptions:
    return {(b.category, b.rate): (b.exemption_reason, b.exemption_reason_code) for b in doc.vat_breakdown}


def _taxation(category: str, rate: Decimal | None, exemptions: Exemptions) -> TaxationItem:
    reason, code = exemptions.get((category, rate), ("", ""))
    return TaxationItem(
        tax_rate=rate, tax_category=_category(category), exemption_reason=reason, exemption_reason_code=code
    )


def _single_percentage(parts: list[AllowanceCharge]) -> Decimal | None:
    return parts[0].percentage if len(parts) == 1 else None


def unit_price(line: Line, position: int) -> Decimal:
    """BT-146 per one unit: the net price divided by its base quantity (BT-149), which the canonical model
    does not carry; a price that does not divide exactly (10.00 per 3) cannot be carried and is refused."""
    base = line.price_base_quantity
    if base is None or base == 1:
        return line.net_price
    unit = line.net_price / base if base > 0 else None
    if unit is None or unit * base != line.net_price:
        why = f"a net price of {line.net_price:f} per {base:f} units is not an exact price per unit"
        raise InvalidArgument([FieldViolation(f"lines[{position}].price_base_quantity (BT-149)", why)])
    return unit


def _line_item(line: Line, exemptions: Exemptions, position: int = 0) -> LineItem:
    allowances = [a for a in line.allowances_charges if not a.charge]
    charges = [a for a in line.allowances_charges if a.charge]
    out = LineItem(
        quantity=line.quantity,
        unit_amount=unit_price(line, position),
        description=line.name,
        sub_total=line.net_amount,
        service_start_date=line.period_start,
        service_end_date=line.period_end,
        sku=line.seller_item_id,
        unit_of_measure=line.unit_code,
        taxation_items=[_taxation(line.category, line.rate, exemptions)],
    )
    if allowances:
        out.discount_amount = sum((a.amount for a in allowances), ZERO)
        out.discount_percentage = _single_percentage(allowances)
    if charges:
        out.charge_amount = sum((c.amount for c in charges), ZERO)
        out.charge_percentage = _single_percentage(charges)
        out.charge_reason = charges[0].reason
        out.charge_reason_code = charges[0].reason_code
    return out


def _domain_allowance_charge(ac: AllowanceCharge) -> DomainAllowanceCharge:
    return DomainAllowanceCharge(
        charge=ac.charge,
        amount=ac.amount,
        base_amount=ac.base_amount,
        percentage=ac.percentage,
        reason=ac.reason,
        reason_code=ac.reason_code,
        tax_category=_category(ac.category),
        tax_rate=ac.rate,
    )


def _means(doc: Document) -> PaymentMeans | None:
    if not (doc.payment_account or doc.remittance_information):
        return None
    account = doc.payment_account
    is_iban = bool(account) and not iban_problem(account.replace(" ", "").upper())
    return PaymentMeans(
        iban=account if is_iban else "",
        bic=doc.payment_service_provider,
        account_number="" if is_iban else account,
        account_name=doc.payment_account_name,
        payment_reference=doc.remittance_information,
    )


def _increment(total: Decimal, rounding: Decimal, r: Rules) -> Decimal | None:
    """The smallest usual cash rounding increment that turns `total` into total + `rounding` (BT-114)."""
    if not rounding:
        return None
    return next((inc for inc in _INCREMENTS if r.fits(inc) and cash_rounding(total, inc, r) == rounding), None)


def _parties(doc: Document, inv: Invoice) -> None:
    """What an invoice and the invoice a credit note corrects share: parties, terms, means, delivery, period."""
    inv.seller = _domain_party(doc.seller)
    inv.buyer = _domain_party(doc.buyer)
    inv.customer_id, inv.customer_name = doc.buyer.identifier, doc.buyer.name
    inv.buyer_reference = doc.buyer_reference
    inv.purchase_order_reference = doc.purchase_order_reference
    inv.payment_terms = PaymentTerms(text=doc.payment_terms) if doc.payment_terms else None
    inv.payment_means = _means(doc)
    inv.period_start, inv.period_end = _when(doc.period_start), _when(doc.period_end)
    if doc.delivery_name or doc.delivery_date or doc.delivery_address:
        inv.delivery = Delivery(doc.delivery_name, _postal(doc.delivery_address), doc.delivery_date)


def _rows(rows: list[VatBreakdown]) -> dict[tuple[str, Decimal | None], tuple[Decimal, Decimal]]:
    return {(b.category, b.rate): (b.taxable_amount, b.tax_amount) for b in rows}


def _modes(inv: Invoice, doc: Document) -> None:
    """The rounding and tax modes whose pricing gives the document's VAT breakdown row for row (the total
    alone can agree in a mode whose rows differ); left unset when none does (totals.infer_modes decides)."""
    want = _rows(doc.vat_breakdown)
    for rounding in (Rounding.HALF_UP, Rounding.HALF_EVEN):
        for tax_mode in TaxMode:
            trial = copy.deepcopy(inv)
            trial.rounding_mode, trial.tax_mode = rounding, tax_mode
            v = Violations()
            price_invoice(trial, v)
            if not v and _rows(_breakdown(tax_breakdown(trial))) == want:
                inv.rounding_mode, inv.tax_mode = rounding, tax_mode
                return


def _invoice(doc: Document) -> Invoice:
    exemptions = _exemptions(doc)
    inv = Invoice(
        invoice_number=doc.number,
        issue_date=_when(doc.issue_date),
        due_date=_when(doc.due_date),
        currency=doc.currency,
        note="\n".join(doc.notes),
        sub_total=doc.tax_exclusive_total,
        total_tax_amount=doc.tax_total,
        total_amount=doc.grand_total,
        amount_due=doc.due_payable,
        lines=[_line_item(line, exemptions, n) for n, line in enumerate(doc.lines)],
        allowance_charges=[_domain_allowance_charge(ac) for ac in doc.allowances_charges],
        sales_order_refs=[{"id": doc.sales_order_reference}] if doc.sales_order_reference else [],
    )
    _parties(doc, inv)
    r = rules_of(inv)
    if doc.rounding_amount:
        inv.cash_rounding_increment = _increment(doc.grand_total, doc.rounding_amount, r)
        inv.cash_rounding_amount = doc.rounding_amount
    _modes(inv, doc)
    inv.allocations = paid_allocations(inv, doc.paid_amount)
    if doc.paid_amount:
        inv.status = Status.PAID if doc.due_payable == 0 else Status.PARTIALLY_PAID
    else:
        inv.status = Status.SUBMITTED
    return inv


def _line_taxes(doc: Document, r: Rules) -> list[Decimal]:
    """Each line's share of its breakdown row's tax (BT-117), by net amount: they add up to it exactly."""
    taxes = [r.round(ZERO)] * len(doc.lines)
    for row in doc.vat_breakdown:
        members = [i for i, ln in enumerate(doc.lines) if (ln.category, ln.rate) == (row.category, row.rate)]
        for i, share in zip(members, r.spread(row.tax_amount, [doc.lines[i].net_amount for i in members]), strict=True):
            taxes[i] = share
    return taxes


def _credit_note(doc: Document) -> Inbound:
    exemptions = _exemptions(doc)
    inv = Invoice(
        invoice_number=doc.preceding_invoice,
        issue_date=_when(doc.preceding_invoice_date),
        currency=doc.currency,
        lines=[
            LineItem(
                quantity=line.quantity,
                unit_amount=line.net_price,
                id=line.id,
                description=line.name,
                sub_total=line.net_amount,
                taxation_items=[_taxation(line.category, line.rate, exemptions)],
            )
            for line in doc.lines
        ],
    )
    _parties(doc, inv)
    r = rules_of(inv)
    lines = []
    for line, tax in zip(doc.lines, _line_taxes(doc, r), strict=True):
        lines.append(
            CreditNoteLine(
                unit_amount=line.net_price,
                quantity=line.quantity,
                invoice_line_item_id=line.id,
                description=line.name,
                tax_rate=line.rate,
                sub_total=line.net_amount,
                tax_amount=tax,
                total_amount=line.net_amount + tax,
            )
        )
    settled = doc.paid_amount == doc.grand_total and doc.due_payable == 0
    note = CreditNote(
        credit_note_number=doc.number,
        invoice_number=doc.preceding_invoice,
        invoice_issue_date=_when(doc.preceding_invoice_date),
        currency=doc.currency,
        customer_id=doc.buyer.identifier,
        customer_name=doc.buyer.name,
        status=CreditNoteStatus.ISSUED if settled else CreditNoteStatus.DRAFT,
        lines=lines,
        sub_total=doc.tax_exclusive_total,
        total_tax_amount=doc.tax_total,
        total_amount=doc.grand_total,
        reason="\n".join(doc.notes),
        issue_time=_when(doc.issue_date),
    )
    return Inbound(inv, note, list(doc.notes))


def to_canonical(doc: Document) -> Inbound:
    """The canonical form of a read e-invoice or credit note (see Inbound)."""
    if doc.type_code == CREDIT_NOTE:
        return _credit_note(doc)
    return Inbound(_invoice(doc), None, list(doc.notes))
