"""SendInvoice as an outbox: the intent commits first, delivery happens afterwards, once.

1. Intent: one unit of work with the invoice locked checks the send, stores an outbox row (with its
   stable Message-ID) and leaves the send's push operation PENDING, leased to the delivery.
2. Delivery: the row is claimed (QUEUED -> SENDING, until the overall timeout has surely passed), the
   invoice and the attachments are read in one REPEATABLE READ snapshot, and the SMTP conversation runs
   with no row lock and no pooled connection held, within MAIL_SEND_TIMEOUT_SECONDS. It runs in its own
   task: a caller that goes away (deadline, cancel) does not stop it.
3. Result: one unit of work records SENT (and the invoice's sent_time, INVOICE_MODIFIED) or FAILED on the
   outbox row and completes the push operation, if it is still PENDING.

A claimed send is never delivered again: a delivery interrupted by a stopped process is recorded FAILED
(the mail server may have taken it), and an asynchronous send's operation stays leased to its delivery, so
no worker applies it a second time while the delivery may be in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from functools import partial

import asyncpg

from service.domain.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
    Violations,
)
from service.domain.models import Invoice, Status
from service.domain.money import display
from service.domain.push import AsyncRun, Change, ChangeType, PushOperation, PushStatus
from service.handlers.unit_of_work import Conflict, UnitOfWorkFactory
from service.handlers.writes import require_company, utcnow
from service.outbound import mail, pdf
from service.store import attachments as attachment_store
from service.store import invoices as invoice_store
from service.store import mail_outbox as store
from service.store import profiles
from service.store import push_operations as push_store
from service.store.db import connection, driver_errors

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 20
MARGIN = timedelta(seconds=30)  # beyond the overall timeout, before a claim is considered abandoned
OPERATION_TIMEOUT_MINUTES = 60


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    error: str = ""


def check_address(v: Violations, path: str, address: str) -> None:
    local, at, domain = address.partition("@")
    if not address.isascii():
        v.add(
            path, f"must be an ASCII e-mail address (internationalized addresses are not supported): {address[:60]!r}"
        )
    elif (
        not at
        or not local
        or "." not in domain
        or any(c.isspace() or c in '<>,;"()[]\\' or ord(c) < 32 or ord(c) == 127 for c in address)
        or len(address) > 254
    ):
        v.add(path, f"is not an e-mail address: {address[:60]!r}")


class Outbox:
    def __init__(
        self,
        pool: asyncpg.Pool,
        uow: UnitOfWorkFactory,
        smtp: mail.SmtpSettings | None,
        seller: str,
        render: Callable[[Invoice], bytes],
        max_mail_bytes: int,
    ) -> None:
        self.pool = pool
        self.uow = uow
        self.smtp = smtp
        self.seller = seller
        self.render = render
        self.max_mail_bytes = max_mail_bytes
        self._deliveries: dict[str, asyncio.Task[Outcome]] = {}

    @property
    def _claim_span(self) -> timedelta:
        timeout = self.smtp.send_timeout if self.smtp else 60.0
        return timedelta(seconds=timeout) + MARGIN

    async def send(
        self,
        company_id: str,
        invoice_key: str,
        to: list[str],
        subject: str,
        body: str,
        request: bytes,
        request_id: str = "",
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Invoice, PushOperation]:
        """Queues the send and waits for its delivery (the caller may go away: delivery goes on).
        `request` is the serialized call, kept on the PENDING operation so that a worker can finish the
        send if this process stops before it is recorded. A `request_id` already used by a send answers
        with that send's result: a retry after a lost answer never mails twice."""
        v = Violations()
        if not to:
            v.add("email_addresses", "at least one address is required")
        if len(to) > MAX_RECIPIENTS:
            v.add("email_addresses", f"at most {MAX_RECIPIENTS} addresses")
        for i, address in enumerate(to[:MAX_RECIPIENTS]):
            check_address(v, f"email_addresses[{i}]", address)
        if subject and not mail.header_safe(subject):
            v.add("subject", "must not contain line breaks or control characters, also not RFC 2047-encoded ones")
        require_company(company_id)
        v.raise_if_any()
        entry = None
        if run is not None:  # a worker applying an asynchronous send, maybe again after a lost lease
            async with connection(self.pool) as conn:
                entry = await store.for_operation(conn, company_id, run.key)
        if entry is None and request_id:
            async with connection(self.pool) as conn:
                entry = await store.for_request(conn, company_id, request_id)
                if entry is not None and entry.status == store.FAILED:  # not sent: a retry tries again
                    await store.forget_request(conn, company_id, entry.id)
                    entry = None
            if entry is not None and (
                entry.recipients != to or (subject and entry.subject != subject) or (body and entry.body != body)
            ):
                raise InvalidArgument(
                    [FieldViolation("request_id", "was already used by another SendInvoice call of this company")]
                )
        if entry is None:
            entry = await self._intent(company_id, invoice_key, to, subject, body, request, request_id, run)
        delivery = self._delivery(company_id, entry.id)
        if run is None:  # a live call waits for the result (shielded: a caller going away stops nothing)
            outcome = await asyncio.shield(delivery)
            if not outcome.sent:
                raise Unavailable(f"the mail server did not take the message: {outcome.error}")
        # A worker does not wait: the delivery completes the operation, which stays leased to it meanwhile.
        async with connection(self.pool) as conn:
            inv = await invoice_store.load_invoice(conn, company_id, entry.invoice_id)
            op = await push_store.get(conn, company_id, entry.push_operation_key)
        if inv is None or op is None:
            raise NotFound("invoice", invoice_key)
        return inv, op

    async def _intent(
        self,
        company_id: str,
        invoice_key: str,
        to: list[str],
        subject: str,
        body: str,
        request: bytes,
        request_id: str,
        run: AsyncRun | None,
    ) -> store.Entry:
        try:
            with driver_errors():
                return await self._commit_intent(company_id, invoice_key, to, subject, body, request, request_id, run)
        except AlreadyExists as exc:  # the same request_id, concurrently
            error = Aborted(f"a send with request_id {request_id!r} is already under way")
            error.push_operation_key = exc.push_operation_key  # the refusal the unit of work recorded
            raise error from exc

    async def _commit_intent(
        self,
        company_id: str,
        invoice_key: str,
        to: list[str],
        subject: str,
        body: str,
        request: bytes,
        request_id: str,
        run: AsyncRun | None,
    ) -> store.Entry:
        smtp = self.smtp
        async with self.uow(company_id, "SendInvoice", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_key)
            if inv.status in (Status.DRAFT, Status.VOID):
                raise FailedPrecondition(f"invoice {inv.id} is {inv.status.value}: only finalized invoices are sent")
            if smtp is None:
                raise FailedPrecondition("e-mail is not configured on this service (SMTP_HOST)", "smtp")
            conn = await uow.connection()
            extra = [a for a in await attachment_store.list_for(conn, inv.company_id, inv.id) if a.include_when_sent]
            size = sum(a.file_size for a in extra)
            if size > self.max_mail_bytes:
                raise FailedPrecondition(
                    f"the attachments come to {size} bytes, over the {self.max_mail_bytes} an e-mail may carry"
                )
            number = inv.invoice_number
            cur = inv.currency
            seller = inv.seller.name if inv.seller else self.seller  # the issued invoice's seller
            text = body or (
                f"Invoice {number} from {seller}\n\nTotal: {display(inv.total_amount, cur)} {cur}\n"
                f"Amount due: {display(inv.amount_due, cur)} {cur}\n"
                + (f"Due date: {inv.due_date:%Y-%m-%d}\n" if inv.due_date else "")
            )
            entry_id = invoice_store.new_id()
            entry = store.Entry(
                id=entry_id,
                company_id=company_id,
                invoice_id=inv.id,
                push_operation_key=uow.operation.key,
                request_id=request_id,
                message_id=mail.message_id(entry_id, smtp.sender),
                recipients=list(to),
                # The default subject carries the invoice number, which may hold anything: folded.
                subject=subject or mail.fold(f"Invoice {number}"),
                body=text,
                status=store.QUEUED,
                create_time=uow.now,
            )
            uow.pieces.append(store.insert_piece(entry))
            # PENDING, with the request, leased to the delivery (a worker's run keeps its lease instead).
            uow.operation.timeout_in_minutes = OPERATION_TIMEOUT_MINUTES
            uow.queue(request, (f"outbox-{entry_id}", uow.now + self._claim_span + MARGIN))
            await uow.commit()
        return entry

    async def drain(self) -> None:
        """On shutdown: lets deliveries under way finish and record their result (each has its overall
        timeout; the caller bounds the wait)."""
        if self._deliveries:
            await asyncio.wait(list(self._deliveries.values()))

    def _delivery(self, company_id: str, entry_id: str) -> asyncio.Task[Outcome]:
        """The delivery task of a send (one per send in this process), shared by whoever waits for it."""
        task = self._deliveries.get(entry_id)
        if task is None:
            task = asyncio.create_task(self._deliver(company_id, entry_id))
            self._deliveries[entry_id] = task
            task.add_done_callback(lambda _: self._deliveries.pop(entry_id, None))
        return task

    async def _deliver(self, company_id: str, entry_id: str) -> Outcome:
        now = utcnow()
        async with connection(self.pool) as conn:
            entry = await store.claim(conn, company_id, entry_id, now + self._claim_span)
        if entry is None:
            return await self._settled(company_id, entry_id)
        try:
            message = await self._message(entry)
            assert self.smtp is not None  # checked when the intent committed
            await mail.send(self.smtp, message, entry.recipients)
        except mail.MailError as exc:
            error = str(exc)[:1000]
            if exc.maybe_delivered:
                error += "; the mail server may have taken the message, so it is not sent again"
            await self._record(entry, Outcome(False, error))
            return Outcome(False, error)
        except (FailedPrecondition, NotFound) as exc:
            await self._record(entry, Outcome(False, exc.message))
            return Outcome(False, exc.message)
        except BaseException:
            # A crash of ours after the claim: the outcome is unknown, so it is recorded as not sent and
            # never retried (the claim keeps others off it until then).
            await asyncio.shield(self._record(entry, Outcome(False, "the delivery was interrupted")))
            raise
        await self._record(entry, Outcome(True))
        return Outcome(True)

    async def _settled(self, company_id: str, entry_id: str) -> Outcome:
        """A send claimed before: its result, or (once its claim ran out unrecorded) FAILED; or, while
        its delivery may still be in flight elsewhere, wait for it (holding no connection meanwhile)."""
        while True:
            async with connection(self.pool) as conn:
                entry = await store.get(conn, company_id, entry_id)
                if entry is None:
                    return Outcome(False, "the send no longer exists")
                if entry.status == store.SENT:
                    return Outcome(True)
                if entry.status == store.FAILED:
                    return Outcome(False, entry.error)
                expired = entry.claimed_until is not None and entry.claimed_until < utcnow()
                error = "the delivery was interrupted; the mail server may have taken the message"
                if expired and await store.interrupted(conn, company_id, entry_id, utcnow(), error):
                    entry.status = store.FAILED
            if entry.status == store.FAILED:
                await self._record(entry, Outcome(False, error))
                return Outcome(False, error)
            await asyncio.sleep(0.0 if expired else 0.2)

    async def _message(self, entry: store.Entry) -> EmailMessage:
        """The mail from one consistent snapshot of the invoice and its attachments."""
        async with connection(self.pool) as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            inv = await invoice_store.load_invoice(conn, entry.company_id, entry.invoice_id)
            if inv is None:
                raise NotFound("invoice", entry.invoice_id)
            extra = [a for a in await attachment_store.list_for(conn, inv.company_id, inv.id) if a.include_when_sent]
            if sum(a.file_size for a in extra) > self.max_mail_bytes:
                raise FailedPrecondition(f"the attachments are over the {self.max_mail_bytes} an e-mail may carry")
            files = [(a, await attachment_store.all_bytes(conn, inv.company_id, a.id)) for a in extra]
            profile = await profiles.for_invoice(conn, inv)  # a draft's seller; the logo issued with
        pdf_bytes = await asyncio.to_thread(pdf.render, inv, self.seller, profile)  # CPU work off the event loop
        parts = [mail.Part(pdf.file_name(inv), "application/pdf", pdf_bytes)]
        parts += [mail.Part(a.name, a.content_type, data) for a, data in files]
        assert self.smtp is not None
        return mail.build(self.smtp, entry.recipients, entry.subject, entry.body, parts, entry.message_id)

    async def _record(self, entry: store.Entry, outcome: Outcome) -> None:
        """The result on the outbox row, the invoice (sent_time) and the push operation, in one unit of
        work, if the operation is still PENDING; else (another finished it: timed out) on the row alone."""
        now = utcnow()
        entry.status, entry.error = (store.SENT if outcome.sent else store.FAILED), outcome.error
        entry.sent_time = now if outcome.sent else None
        op = PushOperation(
            key=entry.push_operation_key,
            company_id=entry.company_id,
            operation="SendInvoice",
            status=PushStatus.SUCCESS if outcome.sent else PushStatus.FAILED,
            status_code=200 if outcome.sent else 503,
            requested_on_utc=entry.create_time,
            error_message=outcome.error[:2000],
        )
        try:
            async with self.uow(entry.company_id, "SendInvoice") as uow:
                # Never requeued: the mail server may have taken a failed send.
                write = partial(push_store.finish_piece, keep_request=False)
                uow.adopt(op, push_store.pending_guard(op.company_id, op.key), write)
                uow.pieces.append(store.record_piece(entry))
                if outcome.sent:
                    with contextlib.suppress(NotFound):  # gone: the send is recorded all the same
                        inv = await uow.invoices.get_for_update(entry.invoice_id)
                        inv.sent_time = inv.modified_date = now
                        inv.version += 1
                        uow.invoices.save(inv, self.render(inv))
                        uow.record(Change(ChangeType.MODIFIED, inv.id))  # sent: INVOICE_MODIFIED
                await uow.commit()
        except Conflict:
            async with connection(self.pool) as conn:
                await store.record(conn, entry)
        if not outcome.sent:
            log.warning("send %s (%s) failed: %s", entry.id, entry.message_id, outcome.error)
