"""Every rule of service/domain/lifecycle/ as a table: each transition from every state, allowed or refused,
and the preconditions, edits, payments and invariants (PRODUCT section 5). Pure: no I/O.

Rounding, exponents, tax modes, FX conversion and write-off/reversal amounts per currency are in
tests/test_money_rules.py; here each lifecycle rule gets its allowed and its refused case.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from service.domain import lifecycle
from service.domain.errors import Aborted, DomainError, FailedPrecondition, InvalidArgument, Violations
from service.domain.models import (
    AllocationSource,
    CreditMemo,
    CreditMemoReason,
    Invoice,
    PaymentAllocation,
    PaymentStatus,
    Status,
    TaxationItem,
    VoidReason,
)
from service.domain.money import MoneyDefaults, Rounding, TaxMode
from tests.domain.builders import (
    LATER,
    NOW,
    STATES,
    D,
    check,
    draft,
    line,
    new,
    paid,
    partially_paid,
    pay,
    raises_on,
    state_of,
    submitted,
)


def _vat(line_item_id: str = "l1", rate: str = "10") -> TaxationItem:
    return TaxationItem(line_item_id=line_item_id, tax_rate=D(rate), name="VAT")


# -- every transition from every state ---------------------------------------------------------------------

Action = Callable[[Invoice], object]
TRANSITIONS: list[tuple[str, Action, dict[str, str]]] = [
    # (rule, action, {state it is allowed in: the state it leads to}); every other state refuses it.
    ("finalize", lambda inv: lifecycle.finalize(inv, "INV-9", LATER), {"DRAFT": "SUBMITTED"}),
    ("record_payment", lambda inv: pay(inv, "10"),
     {"SUBMITTED": "PARTIALLY_PAID", "PARTIALLY_PAID": "PARTIALLY_PAID"}),
    ("attempt_payment_from_credit", lambda inv: lifecycle.attempt_payment(inv, D("10"), LATER),
     {"SUBMITTED": "PARTIALLY_PAID", "PARTIALLY_PAID": "PARTIALLY_PAID"}),
    ("set_payment_status_pending",
     lambda inv: lifecycle.set_payment_status(inv, PaymentStatus.PENDING, None, LATER),
     {"SUBMITTED": "SUBMITTED", "PARTIALLY_PAID": "PARTIALLY_PAID"}),
    ("set_payment_status_succeeded_pays_the_rest",
     lambda inv: lifecycle.set_payment_status(inv, PaymentStatus.SUCCEEDED, None, LATER),
     {"SUBMITTED": "PAID", "PARTIALLY_PAID": "PAID", "PAID": "PAID"}),
    ("void", lambda inv: lifecycle.void(inv, LATER), {"SUBMITTED": "VOID_VOIDED", "PARTIALLY_PAID": "VOID_VOIDED"}),
    ("cancel", lambda inv: lifecycle.cancel(inv, LATER), {"DRAFT": "VOID_CANCELED"}),
    ("reverse", lambda inv: lifecycle.reverse(inv, LATER, "", ""), {"SUBMITTED": "VOID_REVERSED"}),
    ("write_off", lambda inv: lifecycle.write_off(inv, LATER, "", ""),
     {"SUBMITTED": "VOID_WRITTEN_OFF", "PARTIALLY_PAID": "VOID_WRITTEN_OFF"}),
    ("recalculate", lifecycle.recalculate, {"DRAFT": "DRAFT"}),
    ("add_taxation_items", lambda inv: lifecycle.add_taxation_items(inv, [_vat()], Violations()), {"DRAFT": "DRAFT"}),
    ("delete", lifecycle.check_deletable, {"DRAFT": "DRAFT", "VOID_CANCELED": "VOID_CANCELED"}),
]  # fmt: skip
MATRIX = [
    pytest.param(action, state, allowed.get(state),
                 id=f"{rule}-from-{state}-{'allowed' if state in allowed else 'refused'}")
    for rule, action, allowed in TRANSITIONS
    for state in STATES
]  # fmt: skip


@pytest.mark.parametrize(("action", "state", "leads_to"), MATRIX)
def test_transition(action: Action, state: str, leads_to: str | None) -> None:
    inv = STATES[state]()
    if leads_to is None:
        before = copy.deepcopy(inv)
        with pytest.raises(FailedPrecondition):
            action(inv)
        assert inv == before  # a refused transition changes nothing
        return
    action(inv)
    assert state_of(inv) == leads_to
    assert lifecycle.invariant_breaches(inv) == []


# -- the rules inside each transition ------------------------------------------------------------------------


@dataclass
class Row:
    id: str
    run: Callable[[], object]  # returns what `expect` is read from
    expect: dict[str, object] = field(default_factory=dict)
    error: type[DomainError] | None = None
    field: str = ""  # the violation's field (InvalidArgument) or violation_type (FailedPrecondition)


def _create(**attrs: Any) -> Callable[[], Invoice]:
    def run() -> Invoice:
        defaults = attrs.pop("defaults", None)
        inv = new(**attrs)
        lifecycle.prepare_new(inv, Violations(), NOW, defaults=defaults)
        return inv

    return run


def _usd(amount: str, currency: str = "USD", rate: str | None = None) -> PaymentAllocation:
    return PaymentAllocation(amount=D(amount), currency=currency, currency_rate=D(rate) if rate else None)


def _then(build: Callable[[], Invoice], act: Callable[[Invoice], object]) -> Callable[[], Invoice]:
    def run() -> Invoice:
        inv = build()
        act(inv)
        return inv

    return run


def _result(build: Callable[[], Invoice], act: Callable[[Invoice], object]) -> Callable[[], object]:
    return lambda: act(build())


CREATE = [
    Row("create_default_is_draft_without_number", _create(),
        {"status": Status.DRAFT, "invoice_number": "", "amount_due": "100.00", "finalize_time": None}),
    Row("create_submitted_is_finalized", _create(status=Status.SUBMITTED),
        {"status": Status.SUBMITTED, "finalize_time": NOW, "amount_due": "100.00"}),
    Row("create_paid_with_full_payment", _create(status=Status.PAID, allocations=[_usd("100")]),
        {"status": Status.PAID, "amount_due": "0.00", "paid_on_date": NOW, "payment_status": PaymentStatus.SUCCEEDED,
         "allocations[0].create_time": NOW}),
    Row("create_partially_paid_with_partial_payment", _create(status=Status.PARTIALLY_PAID, allocations=[_usd("30")]),
        {"status": Status.PARTIALLY_PAID, "amount_due": "70.00"}),
    Row("create_submitted_with_full_payment_becomes_paid", _create(status=Status.SUBMITTED, allocations=[_usd("100")]),
        {"status": Status.PAID}),
    Row("create_paid_refused_when_amounts_say_partially_paid",
        _create(status=Status.PAID, allocations=[_usd("30")]), error=InvalidArgument, field="invoice.status"),
    Row("create_partially_paid_refused_without_payment", _create(status=Status.PARTIALLY_PAID),
        error=InvalidArgument, field="invoice.status"),
    Row("create_void_refused", _create(status=Status.VOID), error=InvalidArgument, field="invoice.status"),
    Row("create_draft_with_payment_refused", _create(allocations=[_usd("10")]),
        error=InvalidArgument, field="invoice.payment_allocations"),
    Row("create_payment_above_total_refused", _create(status=Status.SUBMITTED, allocations=[_usd("100.01")]),
        error=InvalidArgument, field="invoice.payment_allocations[0].allocation.total_amount"),
    Row("create_payments_together_above_total_refused",
        _create(status=Status.SUBMITTED, allocations=[_usd("60"), _usd("60")]),
        error=InvalidArgument, field="invoice.payment_allocations"),
    Row("create_amount_due_sent_and_right", _create(amount_due=D("100")), {"amount_due": "100.00"}),
    Row("create_amount_due_sent_and_wrong_refused", _create(amount_due=D("99")),
        error=InvalidArgument, field="invoice.amount_due"),
    Row("create_more_than_1000_lines_refused", _create(lines=[line() for _ in range(1001)]),
        error=InvalidArgument, field="invoice.line_items"),
    Row("create_more_than_100_payments_refused",
        _create(status=Status.SUBMITTED, allocations=[_usd("0.01") for _ in range(101)]),
        error=InvalidArgument, field="invoice.payment_allocations"),
    Row("create_modes_default_to_the_company",
        _create(defaults=MoneyDefaults(Rounding.HALF_EVEN, TaxMode.DOCUMENT_PER_RATE)),
        {"rounding_mode": Rounding.HALF_EVEN, "tax_mode": TaxMode.DOCUMENT_PER_RATE}),
    Row("create_modes_sent_win_over_the_company",
        _create(rounding_mode=Rounding.DOWN, defaults=MoneyDefaults(Rounding.HALF_EVEN)),
        {"rounding_mode": Rounding.DOWN, "tax_mode": TaxMode.LINE}),
    Row("create_modes_default_half_up_line", _create(), {"rounding_mode": Rounding.HALF_UP, "tax_mode": TaxMode.LINE}),
    Row("create_foreign_payment_needs_a_rate", _create(status=Status.SUBMITTED, allocations=[_usd("10", "EUR")]),
        error=InvalidArgument, field="invoice.payment_allocations[0].allocation.currency_rate"),
    Row("create_foreign_payment_converted", _create(status=Status.SUBMITTED, allocations=[_usd("10", "EUR", "1.1")]),
        {"allocations[0].applied_amount": "11.00", "allocations[0].allocated_on_date": NOW, "amount_due": "89.00"}),
    Row("create_foreign_payment_worth_nothing_refused",
        _create(status=Status.SUBMITTED, allocations=[_usd("0.01", "EUR", "0.1")]),
        error=InvalidArgument, field="invoice.payment_allocations[0].allocation.total_amount"),
]  # fmt: skip

FINALIZE = [
    Row("finalize_assigns_the_number_given", _then(draft, lambda i: lifecycle.finalize(i, "INV-7", LATER)),
        {"invoice_number": "INV-7", "status": Status.SUBMITTED, "finalize_time": LATER, "issue_date": LATER}),
    Row("finalize_keeps_the_clients_number",
        _then(lambda: draft(invoice_number="A-1"), lambda i: lifecycle.finalize(i, "INV-7", LATER)),
        {"invoice_number": "A-1"}),
    Row("finalize_issue_date_given_wins", _then(lambda: draft(issue_date=NOW),
        lambda i: lifecycle.finalize(i, "INV-7", LATER, issue_date=LATER)), {"issue_date": LATER}),
    Row("finalize_keeps_the_drafts_issue_date", _then(lambda: draft(issue_date=NOW),
        lambda i: lifecycle.finalize(i, "INV-7", LATER)), {"issue_date": NOW}),
    Row("finalize_zero_total_is_paid", _then(lambda: draft(lines=[line("1", "0")]),
        lambda i: lifecycle.finalize(i, "INV-7", LATER)),
        {"status": Status.PAID, "paid_on_date": LATER, "payment_status": None}),
    Row("finalize_precondition_checked_before_numbering", _result(submitted, lifecycle.check_can_finalize),
        error=FailedPrecondition, field="LIFECYCLE"),
    Row("finalize_precondition_passes_on_draft", _then(draft, lifecycle.check_can_finalize), {"status": Status.DRAFT}),
]  # fmt: skip

PAYMENTS = [
    Row("payment_partial", _then(submitted, lambda i: pay(i, "40")),
        {"status": Status.PARTIALLY_PAID, "amount_due": "60.00", "paid_on_date": None,
         "allocations[0].create_time": NOW, "allocations[0].allocated_on_date": NOW}),
    Row("payment_exact_pays", _then(submitted, lambda i: pay(i, "100")),
        {"status": Status.PAID, "amount_due": "0.00", "paid_on_date": NOW, "payment_status": PaymentStatus.SUCCEEDED}),
    Row("payment_overpayment_refused", _result(submitted, lambda i: pay(i, "100.01")),
        error=FailedPrecondition, field="OVERPAYMENT"),
    Row("payment_overpayment_after_partial_refused", _result(partially_paid, lambda i: pay(i, "60.01")),
        error=FailedPrecondition, field="OVERPAYMENT"),
    Row("payment_too_many_decimals_refused", _result(submitted, lambda i: pay(i, "1.001")),
        error=InvalidArgument, field="payment_allocation.allocation.total_amount"),
    Row("payment_foreign_without_rate_refused", _result(submitted, lambda i: pay(i, "10", "EUR")),
        error=InvalidArgument, field="payment_allocation.allocation.currency_rate"),
    Row("payment_foreign_worth_nothing_refused", _result(submitted, lambda i: pay(i, "0.01", "EUR", "0.4")),
        error=InvalidArgument, field="payment_allocation.allocation.total_amount"),
    Row("payment_foreign_converted_keeps_rate_and_date", _then(submitted, lambda i: pay(i, "10", "EUR", "1.25")),
        {"allocations[0].applied_amount": "12.50", "allocations[0].amount": "10.00",
         "allocations[0].currency": "EUR", "allocations[0].allocated_on_date": NOW, "amount_due": "87.50"}),
    Row("payment_foreign_overpayment_after_conversion_refused",
        _result(submitted, lambda i: pay(i, "90", "EUR", "1.2")), error=FailedPrecondition, field="OVERPAYMENT"),
    Row("payment_negative_refused", _result(submitted, lambda i: pay(i, "-10")),
        error=InvalidArgument, field="payment_allocation.allocation.total_amount"),
    Row("create_negative_payment_refused", _create(status=Status.SUBMITTED, allocations=[_usd("-10")]),
        error=InvalidArgument, field="invoice.payment_allocations[0].allocation.total_amount"),
    Row("payment_currency_defaults_to_the_invoices", _then(submitted, lambda i: pay(i, "1")),
        {"allocations[0].currency": "USD"}),
]  # fmt: skip

CREDIT = [
    Row("credit_none_refused", _result(submitted, lambda i: lifecycle.attempt_payment(i, D("0"), NOW)),
        error=FailedPrecondition, field="NO_CREDIT"),
    Row("credit_negative_refused", _result(submitted, lambda i: lifecycle.attempt_payment(i, D("-5"), NOW)),
        error=FailedPrecondition, field="NO_CREDIT"),
    Row("credit_below_due_pays_all_of_it", _result(submitted, lambda i: lifecycle.attempt_payment(i, D("30"), NOW)),
        {"amount": "30.00", "applied_amount": "30.00", "source": AllocationSource.CREDIT_BALANCE}),
    Row("credit_above_due_pays_only_the_due",
        _result(partially_paid, lambda i: lifecycle.attempt_payment(i, D("500"), NOW)),
        {"applied_amount": "60.00", "currency": "USD"}),
    Row("credit_above_due_leaves_invoice_paid", _then(submitted, lambda i: lifecycle.attempt_payment(i, D("500"), NOW)),
        {"status": Status.PAID, "amount_due": "0.00", "allocations[0].source": AllocationSource.CREDIT_BALANCE}),
]  # fmt: skip


def _label(status: PaymentStatus) -> Callable[[Invoice], object]:
    return lambda inv: lifecycle.set_payment_status(inv, status, None, NOW)


PAYMENT_STATUS = [
    Row("payment_status_succeeded_with_amount_records_it",
        _then(submitted, lambda i: lifecycle.set_payment_status(i, PaymentStatus.SUCCEEDED, D("25"), NOW)),
        {"status": Status.PARTIALLY_PAID, "amount_due": "75.00", "payment_status": PaymentStatus.SUCCEEDED}),
    Row("payment_status_succeeded_on_paid_only_labels",
        _result(paid, lambda i: {"alloc": lifecycle.set_payment_status(i, PaymentStatus.SUCCEEDED, None, NOW),
                                 "status": i.status, "paid": i.amount_paid}),
        {"alloc": None, "status": Status.PAID, "paid": "100.00"}),
    Row("payment_status_succeeded_amount_too_many_decimals_refused",
        _result(submitted, lambda i: lifecycle.set_payment_status(i, PaymentStatus.SUCCEEDED, D("1.001"), NOW)),
        error=InvalidArgument, field="amount"),
    Row("payment_status_succeeded_above_due_refused",
        _result(submitted, lambda i: lifecycle.set_payment_status(i, PaymentStatus.SUCCEEDED, D("101"), NOW)),
        error=FailedPrecondition, field="OVERPAYMENT"),
    Row("payment_status_overpaid_cannot_be_set",
        _result(submitted, lambda i: lifecycle.set_payment_status(i, PaymentStatus.OVERPAID, None, NOW)),
        error=InvalidArgument, field="payment_status"),
    Row("payment_status_refunded_cannot_be_set",
        _result(paid, lambda i: lifecycle.set_payment_status(i, PaymentStatus.REFUNDED, None, NOW)),
        error=InvalidArgument, field="payment_status"),
    Row("payment_status_amount_only_with_succeeded",
        _result(submitted, lambda i: lifecycle.set_payment_status(i, PaymentStatus.PENDING, D("1"), NOW)),
        error=InvalidArgument, field="amount"),
    *[Row(f"payment_status_{s.value.lower()}_labels_the_collection",
          _then(submitted, _label(s)),
          {"payment_status": s, "status": Status.SUBMITTED, "allocations": []})
      for s in sorted(lifecycle.SETTABLE_PAYMENT_STATUSES)],
]  # fmt: skip

ENDINGS = [
    Row("void_returns_what_was_paid_as_credit",
        _result(partially_paid, lambda i: {"credit": lifecycle.void(i, NOW)}),
        {"credit": "40.00"}),
    Row("void_unpaid_returns_zero", _result(submitted, lambda i: {"credit": lifecycle.void(i, NOW)}),
        {"credit": "0.00"}),
    Row("void_sets_due_zero_and_time", _then(partially_paid, lambda i: lifecycle.void(i, LATER)),
        {"amount_due": "0.00", "void_time": LATER, "void_reason": VoidReason.VOIDED}),
    Row("void_draft_refused_cancel_instead", _result(draft, lambda i: lifecycle.void(i, NOW)),
        error=FailedPrecondition, field="LIFECYCLE"),
    Row("cancel_draft", _then(draft, lambda i: lifecycle.cancel(i, LATER)),
        {"void_reason": VoidReason.CANCELED, "amount_due": "0.00", "void_time": LATER}),
    Row("reverse_issues_memo_for_the_payable_amount",
        _result(submitted, lambda i: lifecycle.reverse(i, NOW, "wrong customer", "")),
        {"reason": CreditMemoReason.REVERSAL, "total_amount": "100.00", "reason_code": "Invoice reversal",
         "comment": "wrong customer", "invoice_id": "inv-1", "create_time": NOW}),
    Row("reverse_keeps_the_reason_code_sent", _result(submitted, lambda i: lifecycle.reverse(i, NOW, "", "R1")),
        {"reason_code": "R1"}),
    Row("reverse_invoice_credited_in_full", _then(submitted, lambda i: lifecycle.reverse(i, NOW, "", "")),
        {"status": Status.VOID, "void_reason": VoidReason.REVERSED, "amount_due": "0.00", "amount_credited": "100.00"}),
    Row("reverse_with_payments_refused", _result(partially_paid, lambda i: lifecycle.reverse(i, NOW, "", "")),
        error=FailedPrecondition, field="LIFECYCLE"),
    Row("write_off_issues_memo_for_the_due", _result(partially_paid, lambda i: lifecycle.write_off(i, NOW, "c", "")),
        {"reason": CreditMemoReason.WRITE_OFF, "total_amount": "60.00", "reason_code": "Write-off", "comment": "c"}),
    Row("write_off_keeps_the_payments", _then(partially_paid, lambda i: lifecycle.write_off(i, NOW, "", "")),
        {"status": Status.VOID, "void_reason": VoidReason.WRITTEN_OFF, "amount_paid": "40.00",
         "amount_credited": "60.00", "amount_due": "0.00"}),
]  # fmt: skip


def _update(build: Callable[[], Invoice], paths: set[str], **patch: Any) -> Callable[[], Invoice]:
    def run() -> Invoice:
        inv = build()
        changed = copy.deepcopy(inv)
        for name, value in patch.items():
            setattr(changed, name, value)
        lifecycle.apply_update(inv, changed, paths, Violations())
        return inv

    return run


def _changing(build: Callable[[], Invoice], paths: set[str], **patch: Any) -> Callable[[], object]:
    def run() -> object:
        inv = build()
        changed = copy.deepcopy(inv)
        for name, value in patch.items():
            setattr(changed, name, value)
        return {"paths": lifecycle.check_update_paths(inv, changed, paths, Violations())}

    return run


EDITS = [
    Row("edit_draft_lines_reprices", _update(draft, {"line_items"}, lines=[line("2", "30")]),
        {"sub_total": "60.00", "total_amount": "60.00", "amount_due": "60.00"}),
    Row("edit_draft_currency_reprices_at_its_exponent", _update(draft, {"currency"}, currency="JPY"),
        {"currency": "JPY", "total_amount": "100", "amount_due": "100"}),
    Row("edit_draft_customer", _update(draft, {"customer_ref"}, customer_id="c2", customer_name="Acme"),
        {"customer_id": "c2", "customer_name": "Acme"}),
    Row("edit_draft_additional_tax_percentage_derives_the_amount",
        _update(draft, {"additional_tax_percentage"}, additional_tax_percentage=D("5")),
        {"additional_tax_amount": "5.00", "total_amount": "105.00"}),
    Row("edit_draft_invoice_discount_reaches_lines_inheriting_it",
        _update(lambda: draft(lines=[line(), line("1", "50", discount_percentage=D("5"))], discount_percentage=D("10")),
                {"discount_percentage"}, discount_percentage=D("20")),
        {"lines[0].discount_amount": "20.00", "lines[1].discount_amount": "2.50", "total_discount": "22.50",
         "total_amount": "127.50"}),
    Row("edit_draft_invoice_discount_removed_from_lines_inheriting_it",
        _update(lambda: draft(discount_percentage=D("10")), {"discount_percentage"}, discount_percentage=None),
        {"lines[0].discount_amount": "0.00", "total_discount": "0.00", "total_amount": "100.00"}),
    Row("edit_draft_amount_due_sent_wrong_refused", _update(draft, {"amount_due"}, amount_due=D("1")),
        error=InvalidArgument, field="invoice.amount_due"),
    Row("edit_draft_total_sent_wrong_refused", _update(draft, {"total_amount"}, total_amount=D("1")),
        error=InvalidArgument, field="invoice.total_amount"),
    Row("edit_unknown_path_refused", _update(draft, {"color"}), error=InvalidArgument, field="update_mask.paths"),
    Row("edit_status_refused", _update(draft, {"status"}, status=Status.PAID),
        error=InvalidArgument, field="update_mask.paths"),
    Row("edit_status_sent_back_unchanged_allowed", _changing(submitted, {"status", "note"}, note="n"),
        {"paths": {"note"}}),
    Row("edit_payments_refused", _update(submitted, {"payment_allocations"}, allocations=[_usd("1")]),
        error=InvalidArgument, field="update_mask.paths"),
    *[Row(f"edit_after_finalize_{p}_allowed", _update(submitted, {p}, **{attr: value}), {attr: value})
      for p, attr, value in [("due_date", "due_date", LATER), ("note", "note", "thanks"),
                             ("metadata", "metadata", {"k": "v"})]],
    Row("edit_after_finalize_keeps_totals", _update(partially_paid, {"note"}, note="n"),
        {"amount_due": "60.00", "status": Status.PARTIALLY_PAID}),
    *[Row(f"edit_after_finalize_{p}_refused", _update(submitted, {p}, **{attr: value}),
          error=FailedPrecondition, field="LIFECYCLE")
      for p, attr, value in [("line_items", "lines", [line("2")]), ("currency", "currency", "EUR"),
                             ("customer_ref", "customer_id", "c2"), ("invoice_number", "invoice_number", "X-1"),
                             ("issue_date", "issue_date", LATER), ("total_amount", "total_amount", D("5"))]],
    Row("edit_after_finalize_unchanged_values_sent_back_allowed",
        _changing(paid, {"line_items", "total_amount", "currency", "note"}, note="n"), {"paths": {"note"}}),
    Row("edit_paid_due_date_allowed", _update(paid, {"due_date"}, due_date=LATER), {"due_date": LATER}),
    Row("edit_void_note_allowed", _update(lambda: STATES["VOID_VOIDED"](), {"note", "metadata"}, note="n",
        metadata={"a": "b"}), {"note": "n", "metadata": {"a": "b"}}),
    Row("edit_void_due_date_refused", _update(lambda: STATES["VOID_VOIDED"](), {"due_date"}, due_date=LATER),
        error=FailedPrecondition, field="LIFECYCLE"),
]  # fmt: skip


def _stale_draft() -> Invoice:
    inv = draft(lines=[line("1", "100", id="l1"), line("2", "5", id="l2")])
    inv.lines[0].sub_total = inv.lines[0].total_amount = D("1.00")  # stored totals gone stale
    inv.sub_total = inv.total_amount = inv.amount_due = D("7.00")
    return inv


def _taxed(items: list[TaxationItem]) -> Callable[[], Invoice]:
    return _then(draft, lambda i: lifecycle.add_taxation_items(i, items, Violations()))


RECALCULATE_AND_TAXES = [
    Row("recalculate_recomputes_stale_totals", _then(_stale_draft, lifecycle.recalculate),
        {"lines[0].sub_total": "100.00", "sub_total": "110.00", "total_amount": "110.00", "amount_due": "110.00"}),
    Row("recalculate_derives_additional_tax_again",
        _then(lambda: _broken(draft, additional_tax_percentage=D("10"), additional_tax_amount=D("1"))(),
              lifecycle.recalculate),
        {"additional_tax_amount": "10.00", "total_amount": "110.00"}),
    Row("taxation_items_reprice_the_draft", _taxed([_vat()]),
        {"lines[0].tax_amount": "10.00", "total_tax_amount": "10.00", "total_amount": "110.00",
         "amount_due": "110.00"}),
    Row("taxation_item_amount_sent_kept", _taxed([TaxationItem(line_item_id="l1", tax_amount=D("3"))]),
        {"total_tax_amount": "3.00"}),
    Row("taxation_item_unknown_line_refused", _taxed([_vat("nope")]),
        error=InvalidArgument, field="taxation_items[0].line_item_id"),
    Row("taxation_items_at_most_5_per_line", _taxed([_vat() for _ in range(6)]),
        error=InvalidArgument, field="taxation_items[5]"),
    Row("taxation_item_amount_too_many_decimals_refused",
        _taxed([TaxationItem(line_item_id="l1", tax_amount=D("0.001"))]),
        error=InvalidArgument, field="taxation_items[0].tax_amount"),
    Row("taxation_item_exempt_amount_too_many_decimals_refused",
        _taxed([TaxationItem(line_item_id="l1", tax_rate=D("1"), exempt_amount=D("0.001"))]),
        error=InvalidArgument, field="taxation_items[0].exempt_amount"),
]  # fmt: skip


def _etag(inv_etag: str) -> Callable[[], object]:
    def run() -> object:
        inv = submitted()
        inv.version = 3
        lifecycle.check_etag(inv, inv_etag)
        return inv

    return run


ETAG_AND_DELETE = [
    Row("etag_empty_skips_the_check", _etag(""), {"version": 3}),
    Row("etag_current_accepted", _etag('W/"3"'), {"version": 3}),
    Row("etag_stale_aborted", _etag('W/"2"'), error=Aborted),
    Row("etag_strong_form_is_not_the_weak_one", _etag('"3"'), error=Aborted),
    Row("delete_voided_refused", _then(lambda: STATES["VOID_VOIDED"](), lifecycle.check_deletable),
        error=FailedPrecondition, field="LIFECYCLE"),
]  # fmt: skip

ROWS = (
    CREATE + FINALIZE + PAYMENTS + CREDIT + PAYMENT_STATUS + ENDINGS + EDITS + RECALCULATE_AND_TAXES + ETAG_AND_DELETE
)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_rule(row: Row) -> None:
    if row.error is not None:
        raises_on(row.error, row.field, row.run)
        return
    result = row.run()
    check(SimpleNamespace(**result) if isinstance(result, dict) else result, row.expect)
    if isinstance(result, Invoice):
        assert lifecycle.invariant_breaches(result) == []


def test_rule_ids_are_unique() -> None:
    assert len({r.id for r in ROWS}) == len(ROWS)


# -- status from amounts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "cash", "due", "status"),
    [
        ("100.00", "0.00", "100.00", Status.SUBMITTED),
        ("100.00", "0.00", "0.01", Status.PARTIALLY_PAID),
        ("100.00", "0.00", "0.00", Status.PAID),
        ("0.00", "0.00", "0.00", Status.PAID),
        ("10.02", "-0.02", "10.00", Status.SUBMITTED),  # payable = total + cash rounding
        ("10.02", "-0.02", "10.02", Status.PARTIALLY_PAID),
    ],
    ids=["nothing_paid_is_submitted", "something_paid_is_partially_paid", "due_zero_is_paid", "zero_total_is_paid",
         "cash_rounded_unpaid_is_submitted", "due_other_than_payable_is_partially_paid"],
)  # fmt: skip
def test_derive_status(total: str, cash: str, due: str, status: Status) -> None:
    inv = Invoice(currency="CHF", total_amount=D(total), cash_rounding_amount=D(cash), amount_due=D(due))
    assert lifecycle.derive_status(inv) is status


# -- invariants (PRODUCT section 5) -------------------------------------------------------------------------------


def _broken(build: Callable[[], Invoice], **attrs: Any) -> Callable[[], Invoice]:
    def run() -> Invoice:
        inv = build()
        for name, value in attrs.items():
            setattr(inv, name, value)
        return inv

    return run


def _with_memo(inv: Invoice) -> Invoice:
    inv.credit_memos.append(CreditMemo(CreditMemoReason.WRITE_OFF, D("5.00"), inv.currency))
    return inv


INVARIANTS: list[tuple[str, Callable[[], Invoice], list[str]]] = [
    *[(f"sound_{name.lower()}", build, []) for name, build in STATES.items()],
    ("sound_written_off", lambda: _then(partially_paid, lambda i: lifecycle.write_off(i, NOW, "", ""))(), []),
    ("sound_reversed", lambda: _then(submitted, lambda i: lifecycle.reverse(i, NOW, "", ""))(), []),
    ("sound_jpy", lambda: submitted(currency="JPY"), []),
    ("sound_chf_cash_rounded", lambda: submitted(currency="CHF", lines=[line("1", "10.02")],
                                                 cash_rounding_increment=D("0.05")), []),
    ("unpriced", _broken(draft, amount_due=None), ["amount_due and total_amount must be set"]),
    ("void_with_amount_due", _broken(STATES["VOID_VOIDED"], amount_due=D("1.00")),
     ["void invoice has amount_due 1.00"]),
    ("due_disagrees_with_payments", _broken(partially_paid, amount_due=D("70.00")),
     ["amount_due 70.00 != payable 100.00 - paid 40.00 - credited 0.00"]),
    ("due_ignores_a_credit_memo", lambda: _with_memo(submitted()),
     ["amount_due 100.00 != payable 100.00 - paid 0.00 - credited 5.00"]),
    ("due_negative", _broken(submitted, amount_due=D("-1.00"), total_amount=D("-1.00")),
     ["amount_due -1.00 outside [0, -1.00]"]),
    ("amount_beyond_the_exponent", _broken(submitted, sub_total=D("100.001")),
     ["sub_total 100.001 is not at the USD exponent"]),
    ("status_disagrees_with_amounts", _broken(submitted, status=Status.PAID),
     ["status PAID disagrees with amounts (due 100.00, total 100.00)"]),
    ("draft_with_payments", lambda: _with_payment_on_draft(), ["draft with payments"]),
]  # fmt: skip


def _with_payment_on_draft() -> Invoice:
    inv = draft()
    inv.allocations.append(PaymentAllocation(amount=D("0.00"), currency="USD", applied_amount=D("0.00")))
    return inv


@pytest.mark.parametrize(("build", "breaches"), [pytest.param(b, e, id=n) for n, b, e in INVARIANTS])
def test_invariant_breaches(build: Callable[[], Invoice], breaches: list[str]) -> None:
    assert lifecycle.invariant_breaches(build()) == breaches
