"""Payment use cases (record, status, attempt from credit) and customer credit balances."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

import asyncpg

from service.domain import lifecycle
from service.domain.models import Invoice, PaymentAllocation, PaymentStatus
from service.domain.push import AsyncRun, Change, ChangeType, PushOperation
from service.handlers.invoice_base import InvoiceUseCases, Stored, paid
from service.handlers.unit_of_work import UnitOfWork
from service.handlers.writes import require_company
from service.store import invoices as store
from service.store.db import connection

CREDIT_BALANCES = "customerCreditBalances"  # the data type of credit writes' push operations


@dataclass(frozen=True, slots=True)
class CreditBalance:
    company_id: str
    customer_id: str
    currency: str
    balance: Decimal
    update_time: datetime


def balance_of(row: asyncpg.Record) -> CreditBalance:
    return CreditBalance(row["company_id"], row["customer_id"], row["currency"], row["balance"], row["update_time"])


class PaymentWrites(InvoiceUseCases):
    async def record_payment(
        self, company_id: str, invoice_id: str, alloc: PaymentAllocation, *, run: AsyncRun | None = None
    ) -> Stored:
        """Two statements: the read, then one write (allocation, header, operation, events) if the invoice
        is still as read (else again, on a fresh read)."""

        async def write(uow: UnitOfWork) -> tuple[Invoice, bytes]:
            inv = await uow.invoices.get_for_update(invoice_id)
            lifecycle.record_payment(inv, replace(alloc), uow.now)  # a copy: an attempt may run again
            document = self._save(uow, inv)
            uow.record(paid(inv))
            return inv, document

        turns = ("invoice", company_id, invoice_id)  # payments of an invoice contend for its row
        (inv, document), op = await self.uow.optimistic(company_id, "RecordPayment", write, run=run, turns=turns)
        return Stored(inv, document, op)

    async def update_payment_status(
        self,
        company_id: str,
        invoice_id: str,
        status: PaymentStatus,
        amount: Decimal | None,
        *,
        run: AsyncRun | None = None,
    ) -> Stored:
        async with self.uow(company_id, "UpdatePaymentStatus", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id)
            lifecycle.set_payment_status(inv, status, amount, uow.now)
            document = self._save(uow, inv)
            uow.record(paid(inv))
            await uow.commit()
        return Stored(inv, document, uow.operation)

    async def attempt_payment(
        self, company_id: str, invoice_id: str, *, run: AsyncRun | None = None
    ) -> tuple[Invoice, PushOperation, Decimal, CreditBalance]:
        async with self.uow(company_id, "AttemptPayment", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_id)
            conn = await uow.connection()
            # Lock order everywhere: invoice, then balance.
            balance = await store.lock_credit_balance(conn, inv.company_id, inv.customer_id, inv.currency)
            alloc = lifecycle.attempt_payment(inv, balance, uow.now)
            note = f"paid invoice {inv.invoice_number}"
            amount = -alloc.applied_amount
            row = await store.move_credit(
                conn, inv.company_id, inv.customer_id, inv.currency, amount, "PAYMENT", uow.now, inv.id, note
            )
            self._save(uow, inv)
            uow.record(paid(inv))
            await uow.commit()
        return inv, uow.operation, alloc.applied_amount, balance_of(row)

    async def add_credit(
        self,
        company_id: str,
        customer_id: str,
        currency: str,
        amount: Decimal,
        note: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[CreditBalance, PushOperation]:
        async with self.uow(company_id, "AddCustomerCredit", run=run, data_type=CREDIT_BALANCES) as uow:
            conn = await uow.connection()
            now = uow.now
            row = await store.move_credit(conn, company_id, customer_id, currency, amount, "MANUAL", now, None, note)
            lifecycle.check_credit_balance(row["balance"])  # over it: refused, the transaction rolls back
            uow.record(Change(ChangeType.MODIFIED, customer_id, CREDIT_BALANCES))
            await uow.commit()
        return balance_of(row), uow.operation

    async def credit_balances(self, company_id: str, customer_id: str) -> list[CreditBalance]:
        require_company(company_id)
        async with connection(self.pool) as conn:
            return [balance_of(r) for r in await store.credit_balances(conn, company_id, customer_id)]
