"""Payments and customer credit: record, status, attempts, credit balances, applications."""

from __future__ import annotations

from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service.domain import models as m
from service.domain import money
from service.domain.errors import Violations
from service.domain.push import AsyncRun
from service.domain.values import check_text, parse_decimal
from service.handlers.invoices import CreditBalance
from service.transport import convert as c
from service.transport import requests as r
from service.transport.document import write_answer
from service.transport.requests import Ctx
from service.transport.servicers.base import Resources


def balance_out(b: CreditBalance) -> pb.CustomerCreditBalance:
    out = pb.CustomerCreditBalance(
        company_id=b.company_id,
        customer_id=b.customer_id,
        currency=b.currency,
        balance=money.fmt(b.balance, b.currency),
    )
    c.ts_out(out, "update_time", b.update_time)
    return out


class PaymentRpcs(Resources):
    async def RecordPayment(
        self, request: svc.RecordPaymentRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.RecordPaymentResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        if not request.HasField("payment_allocation"):
            v.add("payment_allocation", "is required")
        alloc = c.allocation_in(request.payment_allocation, v, "payment_allocation")
        v.raise_if_any()
        stored = await self.h.record_payment(request.company_id, key, alloc, run=run)
        return write_answer(svc.RecordPaymentResponse, stored.document, c.push_out(stored.operation))

    async def UpdatePaymentStatus(
        self, request: svc.UpdatePaymentStatusRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.UpdatePaymentStatusResponse:
        v = Violations()
        key = r.invoice_key(v, "invoice_id", request.invoice_id)
        status = c.enum_in(v, "payment_status", pb.PaymentStatus, request.payment_status, m.PaymentStatus)
        if status is None and not v:
            v.add("payment_status", "is required")
        amount = parse_decimal(v, "amount", request.amount, positive=True)
        v.raise_if_any()
        assert status is not None
        stored = await self.h.update_payment_status(request.company_id, key, status, amount, run=run)
        return write_answer(svc.UpdatePaymentStatusResponse, stored.document, c.push_out(stored.operation))

    async def AttemptPayment(
        self, request: svc.AttemptPaymentRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.AttemptPaymentResponse:
        key = r.invoice_key_only(request.invoice_id)
        inv, op, applied, balance = await self.h.attempt_payment(request.company_id, key, run=run)
        return svc.AttemptPaymentResponse(
            invoice=c.invoice_out(inv),
            push_operation=c.push_out(op),
            amount_applied=money.fmt(applied, inv.currency),
            credit_balance=balance_out(balance),
        )

    async def AddCustomerCredit(
        self, request: svc.AddCustomerCreditRequest, context: Ctx, *, run: AsyncRun | None = None
    ) -> svc.AddCustomerCreditResponse:
        v = Violations()
        currency, amount = r.customer_amount(v, request.customer_id, request.currency, request.amount)
        check_text(v, "note", request.note)
        v.raise_if_any()
        balance, op = await self.h.add_credit(
            request.company_id, request.customer_id, currency, amount, request.note, run=run
        )
        return svc.AddCustomerCreditResponse(credit_balance=balance_out(balance), push_operation=c.push_out(op))

    async def GetCustomerCreditBalance(
        self, request: svc.GetCustomerCreditBalanceRequest, context: Ctx
    ) -> svc.GetCustomerCreditBalanceResponse:
        v = Violations()
        r.require(v, "customer_id", request.customer_id)
        v.raise_if_any()
        balances = await self.h.credit_balances(request.company_id, request.customer_id)
        return svc.GetCustomerCreditBalanceResponse(credit_balances=[balance_out(b) for b in balances])

    async def ListInvoiceApplications(
        self, request: svc.ListInvoiceApplicationsRequest, context: Ctx
    ) -> svc.ListInvoiceApplicationsResponse:
        key = r.invoice_key_only(request.invoice_id)
        out = svc.ListInvoiceApplicationsResponse()
        for p in await self.h.list_applications(request.company_id, key):
            part = out.application_parts.add(
                payment_id=p.payment_id,
                credit_memo_id=p.credit_memo_id,
                applied_amount=str(p.applied_amount),
                source=p.source,
            )
            c.ts_out(part, "create_time", p.create_time)
        return out
