"""Credit note and refund rules (service/domain/credit_notes.py), table-driven, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from service.domain import credit_notes as notes
from service.domain.credit_notes import CreditNoteLine, CreditNoteStatus, Issued, Parts
from service.domain.errors import FailedPrecondition, InvalidArgument, Violations
from service.domain.lifecycle import check_invariants
from service.domain.models import (
    CreditMemo,
    CreditMemoReason,
    Invoice,
    PaymentStatus,
    Status,
    TaxationItem,
    TaxCategory,
)
from service.domain.totals import price_invoice
from tests.domain.builders import NOW, canceled, draft, line, new, paid, partially_paid, submitted, voided

D = Decimal


def note_for(inv: Invoice, unit: str = "10", parts: Parts | None = None, rate: str | None = None) -> notes.CreditNote:
    line = CreditNoteLine(unit_amount=D(unit), tax_rate=D(rate) if rate else None)
    n = notes.draft(inv, [line], False, parts or Parts(), NOW)
    n.id = "cn-1"
    return n


# (name, invoice, note unit amount, parts, earlier notes) -> (credit, balance, refund, amount_due, status)
ISSUE = [
    (
        "partial credit of an open invoice",
        submitted,
        "30",
        Parts(),
        Issued(),
        ("30.00", "0.00", "0.00", "70.00", Status.PARTIALLY_PAID),
    ),
    (
        "full credit of an open invoice",
        submitted,
        "100",
        Parts(),
        Issued(),
        ("100.00", "0.00", "0.00", "0.00", Status.PAID),
    ),
    (
        "default split on a partly paid one",
        partially_paid,
        "80",
        Parts(),
        Issued(),
        ("60.00", "20.00", "0.00", "0.00", Status.PAID),
    ),
    ("paid invoice to the balance", paid, "25", Parts(), Issued(), ("0.00", "25.00", "0.00", "0.00", Status.PAID)),
    (
        "paid invoice refunded",
        paid,
        "25",
        Parts(refund=D("25")),
        Issued(),
        ("0.00", "0.00", "25.00", "0.00", Status.PAID),
    ),
    (
        "after earlier notes, what is left",
        partially_paid,
        "10",
        Parts(),
        Issued(D("90"), D("0")),
        ("10.00", "0.00", "0.00", "50.00", Status.PARTIALLY_PAID),
    ),
]


@pytest.mark.parametrize(
    ("build", "unit", "parts", "before", "expected"), [pytest.param(*r[1:], id=r[0]) for r in ISSUE]
)
def test_issue(
    build: Callable[[], Invoice], unit: str, parts: Parts, before: Issued, expected: tuple[str, ...]
) -> None:
    inv = build()
    n = note_for(inv, unit, parts)
    notes.issue(n, inv, before, "CN-000001", NOW)
    credit, balance, refund, due, status = expected
    assert (n.credit_amount, n.balance_amount, n.refund_amount) == (D(credit), D(balance), D(refund))
    assert (inv.amount_due, inv.status, n.status, n.credit_note_number) == (
        D(due),
        status,
        CreditNoteStatus.ISSUED,
        "CN-000001",
    )
    check_invariants(inv)
    if n.credit_amount:
        assert inv.credit_memos[-1].credit_note_id == "cn-1" and inv.credit_memos[-1].total_amount == n.credit_amount


# (name, invoice, unit, parts, earlier notes) -> the field the refusal names
REFUSED = [
    ("beyond the total", submitted, "100.01", Parts(), Issued(), "total_amount"),
    ("beyond what earlier notes left", submitted, "20", Parts(), Issued(D("90")), "total_amount"),
    ("credit beyond amount due", partially_paid, "70", Parts(credit=D("70")), Issued(), "credit_amount"),
    ("balance beyond what was paid", partially_paid, "50", Parts(balance=D("50")), Issued(), "balance_amount"),
    ("refund beyond what is kept", paid, "30", Parts(refund=D("30")), Issued(D("80"), D("80")), "total_amount"),
    ("balance already given back", paid, "30", Parts(balance=D("30")), Issued(D("0"), D("80")), "balance_amount"),
]


@pytest.mark.parametrize(
    ("build", "unit", "parts", "before", "field"), [pytest.param(*r[1:], id=r[0]) for r in REFUSED]
)
def test_issue_refused(build: Callable[[], Invoice], unit: str, parts: Parts, before: Issued, field: str) -> None:
    inv = build()
    due = inv.amount_due
    n = note_for(inv, unit, parts)
    with pytest.raises(FailedPrecondition, match=field):
        notes.issue(n, inv, before, "CN-000001", NOW)
    assert inv.amount_due == due and not inv.credit_memos and n.status is CreditNoteStatus.DRAFT


@pytest.mark.parametrize("build", [draft, voided, canceled])
def test_only_finalized_invoices_are_credited(build: Callable[[], Invoice]) -> None:
    with pytest.raises(FailedPrecondition):
        note_for(build())


def test_lines_are_priced_at_the_currency() -> None:
    n = note_for(submitted(), "33.33", rate="21")
    assert (n.sub_total, n.total_tax_amount, n.total_amount) == (D("33.33"), D("7.00"), D("40.33"))
    with pytest.raises(InvalidArgument, match="unit_amount"):
        note_for(submitted(), "1.001")
    with pytest.raises(InvalidArgument, match="credit_amount"):
        note_for(submitted(), "10", Parts(credit=D("5")))


def test_void_drafts_only() -> None:
    inv = submitted()
    n = note_for(inv)
    notes.issue(n, inv, Issued(), "CN-1", NOW)
    with pytest.raises(FailedPrecondition):
        notes.void(n, NOW)
    d = note_for(inv)
    notes.void(d, NOW)
    assert d.status is CreditNoteStatus.VOID


def test_refund_payment_statuses_and_limits() -> None:
    inv = paid()
    alloc = inv.allocations[0]
    alloc.id = "a1"
    assert notes.refund_payment(inv, "a1", D("30"), D(0)).refunded_amount == D("30")
    assert (inv.amount_refunded, inv.payment_status, inv.amount_due) == (
        D("30"),
        PaymentStatus.PARTIALLY_REFUNDED,
        D("0.00"),
    )
    with pytest.raises(FailedPrecondition, match="amount"):
        notes.refund_payment(inv, "a1", D("70.01"), D(0))
    with pytest.raises(FailedPrecondition, match="amount"):  # a note gave 60 back to the balance
        notes.refund_payment(inv, "a1", D("20"), D("60"))
    assert notes.refund_payment(inv, "a1", None, D(0)).refunded_amount == D("100")
    assert inv.payment_status is PaymentStatus.REFUNDED
    check_invariants(inv)
    with pytest.raises(FailedPrecondition):
        notes.refund_payment(voided(), "a1", D("1"), D(0))


def test_memos_without_a_note_count_against_what_is_left() -> None:
    """Imported history: a credit memo that no note issued still credited the invoice."""
    inv = partially_paid()  # 100 total, 40 paid
    inv.credit_memos.append(CreditMemo(reason=CreditMemoReason.WRITE_OFF, total_amount=D("50.00"), currency="USD"))
    with pytest.raises(FailedPrecondition, match="total_amount"):
        notes.issue(note_for(inv, "50.01"), inv, Issued(), "CN-1", NOW)


def _taxed_invoice() -> Invoice:
    """Three lines of 100 EUR: S 19%, E (exempt, with its reason) and S 7%, priced by the domain rules."""
    exempt = TaxationItem(
        tax_rate=D("0"), tax_category=TaxCategory.E, exemption_reason="Education", exemption_reason_code="VATEX-EU-132"
    )
    inv = new(
        currency="EUR",
        lines=[
            line(id="l1", taxation_items=[TaxationItem(tax_rate=D("19"), tax_category=TaxCategory.S)]),
            line(id="l2", taxation_items=[exempt]),
            line(id="l3", taxation_items=[TaxationItem(tax_rate=D("7"), tax_category=TaxCategory.S)]),
        ],
    )
    v = Violations()
    price_invoice(inv, v)
    assert not v, v
    return inv


def _note_line(sub_total: str, tax: str, rate: str | None = None, corrects: str = "") -> CreditNoteLine:
    return CreditNoteLine(
        unit_amount=D(sub_total),
        invoice_line_item_id=corrects,
        tax_rate=D(rate) if rate is not None else None,
        sub_total=D(sub_total),
        tax_amount=D(tax),
        total_amount=D(sub_total) + D(tax),
    )


Row = tuple[str, Decimal | None, str, str, str]  # category, rate, taxable, tax, exemption code


@pytest.mark.parametrize(
    ("lines", "expect"),
    [
        pytest.param([_note_line("50.00", "9.50", corrects="l1")], [("S", D("19"), "50.00", "9.50", "")],
                     id="a_line_takes_the_category_of_the_line_it_corrects"),
        pytest.param([_note_line("10.00", "1.90", corrects="l1"), _note_line("20.00", "3.80", "19")],
                     [("S", D("19"), "30.00", "5.70", "")], id="one_row_per_category_and_rate"),
        pytest.param([_note_line("10.00", "0.70", "7"), _note_line("10.00", "1.90", "19")],
                     [("S", D("7"), "10.00", "0.70", ""), ("S", D("19"), "10.00", "1.90", "")],
                     id="rows_in_the_order_first_seen"),
        pytest.param([_note_line("40.00", "0.00", "0", corrects="l2")],
                     [("E", D("0"), "40.00", "0.00", "VATEX-EU-132")], id="exempt_keeps_the_invoice_reason"),
        pytest.param([_note_line("40.00", "0.00")], [("E", D("0"), "40.00", "0.00", "VATEX-EU-132")],
                     id="untaxed_line_without_rate_takes_the_untaxed_category"),
        pytest.param([_note_line("10.00", "0.50", "5")], [("S", D("5"), "10.00", "0.50", "")],
                     id="a_rate_the_invoice_lacks_is_standard"),
        pytest.param([_note_line("10.00", "1.90", "19", corrects="l3")], [("S", D("19"), "10.00", "1.90", "")],
                     id="the_notes_own_rate_wins_over_the_corrected_line"),
        pytest.param([_note_line("300.00", "26.00")],
                     [("S", D("19"), "100.00", "19.00", ""), ("E", D("0"), "100.00", "0.00", "VATEX-EU-132"),
                      ("S", D("7"), "100.00", "7.00", "")], id="a_whole_invoice_line_splits_by_the_invoice_rows"),
    ],
)  # fmt: skip
def test_a_credit_note_tax_breakdown_groups_its_lines_as_the_invoice_does(
    lines: list[CreditNoteLine], expect: list[Row]
) -> None:
    note = notes.CreditNote(currency="EUR", lines=lines)
    rows = notes.note_tax_breakdown(note, _taxed_invoice())
    got = [
        (r.category, r.rate, format(r.taxable_amount, "f"), format(r.tax_amount, "f"), r.exemption_reason_code)
        for r in rows
    ]
    assert got == expect
    assert sum((r.tax_amount for r in rows), D(0)) == sum((ln.tax_amount for ln in lines), D(0))


def test_a_credit_note_without_its_invoice_is_grouped_by_rate() -> None:
    """The PDF of a note whose invoice is gone: a positive rate is standard, 0 is zero-rated."""
    note = notes.CreditNote(currency="EUR", lines=[_note_line("10.00", "1.90", "19"), _note_line("5.00", "0.00", "0")])
    rows = notes.note_tax_breakdown(note, Invoice(currency="EUR"))
    assert [(r.category, r.rate, r.taxable_amount, r.tax_amount) for r in rows] == [
        ("S", D("19"), D("10.00"), D("1.90")),
        ("Z", D("0"), D("5.00"), D("0.00")),
    ]
