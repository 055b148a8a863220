"""Property test: random sequences of lifecycle calls against the real service, checked after every
step against a model of PRODUCT section 5 and against the invariants read straight from PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import grpc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from tests.helpers import invoice, line, pay

S = pb.InvoiceStatus
PAYABLE = {S.Value("INVOICE_STATUS_SUBMITTED"), S.Value("INVOICE_STATUS_PARTIALLY_PAID")}
DRAFT, SUBMITTED, PARTIAL, PAID, VOID = (
    S.Value(f"INVOICE_STATUS_{n}") for n in ("DRAFT", "SUBMITTED", "PARTIALLY_PAID", "PAID", "VOID")
)
# Mostly positive amounts: zero totals (straight to PAID) are a case, not the norm.
cents = st.integers(min_value=1, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))


def expected_status(total: Decimal, due: Decimal) -> int:
    return PAID if due == 0 else SUBMITTED if due == total else PARTIAL


# Rules act on a live invoice picked by index, so every step exercises a rule.
pick = st.integers(min_value=0, max_value=1_000)
live = precondition(lambda self: bool(self.model))


class Lifecycle(RuleBasedStateMachine):
    def __init__(self, stub: Any, db: Any) -> None:
        super().__init__()
        self.stub, self.db = stub, db
        self.model: dict[str, dict[str, Any]] = {}
        self.credit = Decimal(0)

    @initialize()
    def setup(self) -> None:
        self.company = f"prop-{uuid.uuid4().hex[:10]}"

    def call(self, fn: Any, *ok_when: bool) -> Any:
        """Calls; success must coincide with the model's prediction, failure must be FAILED_PRECONDITION."""
        should_succeed = all(ok_when)
        try:
            result = fn()
        except grpc.RpcError as err:
            assert not should_succeed, f"unexpected {err.code()}: {err.details()}"
            assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err.details()
            return None
        assert should_succeed, "call succeeded where the rules forbid it"
        return result

    def target(self, idx: int) -> tuple[str, dict[str, Any]]:
        key = list(self.model)[idx % len(self.model)]  # creation order: replays pick the same invoice
        return key, self.model[key]

    @precondition(lambda self: len(self.model) < 4)  # few invoices, many steps on each
    @rule(
        amounts=st.lists(cents, min_size=0, max_size=3) | st.just([Decimal(0)]),
        posted=st.sampled_from([True, True, False]),
    )
    def create(self, amounts: list[Decimal], posted: bool) -> None:
        lines = [line("1", str(a)) for a in amounts] or [line("1", "12.34")]
        status = SUBMITTED if posted else DRAFT
        out = self.stub.CreateInvoice(
            svc.CreateInvoiceRequest(company_id=self.company, invoice=invoice(lines=lines, status=status))
        ).invoice
        total = sum(amounts, Decimal(0)) if amounts else Decimal("12.34")
        self.model[out.id] = {
            "status": status if not (posted and total == 0) else PAID,
            "total": total,
            "due": total,
            "paid": Decimal(0),
            "reason": None,
            "noted": Decimal(0),  # totals of its issued credit notes
            "refunded": Decimal(0),
            "balance_out": Decimal(0),  # credit notes' parts given to the credit balance
            "allocs": [],  # applied amounts, in order
            "alloc0_refunded": Decimal(0),
        }

    @live
    @rule(idx=pick)
    def finalize(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] == DRAFT,
        ):
            m["status"] = PAID if m["total"] == 0 else SUBMITTED

    @live
    @rule(
        idx=pick,
        fraction=st.sampled_from([Decimal("0.25"), Decimal("0.5"), Decimal(1), Decimal("1.5"), None]),
    )
    def record_payment(self, idx: int, fraction: Decimal | None) -> None:
        """A share of the total, or (None) the balance plus one cent: the smallest overpayment."""
        inv, m = self.target(idx)
        amount = m["due"] + Decimal("0.01") if fraction is None else (m["total"] * fraction).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        if self.call(
            lambda: pay(self.stub, self.company, inv, str(amount)), m["status"] in PAYABLE, amount <= m["due"]
        ):
            m["due"] -= amount
            m["paid"] += amount
            m["allocs"].append(amount)
            m["status"] = expected_status(m["total"], m["due"])

    @live
    @rule(
        idx=pick,
        fraction=st.sampled_from([Decimal("0.1"), Decimal("0.5"), Decimal(1), Decimal("1.2")]),
        refund=st.booleans(),
    )
    def credit_note(self, idx: int, fraction: Decimal, refund: bool) -> None:
        """A credit note for a share of the total: by default credited to what is due and the rest to the
        balance, or (refund) all refunded."""
        inv, m = self.target(idx)
        amount = (m["total"] * fraction).quantize(Decimal("0.01"))
        if amount <= 0:
            return
        request = svc.CreateCreditNoteRequest(
            company_id=self.company,
            invoice_id=inv,
            lines=[svc.CreditNoteLineInput(unit_amount=str(amount))],
            refund_amount=str(amount) if refund else "",
        )
        note = self.call(lambda: self.stub.CreateCreditNote(request), m["status"] in PAYABLE | {PAID})
        if note is None:
            return
        credit = Decimal(0) if refund else min(amount, m["due"])
        out = amount - credit
        issue = svc.IssueCreditNoteRequest(company_id=self.company, credit_note_id=note.credit_note.id)
        kept = m["paid"] - m["refunded"] - m["balance_out"]
        if self.call(lambda: self.stub.IssueCreditNote(issue), amount <= m["total"] - m["noted"], out <= kept):
            m["noted"] += amount
            m["due"] -= credit
            m["status"] = expected_status(m["total"], m["due"])
            if refund:
                m["refunded"] += amount
            else:
                m["balance_out"] += out
                self.credit += out

    @live
    @rule(idx=pick, fraction=st.sampled_from([Decimal("0.3"), Decimal(1), Decimal(2)]))
    def refund_payment(self, idx: int, fraction: Decimal) -> None:
        """A refund of the invoice's first payment."""
        inv, m = self.target(idx)
        if not m["allocs"]:
            return
        got = self.stub.GetInvoice(svc.GetInvoiceRequest(company_id=self.company, invoice_id=inv)).invoice
        first = got.payment_allocations[0]
        assert Decimal(first.applied_amount) == m["allocs"][0]
        amount = (m["allocs"][0] * fraction).quantize(Decimal("0.01"))
        request = svc.RecordRefundRequest(
            company_id=self.company, invoice_id=inv, payment_allocation_id=first.id, amount=str(amount)
        )
        kept = m["paid"] - m["refunded"] - m["balance_out"]
        if self.call(
            lambda: self.stub.RecordRefund(request),
            m["status"] in {PARTIAL, PAID},
            amount <= m["allocs"][0] - m["alloc0_refunded"],
            amount <= kept,
        ):
            m["refunded"] += amount
            m["alloc0_refunded"] += amount

    @live
    @rule(idx=pick)
    def void(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.VoidInvoice(svc.VoidInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] in PAYABLE,
        ):
            self.credit += m["paid"] - m["refunded"] - m["balance_out"]
            m.update(status=VOID, due=Decimal(0), reason="VOIDED")

    @live
    @rule(idx=pick)
    def cancel(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.CancelInvoice(svc.CancelInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] == DRAFT,
        ):
            m.update(status=VOID, due=Decimal(0), reason="CANCELED")

    @live
    @rule(idx=pick)
    def reverse(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.ReverseInvoice(svc.ReverseInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] == SUBMITTED,
            m["paid"] == 0,
        ):
            m.update(status=VOID, due=Decimal(0), reason="REVERSED")

    @live
    @rule(idx=pick)
    def write_off(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.WriteOffInvoice(svc.WriteOffInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] in PAYABLE,
        ):
            m.update(status=VOID, due=Decimal(0), reason="WRITTEN_OFF")

    @live
    @rule(idx=pick)
    def delete(self, idx: int) -> None:
        inv, m = self.target(idx)
        if self.call(
            lambda: self.stub.DeleteInvoice(svc.DeleteInvoiceRequest(company_id=self.company, invoice_id=inv)),
            m["status"] == DRAFT or m["reason"] == "CANCELED",
        ):
            del self.model[inv]

    @rule(amount=st.integers(min_value=1, max_value=200))
    def add_credit(self, amount: int) -> None:
        self.stub.AddCustomerCredit(
            svc.AddCustomerCreditRequest(
                company_id=self.company, customer_id="cust-1", currency="USD", amount=str(amount)
            )
        )
        self.credit += amount

    @live
    @rule(idx=pick)
    def attempt_payment(self, idx: int) -> None:
        inv, m = self.target(idx)
        out = self.call(
            lambda: self.stub.AttemptPayment(svc.AttemptPaymentRequest(company_id=self.company, invoice_id=inv)),
            m["status"] in PAYABLE,
            self.credit > 0,
        )
        if out is not None:
            applied = min(self.credit, m["due"])
            assert Decimal(out.amount_applied) == applied
            self.credit -= applied
            m["due"] -= applied
            m["paid"] += applied
            m["allocs"].append(applied)
            m["status"] = expected_status(m["total"], m["due"])

    @invariant()
    def matches_model_and_invariants(self) -> None:
        if not hasattr(self, "company"):
            return
        rows = self.db.fetch(
            "SELECT i.id, i.status, i.void_reason, i.total_amount, i.amount_due, i.invoice_number, "
            "(SELECT coalesce(sum(applied_amount), 0) FROM payment_allocations p WHERE p.invoice_id = i.id) AS paid, "
            "(SELECT coalesce(sum(total_amount), 0) FROM credit_memos c WHERE c.invoice_id = i.id) AS credited, "
            "i.amount_refunded, i.payment_status, "
            "(SELECT coalesce(sum(amount), 0) FROM refunds f WHERE f.invoice_id = i.id) AS refunds, "
            "(SELECT coalesce(sum(total_amount), 0) FROM credit_notes n WHERE n.invoice_id = i.id "
            "AND n.status = 'ISSUED') AS noted "
            "FROM invoices i WHERE company_id = $1",
            self.company,
        )
        assert {r["id"] for r in rows} == set(self.model)
        for r in rows:
            m = self.model[r["id"]]
            assert S.Value(f"INVOICE_STATUS_{r['status']}") == m["status"], (r, m)
            assert r["amount_due"] == m["due"]
            assert r["amount_refunded"] == r["refunds"] == m["refunded"] <= r["paid"]
            if r["amount_refunded"] > 0:
                full = r["amount_refunded"] == r["paid"]
                assert r["payment_status"] == ("REFUNDED" if full else "PARTIALLY_REFUNDED")
            if r["void_reason"] not in ("REVERSED", "WRITTEN_OFF"):  # those notes are the memo itself
                assert r["noted"] == m["noted"] <= r["total_amount"]
            if r["status"] == "VOID":
                assert r["amount_due"] == 0 and r["void_reason"] == m["reason"]
            else:
                assert r["amount_due"] == r["total_amount"] - r["paid"] - r["credited"]
                assert 0 <= r["amount_due"] <= r["total_amount"]
                if r["status"] != "DRAFT":
                    assert S.Value(f"INVOICE_STATUS_{r['status']}") == expected_status(
                        r["total_amount"], r["amount_due"]
                    )
        numbers = [r["invoice_number"] for r in rows if r["invoice_number"]]
        assert len(numbers) == len(set(numbers))
        bal = self.db.fetch(
            "SELECT coalesce(sum(balance), 0) AS b, bool_and(balance >= 0) AS ok "
            "FROM customer_credit_balances WHERE company_id = $1",
            self.company,
        )[0]
        assert bal["b"] == self.credit and bal["ok"] in (True, None)


def test_lifecycle_state_machine(stub, db):
    run_state_machine_as_test(
        lambda: Lifecycle(stub, db),  # type: ignore[arg-type]
        settings=settings(
            max_examples=60,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
