"""ImportInvoice in every state the status tables list, over a real channel and PostgreSQL: each is stored as
given (no invented payments, invariants hold), exports back to the same vendor with its states and amounts, and
every export re-imports (export -> import -> export gives the same JSON)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service.domain import models as m
from service.domain.lifecycle.invariants import invariant_breaches
from service.vendors import dumps
from tests.helpers import create, finalized, invoice, line, pay, rpc_error, violations

VENDORS = {"codat": svc.VENDOR_CODAT, "flexprice": svc.VENDOR_FLEXPRICE, "zuora": svc.VENDOR_ZUORA}
S, R = pb.InvoiceStatus, pb.VoidReason


def _codat(status: str, total: int, due: int, paid: list[int] | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "invoiceNumber": f"C-{status}-{total}-{due}",
        "customerRef": {"id": "cust-1", "companyName": "Customer One"},
        "currency": "USD",
        "issueDate": "2024-03-01T00:00:00Z",
        "status": status,
        "subTotal": total,
        "totalTaxAmount": 0,
        "totalAmount": total,
        "amountDue": due,
        **kw,
    }
    if paid:
        out["paymentAllocations"] = [
            {"allocation": {"totalAmount": p, "currency": "USD"}, "payment": {"id": f"pay-{i}"}}
            for i, p in enumerate(paid)
        ]
    return out


def _flex(status: str, due: str, paid: str | None, remaining: str | None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "invoice_number": f"F-{status}-{kw.get('payment_status', '')}-{due}",
        "customer_id": "cust-1",
        "currency": "usd",
        "invoice_status": status,
        "line_items": [{"display_name": "Plan", "amount": due, "quantity": "1"}],
        "subtotal": due,
        "total": due,
        "amount_due": due,
    }
    if paid is not None:
        out |= {"amount_paid": paid, "amount_remaining": remaining}
    return out | kw


def _zuora(status: str, amount: int, balance: int, **kw: Any) -> dict[str, Any]:
    return {
        "invoiceNumber": f"Z-{status}-{amount}-{balance}-{kw.get('creditMemoAmount', 0)}",
        "accountId": "acct-1",
        "currency": "USD",
        "invoiceDate": "2024-03-01",
        "status": status,
        "amount": amount,
        "amountWithoutTax": amount,
        "taxAmount": 0,
        "balance": balance,
        "invoiceItems": [{"description": "Service", "amount": amount, "quantity": 1, "unitPrice": amount}],
        **kw,
    }


# (vendor, payload, status, void_reason, amount_paid, amount_credited)
STATES = {
    "codat-draft": ("codat", _codat("Draft", 100, 100), S.INVOICE_STATUS_DRAFT, 0, "0", "0"),
    "codat-submitted": ("codat", _codat("Submitted", 100, 100), S.INVOICE_STATUS_SUBMITTED, 0, "0", "0"),
    "codat-partly-paid": (
        "codat",
        _codat("PartiallyPaid", 100, 60, [40]),
        S.INVOICE_STATUS_PARTIALLY_PAID,
        0,
        "40",
        "0",
    ),
    "codat-paid-no-allocations": (
        "codat",
        _codat("Paid", 100, 0, paidOnDate="2024-03-10T00:00:00Z"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "codat-paid-partly-allocated": (
        "codat",
        _codat("Paid", 100, 0, [30], paidOnDate="2024-03-10T00:00:00Z"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "codat-void": ("codat", _codat("Void", 100, 0), S.INVOICE_STATUS_VOID, R.VOID_REASON_VOIDED, "0", "0"),
    "codat-void-partly-paid": (
        "codat",
        _codat("Void", 100, 0, [40]),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_VOIDED,
        "40",
        "0",
    ),
    "codat-void-amount-due-shown": (
        "codat",
        _codat("Void", 100, 60, [40]),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_VOIDED,
        "40",
        "0",
    ),
    "flexprice-voided-without-remaining": (
        "flexprice",
        _flex("VOIDED", "100.00", None, None),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_VOIDED,
        "0",
        "0",
    ),
    "flexprice-draft": ("flexprice", _flex("DRAFT", "100.00", None, None), S.INVOICE_STATUS_DRAFT, 0, "0", "0"),
    "flexprice-finalized": (
        "flexprice",
        _flex("FINALIZED", "100.00", None, None),
        S.INVOICE_STATUS_SUBMITTED,
        0,
        "0",
        "0",
    ),
    "flexprice-partly-paid": (
        "flexprice",
        _flex("FINALIZED", "100.00", "25.00", "75.00", payment_status="PENDING"),
        S.INVOICE_STATUS_PARTIALLY_PAID,
        0,
        "25",
        "0",
    ),
    "flexprice-succeeded": (
        "flexprice",
        _flex("FINALIZED", "100.00", "100.00", "0.00", payment_status="SUCCEEDED", paid_at="2024-03-05T00:00:00Z"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "flexprice-voided": (
        "flexprice",
        _flex("VOIDED", "100.00", "40.00", "0.00"),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_VOIDED,
        "40",
        "0",
    ),
    "flexprice-overpaid": (
        "flexprice",
        _flex("FINALIZED", "100.00", "120.00", "0.00", payment_status="OVERPAID"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "flexprice-refunded": (
        "flexprice",
        _flex("FINALIZED", "100.00", "100.00", "0.00", payment_status="REFUNDED"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "flexprice-partly-refunded": (
        "flexprice",
        _flex("FINALIZED", "100.00", "100.00", "0.00", payment_status="PARTIALLY_REFUNDED"),
        S.INVOICE_STATUS_PAID,
        0,
        "100",
        "0",
    ),
    "flexprice-with-tax": (
        "flexprice",
        _flex("FINALIZED", "110.00", None, None, subtotal="100.00", total="110.00", total_tax="10.00")
        | {"line_items": [{"display_name": "Plan", "amount": "100.00", "quantity": "1"}]},
        S.INVOICE_STATUS_SUBMITTED,
        0,
        "0",
        "0",
    ),
    "zuora-draft": ("zuora", _zuora("Draft", 100, 100), S.INVOICE_STATUS_DRAFT, 0, "0", "0"),
    "zuora-posted": ("zuora", _zuora("Posted", 100, 100), S.INVOICE_STATUS_SUBMITTED, 0, "0", "0"),
    "zuora-posted-partly-paid": (
        "zuora",
        _zuora("Posted", 100, 60, paymentAmount=40),
        S.INVOICE_STATUS_PARTIALLY_PAID,
        0,
        "40",
        "0",
    ),
    "zuora-canceled": ("zuora", _zuora("Canceled", 100, 0), S.INVOICE_STATUS_VOID, R.VOID_REASON_CANCELED, "0", "0"),
    "zuora-canceled-balance-shown": (
        "zuora",
        _zuora("Canceled", 100, 100),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_CANCELED,
        "0",
        "0",
    ),
    "zuora-reversed": (
        "zuora",
        _zuora("Posted", 100, 0, creditMemoAmount=100),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_REVERSED,
        "0",
        "100",
    ),
    "zuora-written-off": (
        "zuora",
        _zuora("Posted", 100, 0, paymentAmount=40, creditMemoAmount=60),
        S.INVOICE_STATUS_VOID,
        R.VOID_REASON_WRITTEN_OFF,
        "40",
        "60",
    ),
    "zuora-partial-credit-memo": (
        "zuora",
        _zuora("Posted", 100, 70, creditMemoAmount=30),
        S.INVOICE_STATUS_PARTIALLY_PAID,
        0,
        "0",
        "30",
    ),
}


def _import(stub: Any, company: str, vendor: str, payload: Any) -> pb.Invoice:
    text = payload if isinstance(payload, str) else dumps(payload)
    req = svc.ImportInvoiceRequest(company_id=company, vendor=VENDORS[vendor], invoice_json=text)
    invoice: pb.Invoice = stub.ImportInvoice(req).invoice
    return invoice


def _export(stub: Any, company: str, vendor: str, invoice_id: str) -> str:
    req = svc.ExportInvoiceRequest(company_id=company, invoice_id=invoice_id, vendor=VENDORS[vendor])
    text: str = stub.ExportInvoice(req).invoice_json
    return text


def _load(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return data


def _equal(a: Any, b: Any) -> bool:
    """`a` carries every field of `b` with its value (numbers by value: 1 == 1.0)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _equal(a[k], b[k]) for k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal) and not isinstance(a, bool):
        return Decimal(a) == Decimal(b)
    return bool(a == b)


@pytest.mark.parametrize("case", list(STATES))
def test_every_state_imports_as_given_and_exports_back(stub, company, db, case):
    vendor, payload, status, reason, paid, credited = STATES[case]
    inv = _import(stub, company, vendor, payload)
    assert (inv.status, inv.void_reason) == (status, reason), case
    assert Decimal(inv.amount_paid or "0") == Decimal(paid) and Decimal(inv.amount_credited or "0") == Decimal(credited)
    if status == S.INVOICE_STATUS_VOID:
        assert Decimal(inv.amount_due) == 0
    exported = _load(_export(stub, company, vendor, inv.id))
    for key, value in payload.items():
        assert _equal(exported.get(key), value), (case, key, exported.get(key), value)
    # Stored as given: no payment was invented, the rows add up (PRODUCT section 5).
    rows = db.fetch(
        "SELECT source, amount, applied_amount FROM payment_allocations WHERE company_id = $1 ORDER BY source",
        company,
    )
    assert sum(r["applied_amount"] for r in rows) == Decimal(paid)
    assert {r["source"] for r in rows} <= {"PAYMENT", "IMPORTED"}
    # Every export re-imports and exports the same again.
    again = _import(stub, company, vendor, _export(stub, company, vendor, inv.id).replace(payload_number(payload), "X"))
    assert (again.status, again.void_reason) == (status, reason)
    first = _load(_export(stub, company, vendor, inv.id))
    second = _load(_export(stub, company, vendor, again.id))
    assert _renumbered(first) == _renumbered(second), case


def payload_number(payload: dict[str, Any]) -> str:
    return str(payload.get("invoiceNumber") or payload.get("invoice_number"))


def _renumbered(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("invoiceNumber", "invoice_number", "modifiedDate")}


def test_codat_paid_without_allocations_records_imported_history(stub, company, db):
    inv = _import(stub, company, "codat", STATES["codat-paid-no-allocations"][1])
    assert [(a.source, a.allocation.total_amount) for a in inv.payment_allocations] == [("IMPORTED", "100.00")]
    assert inv.paid_on_date.ToJsonString().startswith("2024-03-10")
    assert "paymentAllocations" not in _load(_export(stub, company, "codat", inv.id))


def test_flexprice_overpayment_becomes_customer_credit(stub, company):
    inv = _import(stub, company, "flexprice", STATES["flexprice-overpaid"][1])
    assert inv.payment_status == pb.PAYMENT_STATUS_OVERPAID and Decimal(inv.amount_due) == 0
    balances = stub.GetCustomerCreditBalance(
        svc.GetCustomerCreditBalanceRequest(company_id=company, customer_id="cust-1")
    ).credit_balances
    assert [(b.currency, Decimal(b.balance)) for b in balances] == [("USD", Decimal("20"))]


def test_zuora_partial_credit_memo_is_kept_on_the_open_invoice(stub, company):
    inv = _import(stub, company, "zuora", STATES["zuora-partial-credit-memo"][1])
    assert [(m.reason, Decimal(m.total_amount)) for m in inv.credit_memos] == [
        (pb.CREDIT_MEMO_REASON_IMPORTED, Decimal(30))
    ]
    assert Decimal(inv.amount_due) == 70


@pytest.mark.parametrize(
    ("vendor", "payload", "field"),
    [
        ("codat", _codat("Unknown", 100, 100), "status"),
        ("flexprice", _flex("ARCHIVED", "100.00", None, None), "invoice_status"),
        ("flexprice", _flex("FINALIZED", "100.00", None, None, payment_status="LOST"), "payment_status"),
        ("zuora", _zuora("Archived", 100, 100), "status"),
        ("codat", _codat("Paid", 100, 150), "amountDue"),
        (
            "flexprice",
            _flex("FINALIZED", "100.00", "120.00", "0.00", customer_id="", payment_status="OVERPAID"),
            "customer_id",
        ),
    ],
)
def test_unknown_or_inconsistent_states_are_refused(stub, company, db, vendor, payload, field):
    err = rpc_error(lambda: _import(stub, company, vendor, payload), grpc.StatusCode.INVALID_ARGUMENT)
    assert any(field in f for f in violations(err)), violations(err)
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 0


# -- every export re-imports ----------------------------------------------------------------------


def _canonical_set(stub: Any, company: str) -> dict[str, str]:
    """Invoices in every state, made through the canonical RPCs: name -> id."""
    taxed = [
        line("2", "15.00", description="Widget", tax_amount="3.00", discount_amount="1.00"),
        line("1", "70.00", description="Service", tax_amount="7.00"),
    ]
    out = {
        "draft": create(stub, company, invoice(lines=taxed)).id,
        "draft-eur-percent-discount": create(
            stub, company, invoice(currency="EUR", lines=[line("3", "9.99", discount_percentage="10")])
        ).id,
        "submitted-jpy": finalized(
            stub, company, invoice(currency="JPY", lines=[line("3", "333", tax_amount="99")])
        ).id,
        "submitted-taxed": finalized(stub, company, invoice(lines=taxed)).id,
    }
    partly = finalized(stub, company, invoice(lines=taxed))
    pay(stub, company, partly.id, "20.00")
    out["partly-paid"] = partly.id
    paid = finalized(stub, company, invoice(currency="GBP"))
    pay(stub, company, paid.id, paid.amount_due)
    out["paid"] = paid.id
    voided = finalized(stub, company, invoice())
    pay(stub, company, voided.id, "10.00")
    stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=company, invoice_id=voided.id))
    out["void-partly-paid"] = voided.id
    canceled = create(stub, company, invoice())
    stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=company, invoice_id=canceled.id))
    out["canceled"] = canceled.id
    reversed_ = finalized(stub, company, invoice(lines=taxed))
    stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=company, invoice_id=reversed_.id))
    out["reversed"] = reversed_.id
    written = finalized(stub, company, invoice(currency="JPY", lines=[line("2", "500")]))
    pay(stub, company, written.id, "300")
    stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=company, invoice_id=written.id))
    out["written-off"] = written.id
    return out


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_every_export_reimports_to_the_same_export(stub, company, vendor):
    for name, invoice_id in _canonical_set(stub, company).items():
        first = _export(stub, company, vendor, invoice_id)
        doc = _load(first)
        number = payload_number(doc)
        if number != "None":  # a second copy needs its own number
            first = first.replace(number, f"{number}-again")
        again = _import(stub, company, vendor, first)
        assert _renumbered(_load(_export(stub, company, vendor, again.id))) == _renumbered(doc), (vendor, name)


def test_invariants_of_imported_history_are_exact():
    """PRODUCT section 5 extended for imports: an imported allocation applies at most its amount (the rest
    went to credit), and a void invoice never holds more paid and credited than it asked for."""

    def alloc(amount: str, applied: str) -> m.PaymentAllocation:
        return m.PaymentAllocation(Decimal(amount), "USD", Decimal(applied), source=m.AllocationSource.IMPORTED)

    paid = m.Invoice(currency="USD", total_amount=Decimal("100.00"), amount_due=Decimal("0.00"), status=m.Status.PAID)
    paid.allocations = [alloc("120.00", "100.00")]
    assert invariant_breaches(paid) == []
    paid.allocations = [alloc("90.00", "100.00")]
    assert any("imported allocation" in b for b in invariant_breaches(paid))
    void = m.Invoice(currency="USD", total_amount=Decimal("100.00"), amount_due=Decimal("0.00"), status=m.Status.VOID)
    void.allocations = [alloc("40.00", "40.00")]
    void.credit_memos = [m.CreditMemo(m.CreditMemoReason.WRITE_OFF, Decimal("60.00"), "USD")]
    assert invariant_breaches(void) == []
    void.credit_memos[0].total_amount = Decimal("61.00")
    assert any("void invoice has paid" in b for b in invariant_breaches(void))


# -- hostile payloads (review of issue 16) ----------------------------------------------------------


def _stored(db: Any, company: str) -> int:
    count: int = db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"]
    return count


@pytest.mark.parametrize("text", ["null", "[]", '"text"', "7"])
def test_a_payload_that_is_no_object_is_refused_naming_invoice_json(stub, company, text):
    err = rpc_error(lambda: _import(stub, company, "codat", text), grpc.StatusCode.INVALID_ARGUMENT)
    assert list(violations(err)) == ["invoice_json"], violations(err)


def test_zuora_credit_memo_with_more_decimals_than_the_currency_is_refused(stub, company, db):
    payload = _zuora("Posted", 100, 0, paymentAmount=100, creditMemoAmount=Decimal("0.001"))
    err = rpc_error(lambda: _import(stub, company, "zuora", payload), grpc.StatusCode.INVALID_ARGUMENT)
    assert "creditMemoAmount" in violations(err), violations(err)
    assert _stored(db, company) == 0


def test_flexprice_voided_paid_beyond_its_total_moves_nothing_to_credit(stub, company, db):
    """README: a void invoice keeps what was paid and nothing moves to the credit balance, so a voided invoice
    paid beyond its total cannot be stored as given (as Codat's Void with payments beyond the total)."""
    payload = _flex("VOIDED", "100.00", "150.00", "0.00")
    err = rpc_error(lambda: _import(stub, company, "flexprice", payload), grpc.StatusCode.INVALID_ARGUMENT)
    assert "amount_paid" in violations(err), violations(err)
    assert _stored(db, company) == 0
    balances = stub.GetCustomerCreditBalance(
        svc.GetCustomerCreditBalanceRequest(company_id=company, customer_id="cust-1")
    ).credit_balances
    assert [b for b in balances if Decimal(b.balance)] == []


@pytest.mark.parametrize(
    ("vendor", "payload", "field"),
    [
        ("flexprice", _flex("FINALIZED", "100.00", "100.001", "0.00", payment_status="OVERPAID"), "amount_paid"),
        ("zuora", _zuora("Posted", 100, 0, paymentAmount=Decimal("100.001")), "paymentAmount"),
        ("codat", _codat("Paid", 100, 0, [150]), "paymentAllocations"),
    ],
)
def test_refusals_of_the_paid_total_name_the_vendor_field(stub, company, db, vendor, payload, field):
    err = rpc_error(lambda: _import(stub, company, vendor, payload), grpc.StatusCode.INVALID_ARGUMENT)
    assert any(f.split("[")[0] == field for f in violations(err)), violations(err)
    assert not any(f.startswith("invoice.") for f in violations(err)), violations(err)
    assert _stored(db, company) == 0


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_an_invoice_with_allowances_and_charges_reimports(stub, company, vendor):
    """The vendors define no allowances or charges: exports wrote only totals that include them, and the
    re-import refused its own export (totals disagreeing with the lines)."""
    taxed = [pb.TaxationItem(name="VAT", tax_rate="20", tax_category=pb.TAX_CATEGORY_S)]
    made = finalized(
        stub,
        company,
        invoice(
            lines=[line("2", "50.00", taxation_items=taxed, charge_amount="1.00")],
            allowance_charges=[
                pb.AllowanceCharge(percentage="10", reason="Loyalty", tax_category=pb.TAX_CATEGORY_S, tax_rate="20"),
                pb.AllowanceCharge(
                    charge=True, amount="5.00", reason="Freight", tax_category=pb.TAX_CATEGORY_S, tax_rate="20"
                ),
            ],
        ),
    )
    first = _export(stub, company, vendor, made.id)
    number = payload_number(_load(first))
    again = _import(stub, company, vendor, first.replace(number, f"{number}-again"))
    assert _renumbered(_load(_export(stub, company, vendor, again.id))) == _renumbered(_load(first))


def test_flexprice_allowances_beyond_the_invoice_discount_are_refused(stub, company, db):
    """FlexPrice's total_discount includes the allowances written beside it; one smaller than they are left a
    negative discount to spread over the lines (a hidden charge) and was accepted."""
    payload = _flex("FINALIZED", "100.00", None, None) | {
        "allowance_charges": [{"amount": "100.00"}],
        "total_discount": "50.00",
        "total": "50.00",
        "amount_due": "50.00",
    }
    err = rpc_error(lambda: _import(stub, company, "flexprice", payload), grpc.StatusCode.INVALID_ARGUMENT)
    assert "total_discount" in violations(err), violations(err)
    assert _stored(db, company) == 0
