"""The syntax-independent EN 16931 mapping rules (service/einvoice/semantic.py), table-driven and pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from service.domain import credit_notes, lifecycle
from service.domain.credit_notes import CreditNoteLine, Issued, Parts
from service.domain.errors import InvalidArgument
from service.domain.models import AllocationSource, AllowanceCharge, PaymentAllocation, Status, TaxCategory
from service.domain.money import Rounding, TaxMode
from service.domain.parties import Contact, PaymentMeans, TaxRegistration
from service.einvoice import semantic
from service.einvoice.document import CREDIT_NOTE, Document, Line
from tests.domain.builders import check
from tests.einvoice.generate import NOW, SELLER, issued, line, taxed

D = Decimal
C = TaxCategory


def _doc(**invoice: Any) -> Document:
    return semantic.from_invoice(issued(**invoice))


def _means(account_number: str, routing_code: str) -> Any:
    return replace(SELLER, payment_means=PaymentMeans(account_number=account_number, routing_code=routing_code))


def _seller(**attrs: Any) -> Any:
    return replace(SELLER, **attrs)


# (case, invoice arguments, expected Document values at paths)
INVOICE_RULES: list[tuple[str, dict[str, Any], dict[str, object]]] = [
    (
        "totals_of_one_line",
        {},
        {
            "type_code": "380",
            "number": "INV-00001",
            "issue_date": date(2026, 3, 2),
            "due_date": date(2026, 4, 1),
            "line_total": "100.00",
            "tax_exclusive_total": "100.00",
            "tax_total": "19.00",
            "grand_total": "119.00",
            "due_payable": "119.00",
            "allowance_total": None,
            "charge_total": None,
            "paid_amount": None,
            "rounding_amount": None,
        },
    ),
    ("line_id_is_its_position", {"lines": [line(id="uuid-a"), line(id="uuid-b")]}, {"lines[1].id": "2"}),
    ("unit_defaults_to_one_C62", {}, {"lines[0].unit_code": "C62"}),
    ("unit_kept", {"lines": [line(unit_of_measure="HUR")]}, {"lines[0].unit_code": "HUR"}),
    (
        "item_name_and_seller_id",
        {"lines": [line(sku="A-1")]},
        {"lines[0].name": "Item", "lines[0].seller_item_id": "A-1"},
    ),
    (
        "line_discount_by_percentage_is_a_BG27_with_base",
        {"lines": [line("2", "50.00", discount_percentage=D(10))]},
        {
            "lines[0].net_amount": "90.00",
            "lines[0].net_price": "50.00",
            "lines[0].allowances_charges[0].charge": False,
            "lines[0].allowances_charges[0].amount": "10.00",
            "lines[0].allowances_charges[0].base_amount": "100.00",
            "lines[0].allowances_charges[0].percentage": D(10),
            "lines[0].allowances_charges[0].reason_code": "95",
            "line_total": "90.00",
        },
    ),
    (
        "line_discount_amount_has_no_percentage",
        {"lines": [line(discount_amount=D("3.00"))]},
        {"lines[0].allowances_charges[0].percentage": None, "lines[0].allowances_charges[0].base_amount": None},
    ),
    (
        "line_charge_is_a_BG28_with_ZZZ_without_reason",
        {"lines": [line(charge_amount=D("5.00"))]},
        {
            "lines[0].net_amount": "105.00",
            "lines[0].allowances_charges[0].charge": True,
            "lines[0].allowances_charges[0].reason_code": "ZZZ",
        },
    ),
    (
        "line_charge_reason_kept",
        {"lines": [line(charge_amount=D("5.00"), charge_reason="Packaging")]},
        {"lines[0].allowances_charges[0].reason": "Packaging", "lines[0].allowances_charges[0].reason_code": ""},
    ),
    (
        "allowance_and_charge_totals",
        {
            "allowance_charges": [
                AllowanceCharge(amount=D("10.00"), tax_category=C.S, tax_rate=D(19)),
                AllowanceCharge(charge=True, amount=D("4.00"), reason="Freight", tax_category=C.S, tax_rate=D(19)),
            ]
        },
        {
            "line_total": "100.00",
            "allowance_total": "10.00",
            "charge_total": "4.00",
            "tax_exclusive_total": "94.00",
            "tax_total": "17.86",
            "grand_total": "111.86",
            "vat_breakdown[0].taxable_amount": "94.00",
            "allowances_charges[0].reason_code": "95",
            "allowances_charges[0].category": "S",
            "allowances_charges[1].reason": "Freight",
            "allowances_charges[1].reason_code": "",
        },
    ),
    (
        "allowance_percentage_base_is_the_lines",
        {"allowance_charges": [AllowanceCharge(percentage=D(5), tax_category=C.S, tax_rate=D(19))]},
        {"allowances_charges[0].base_amount": "100.00", "allowances_charges[0].amount": "5.00"},
    ),
    (
        "cash_rounding_is_BT114",
        {"currency": "CHF", "lines": [line("1", "10.03", taxed("8.1"))], "cash_rounding_increment": D("0.05")},
        {"grand_total": "10.84", "rounding_amount": "0.01", "due_payable": "10.85"},
    ),
    (
        "exempt_breakdown_without_reason_gets_the_standard_one",
        {"allowance_charges": [AllowanceCharge(charge=True, amount=D("1.00"), tax_category=C.AE, tax_rate=D(0))]},
        {
            "vat_breakdown[1].category": "AE",
            "vat_breakdown[1].exemption_reason": "Reverse charge",
            "vat_breakdown[1].exemption_reason_code": "VATEX-EU-AE",
        },
    ),
    (
        "exempt_breakdown_keeps_its_items_reason",
        {"lines": [line(item=taxed("0", C.E, "Article 132"))]},
        {"vat_breakdown[0].exemption_reason": "Article 132", "vat_breakdown[0].exemption_reason_code": ""},
    ),
    (
        "outside_scope_has_no_rate",
        {"lines": [line(item=taxed(category=C.O, code="VATEX-EU-O"))], "profile": _seller(tax_registrations=[])},
        {"lines[0].rate": None, "vat_breakdown[0].rate": None, "seller.vat_id": "", "tax_total": "0.00"},
    ),
    (
        "iban_is_sepa_credit_transfer_58",
        {},
        {
            "payment_means_code": "58",
            "payment_account": "DE89370400440532013000",
            "payment_service_provider": "COBADEFFXXX",
            "remittance_information": "INV-00001",
        },
    ),
    (
        "account_number_is_credit_transfer_30",
        {"profile": _means(account_number="12345678", routing_code="40-47-84")},
        {"payment_means_code": "30", "payment_account": "12345678"},
    ),
    (
        "no_payment_means_no_code",
        {"profile": replace(SELLER, payment_means=None)},
        {"payment_means_code": "", "payment_account": ""},
    ),
    (
        "seller_email_is_electronic_address_EM",
        {},
        {
            "seller.electronic_address": "hans@lieferant.de",
            "seller.electronic_scheme": "EM",
            "seller.contact_email": "hans@lieferant.de",
        },
    ),
    (
        "seller_ids",
        {"profile": _seller(tax_registrations=[TaxRegistration("FC", "201/113"), TaxRegistration("VAT", "DE1")])},
        {"seller.vat_id": "DE1", "seller.tax_id": "201/113", "seller.legal_id": "HRB 12345"},
    ),
    (
        "buyer_identifier_is_the_customer",
        {"customer_name": "Fallback"},
        {"buyer.identifier": "cust-1", "buyer.name": "Kunden AG Mitte", "buyer.electronic_address": ""},
    ),
    ("note_and_references", {"note": "Hi", "buyer_reference": "LW-1"}, {"notes": ["Hi"], "buyer_reference": "LW-1"}),
]


@pytest.mark.parametrize(("invoice", "expect"), [pytest.param(*r[1:], id=r[0]) for r in INVOICE_RULES])
def test_invoice_terms(invoice: dict[str, Any], expect: dict[str, object]) -> None:
    check(_doc(**invoice), expect)


def test_buyer_name_falls_back_to_the_customer_name() -> None:
    inv = issued(customer_name="ACME Ltd")
    inv.buyer = None
    check(semantic.from_invoice(inv), {"buyer.name": "ACME Ltd", "buyer.identifier": "cust-1"})


def test_paid_and_credited_are_BT113_and_the_rest_is_due() -> None:
    """BR-CO-16: BT-115 = BT-112 - BT-113 + BT-114, with the payments and credit memos in BT-113."""
    inv = issued()
    lifecycle.record_payment(inv, PaymentAllocation(amount=D("40.00"), currency="EUR"), NOW)
    note = credit_notes.draft(inv, [CreditNoteLine(unit_amount=D("10.00"), tax_rate=D(19))], False, Parts(), NOW)
    credit_notes.issue(note, inv, Issued(), "CN-1", NOW)
    check(semantic.from_invoice(inv), {"paid_amount": "51.90", "due_payable": "67.10", "grand_total": "119.00"})


def test_a_draft_needs_an_issue_date() -> None:
    inv = issued()
    inv.issue_date = None
    with pytest.raises(InvalidArgument) as info:
        semantic.from_invoice(inv)
    assert info.value.violations[0].field == "issue_date"
    assert semantic.from_invoice(inv, today=date(2026, 5, 1)).issue_date == date(2026, 5, 1)


# -- credit notes -------------------------------------------------------------------------------

MIXED = [line("1", "100.00", taxed("19")), line("1", "50.00", taxed("7")), line("1", "20.00", taxed("0", C.Z))]


def _note_line(unit: str, ref: str = "", rate: str | None = None) -> CreditNoteLine:
    return CreditNoteLine(unit_amount=D(unit), invoice_line_item_id=ref, tax_rate=None if rate is None else D(rate))


# (case, invoice lines, note lines, expected (category, rate) of each BG-25)
NOTE_CATEGORIES: list[tuple[str, list[Any], list[CreditNoteLine], list[tuple[str, Decimal | None]]]] = [
    ("the_corrected_line", MIXED, [_note_line("5.00", "line-2", "0")], [("Z", D(0))]),
    ("the_corrected_line_at_another_rate", MIXED, [_note_line("5.00", "line-2", "7")], [("S", D(7))]),
    ("same_rate_on_the_invoice", MIXED, [_note_line("5.00", rate="7")], [("S", D(7))]),
    ("positive_rate_not_on_the_invoice", MIXED, [_note_line("5.00", rate="10")], [("S", D(10))]),
    ("zero_rate_not_on_the_invoice", [line()], [_note_line("5.00", rate="0")], [("Z", D(0))]),
    ("no_rate_one_category", [line(item=taxed("0", C.E, "x"))], [_note_line("5.00")], [("E", D(0))]),
    ("no_rate_untaxed_of_several", MIXED, [_note_line("5.00")], [("Z", D(0))]),
]


@pytest.mark.parametrize(("lines", "note_lines", "want"), [pytest.param(*r[1:], id=r[0]) for r in NOTE_CATEGORIES])
def test_credit_note_line_categories(
    lines: list[Any], note_lines: list[CreditNoteLine], want: list[tuple[str, Decimal | None]]
) -> None:
    inv = issued(lines=lines)
    note = credit_notes.draft(inv, note_lines, False, Parts(), NOW)
    doc = semantic.from_credit_note(note, inv, today=date(2026, 3, 3))
    assert [(x.category, x.rate) for x in doc.lines] == want


def test_whole_invoice_note_with_allowances_splits_per_vat_row() -> None:
    """A whole-invoice note of an invoice whose lines do not make its total is one line of the domain; the
    document gives it one BG-25 per VAT row, so every row keeps its category and BR-CO-14 holds."""
    allowance = AllowanceCharge(amount=D("10.00"), tax_category=C.S, tax_rate=D(19))
    inv = issued(lines=MIXED, allowance_charges=[allowance])
    note = credit_notes.draft(inv, [], True, Parts(), NOW)
    assert len(note.lines) == 1
    credit_notes.issue(note, inv, Issued(), "CN-1", NOW)
    doc = semantic.from_credit_note(note, inv)
    assert [(x.category, x.rate, x.net_amount) for x in doc.lines] == [
        ("S", D(19), D("90.00")),
        ("S", D(7), D("50.00")),
        ("Z", D(0), D("20.00")),
    ]
    check(
        doc,
        {
            "type_code": CREDIT_NOTE,
            "number": "CN-1",
            "preceding_invoice": "INV-00001",
            "preceding_invoice_date": date(2026, 3, 2),
            "tax_total": "20.60",
            "grand_total": "180.60",
            "paid_amount": "180.60",  # issued: settled by the credit memo
            "due_payable": "0.00",
            "seller.vat_id": "DE123456789",
            "payment_means_code": "58",
        },
    )
    assert sum(x.tax_amount for x in doc.vat_breakdown) == doc.tax_total


def test_copied_discounted_line_carries_its_discount() -> None:
    inv = issued(lines=[line("2", "50.00", discount_amount=D("10.00"))])
    note = credit_notes.draft(inv, [], True, Parts(), NOW)
    doc = semantic.from_credit_note(note, inv, today=date(2026, 3, 3))
    check(
        doc,
        {
            "lines[0].net_amount": "90.00",
            "lines[0].net_price": "50.00",
            "lines[0].allowances_charges[0].amount": "10.00",
            "due_payable": "107.10",
            "paid_amount": None,
        },
    )


# -- document -> canonical ----------------------------------------------------------------------


def test_to_canonical_invoice() -> None:
    inv = issued(
        currency="CHF",
        lines=[line("1", "10.04", taxed("8.1"), discount_amount=D("1.00"), charge_amount=D("0.50"))],
        cash_rounding_increment=D("0.05"),
    )
    assert inv.seller is not None
    inv.seller.contact = Contact("", "billing@lieferant.de", "")
    lifecycle.record_payment(inv, PaymentAllocation(amount=D("3.00"), currency="CHF"), NOW)
    got = semantic.to_canonical(semantic.from_invoice(inv))
    assert got.credit_note is None
    out = got.invoice
    check(
        out,
        {
            "invoice_number": "INV-00001",
            "issue_date": datetime(2026, 3, 2, tzinfo=UTC),
            "customer_id": "cust-1",
            "customer_name": "Kunden AG Mitte",
            "cash_rounding_increment": "0.05",
            "cash_rounding_amount": "-0.01",
            "status": Status.PARTIALLY_PAID,
            "amount_due": "7.30",
            "lines[0].id": "",
            "lines[0].discount_amount": "1.00",
            "lines[0].charge_amount": "0.50",
            "lines[0].charge_reason_code": "ZZZ",
            "lines[0].sub_total": "9.54",
            "lines[0].unit_of_measure": "C62",
            "lines[0].taxation_items[0].tax_category": C.S,
            "seller.tax_registrations[0].id": "DE123456789",
            "seller.contact.email": "billing@lieferant.de",
            "payment_means.iban": "DE89370400440532013000",
            "payment_means.bic": "COBADEFFXXX",
        },
    )
    assert [(a.applied_amount, a.source) for a in out.allocations] == [(D("3.00"), AllocationSource.IMPORTED)]


def test_to_canonical_account_that_is_no_iban() -> None:
    inv = issued(profile=_means(account_number="12345678", routing_code="40-47-84"))
    out = semantic.to_canonical(semantic.from_invoice(inv)).invoice
    check(out, {"payment_means.iban": "", "payment_means.account_number": "12345678"})


def test_to_canonical_row_reason_goes_to_every_item_of_its_row() -> None:
    inv = issued(lines=[line(item=taxed("0", C.K, code="VATEX-EU-IC")), line(item=taxed("0", C.K, "Intra"))])
    inv.delivery = None
    doc = semantic.from_invoice(inv)
    items = [x.taxation_items[0] for x in semantic.to_canonical(doc).invoice.lines]
    assert {(i.exemption_reason, i.exemption_reason_code) for i in items} == {("Intra", "VATEX-EU-IC")}


def test_to_canonical_credit_note() -> None:
    inv = issued(lines=MIXED)
    note = credit_notes.draft(inv, [_note_line("5.00", "line-1", "7")], False, Parts(), NOW, reason="Damaged")
    credit_notes.issue(note, inv, Issued(), "CN-7", NOW)
    got = semantic.to_canonical(semantic.from_credit_note(note, inv))
    assert got.credit_note is not None
    check(
        got.credit_note,
        {
            "credit_note_number": "CN-7",
            "invoice_number": "INV-00001",
            "invoice_issue_date": datetime(2026, 3, 2, tzinfo=UTC),
            "reason": "Damaged",
            "total_amount": "5.35",
            "total_tax_amount": "0.35",
            "lines[0].tax_rate": D(7),
            "lines[0].tax_amount": "0.35",
            "lines[0].id": "",
        },
    )
    assert got.credit_note.status.value == "ISSUED"
    ref = got.credit_note.lines[0].invoice_line_item_id
    assert [x.taxation_items[0].tax_category for x in got.invoice.lines if x.id == ref] == [C.S]


def test_to_canonical_keeps_every_note() -> None:
    doc = semantic.from_invoice(issued())
    doc.notes = ["first", "second"]
    got = semantic.to_canonical(doc)
    assert (got.invoice.note, got.notes) == ("first\nsecond", ["first", "second"])


@pytest.mark.parametrize(("mode", "tax"), [(TaxMode.LINE, "0.03"), (TaxMode.DOCUMENT_PER_RATE, "0.02")])
def test_imported_modes_follow_the_breakdown_rows(mode: TaxMode, tax: str) -> None:
    """Three lines of 0.05 at 10 %: 0.01 tax each (LINE) or 0.02 for the row (per rate); the import takes
    the mode whose pricing gives the document's rows."""
    doc = _doc(lines=[line("1", "0.05", taxed("10")) for _ in range(3)], tax_mode=mode)
    assert doc.vat_breakdown[0].tax_amount == D(tax)
    imported = semantic.to_canonical(doc).invoice
    assert (imported.tax_mode, imported.rounding_mode) == (mode, Rounding.HALF_UP)


@pytest.mark.parametrize(
    ("price", "base", "unit"),
    [("10.00", None, "10.00"), ("10.00", "1", "10.00"), ("10.00", "100", "0.1"), ("2.50", "4", "0.625")],
)
def test_a_price_per_base_quantity_becomes_a_price_per_unit(price, base, unit):
    line = Line("1", Decimal(200), "C62", Decimal("20.00"), Decimal(price), "Screws", "S", Decimal(19))
    line.price_base_quantity = None if base is None else Decimal(base)
    assert semantic.unit_price(line, 0) == Decimal(unit)


@pytest.mark.parametrize("base", ["3", "0", "-1"])
def test_a_price_that_does_not_divide_by_its_base_quantity_is_refused(base):
    line = Line("1", Decimal(3), "C62", Decimal("10.00"), Decimal("10.00"), "Box", "S", Decimal(19))
    line.price_base_quantity = Decimal(base)
    with pytest.raises(InvalidArgument) as info:
        semantic.unit_price(line, 2)
    assert info.value.violations[0].field == "lines[2].price_base_quantity (BT-149)"
