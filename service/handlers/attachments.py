"""Attachments, invoice PDFs and e-mail: uploads in one transaction, downloads chunk by chunk."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import asyncpg

from service.domain import attachments as rules
from service.domain.attachments import Attachment, Limits
from service.domain.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Violations,
)
from service.domain.models import Invoice, Status
from service.domain.push import AsyncRun, Change, ChangeType, PushOperation
from service.handlers.sending import Outbox
from service.handlers.streams import StreamQuota
from service.handlers.unit_of_work import UnitOfWorkFactory
from service.handlers.writes import require_company, utcnow
from service.outbound import mail, pdf
from service.store import attachments as store
from service.store import invoices as invoice_store
from service.store import profiles
from service.store.db import connection

READ_PIECES = 8  # stored pieces per query when downloading
MESSAGE_BYTES = 1024 * 1024  # bytes per download message
T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class UploadMeta:
    company_id: str
    invoice_id: str
    name: str
    content_type: str
    include_when_sent: bool


async def _put(
    queue: asyncio.Queue[tuple[int, int, bytes] | None],
    writer: asyncio.Future[None],
    item: tuple[int, int, bytes] | None,
) -> None:
    """Hands a piece to the writer, unless it has failed: then its error surfaces here."""
    if writer.done():
        await writer
        raise RuntimeError("the attachment writer stopped early")
    await queue.put(item)


class AttachmentHandlers:
    def __init__(
        self,
        pool: asyncpg.Pool,
        uow: UnitOfWorkFactory,
        limits: Limits,
        smtp: mail.SmtpSettings | None,
        seller: str,
        render: Callable[[Invoice], bytes],
        max_mail_bytes: int,
        streams: StreamQuota,
        upload_idle_seconds: float = 30.0,
        upload_connections: int = 5,
    ) -> None:
        self.pool = pool
        self.streams = streams
        self.upload_idle_seconds = upload_idle_seconds
        self.upload_slots = asyncio.Semaphore(max(1, upload_connections))
        self._staged: dict[str, str] = {}  # uploads of this process under way: attachment id -> company
        self.uow = uow
        self.limits = limits
        self.smtp = smtp
        self.seller = seller
        self.render = render
        self.max_mail_bytes = max_mail_bytes
        self.outbox = Outbox(pool, uow, smtp, seller, render, max_mail_bytes)

    async def _invoice(self, conn: asyncpg.Connection, company_id: str, invoice_key: str) -> Invoice:
        inv = await invoice_store.load_invoice(conn, company_id, invoice_key)
        if inv is None:
            raise NotFound("invoice", invoice_key)
        return inv

    # -- upload -----------------------------------------------------------------------------

    async def upload(self, meta: UploadMeta | None, chunks: AsyncIterator[bytes]) -> tuple[Attachment, PushOperation]:
        """Stages the stream's pieces outside any transaction, then commits in one short one: a break, a
        cancel, an idle client or a limit leaves nothing behind, and a waiting client holds no connection."""
        if meta is None:
            raise InvalidArgument([FieldViolation("metadata", "the first message must carry the metadata")])
        with self.streams.hold(meta.company_id):
            att = await self._refusing(meta.company_id, self._stage(meta))
            self._staged[att.id] = meta.company_id
            committed = False
            try:
                result = await self._receive_and_commit(meta, att, chunks)
                committed = True
                self._staged.pop(att.id, None)
                return result
            finally:
                if not committed:  # shielded: a cancelled call still removes its staged pieces
                    await asyncio.shield(self._discard(meta.company_id, att.id))

    async def discard_staged(self) -> None:
        """On shutdown, after the calls have ended: removes what uploads cut short left staged."""
        for attachment_id, company_id in list(self._staged.items()):
            await self._discard(company_id, attachment_id)

    async def _refusing(self, company_id: str, step: Awaitable[T]) -> T:
        """Leaves a FAILED push operation for a refusal outside the unit of work, as every refused write does."""
        try:
            return await step
        except NotFound:
            raise
        except DomainError as exc:
            await self.uow.record_refusal(company_id, "UploadAttachment", "invoices", exc)
            raise

    async def _stage(self, meta: UploadMeta) -> Attachment:
        v = Violations()
        require_company(meta.company_id)
        if not meta.invoice_id:
            v.add("metadata.invoice_id", "is required")
        content_type = rules.check_upload(v, meta.name, meta.content_type, self.limits)
        v.raise_if_any()
        now = utcnow()
        async with connection(self.pool) as conn:
            await store.sweep(conn, now)
            inv = await self._invoice(conn, meta.company_id, meta.invoice_id)
            if inv.status is Status.VOID:
                raise FailedPrecondition(f"invoice {inv.id} is VOID: nothing can be attached", f"invoices/{inv.id}")
            att = Attachment(
                id=invoice_store.new_id(),
                invoice_id=inv.id,
                name=meta.name,
                content_type=content_type,
                include_when_sent=meta.include_when_sent,
                date_created=now,
                modified_date=now,
            )
            await store.stage(conn, meta.company_id, att, self._staged_until())
        return att

    def _staged_until(self) -> datetime:
        return utcnow() + timedelta(seconds=max(4 * self.upload_idle_seconds, 600))

    async def _discard(self, company_id: str, attachment_id: str) -> None:
        async with connection(self.pool) as conn:
            await store.discard(conn, company_id, attachment_id)
        self._staged.pop(attachment_id, None)

    async def _put_piece(self, company_id: str, attachment_id: str, seq: int, start: int, data: bytes) -> None:
        # A bounded share of the pool, held only for one INSERT: uploads never starve other RPCs.
        async with self.upload_slots, connection(self.pool) as conn:
            if not await store.put_chunk(conn, company_id, attachment_id, seq, start, data, self._staged_until()):
                raise Aborted(f"the upload of attachment {attachment_id} expired; upload the file again")

    async def next_message(self, messages: AsyncIterator[M]) -> M | None:
        """The next message of an upload, or None at the end; a client silent for the idle timeout ends
        the upload (its first message too: a stream that never says whose it is holds nothing for long)."""
        try:
            return await asyncio.wait_for(anext(messages), self.upload_idle_seconds)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise Aborted(
                f"no upload data for {self.upload_idle_seconds:g} s: the upload was abandoned; send it again"
            ) from None

    async def _receive_and_commit(
        self, meta: UploadMeta, att: Attachment, chunks: AsyncIterator[bytes]
    ) -> tuple[Attachment, PushOperation]:
        digest = hashlib.sha256()
        # Receiving and writing overlap: a writer task stores pieces while the next ones arrive. The
        # queue holds two pieces, so memory stays flat whatever the file size.
        queue: asyncio.Queue[tuple[int, int, bytes] | None] = asyncio.Queue(maxsize=2)

        async def write() -> None:
            while (item := await queue.get()) is not None:
                await self._put_piece(meta.company_id, att.id, *item)

        async def receive() -> None:
            writer = asyncio.ensure_future(write())
            try:
                pending, seq, start = bytearray(), 0, 0
                while (chunk := await self.next_message(chunks)) is not None:
                    att.file_size += len(chunk)
                    rules.check_size(att.file_size, self.limits)
                    digest.update(chunk)
                    pending += chunk
                    while len(pending) >= store.CHUNK_BYTES:
                        piece = bytes(pending[: store.CHUNK_BYTES])
                        del pending[: store.CHUNK_BYTES]
                        await _put(queue, writer, (seq, start, piece))
                        seq, start = seq + 1, start + len(piece)
                if pending:
                    await _put(queue, writer, (seq, start, bytes(pending)))
                await _put(queue, writer, None)
                await writer  # raises the writer's error, if any
            finally:
                if not writer.done():
                    writer.cancel()
                    await asyncio.gather(writer, return_exceptions=True)

        await self._refusing(meta.company_id, receive())
        att.sha256 = digest.hexdigest()

        async with self.uow(meta.company_id, "UploadAttachment") as uow:
            # Under the invoice's row lock: an upload that began before a void cannot land on the VOID
            # invoice, and concurrent uploads queue here for the count limit (the loser stores nothing).
            inv = await uow.invoices.get_for_update(att.invoice_id)
            if inv.status is Status.VOID:
                raise FailedPrecondition(f"invoice {inv.id} is VOID: nothing can be attached", f"invoices/{inv.id}")
            conn = await uow.connection()
            rules.check_count(await store.count(conn, inv.company_id, inv.id) + 1, self.limits, inv.id)
            att.date_created = att.modified_date = uow.now
            if not await store.commit(conn, inv.company_id, att):
                raise Aborted(f"the upload of attachment {att.id} expired; upload the file again")
            uow.record(Change(ChangeType.ATTACHMENT_UPLOADED, inv.id, attachment_id=att.id))
            await uow.commit()
        return att, uow.operation

    # -- metadata ---------------------------------------------------------------------------

    async def list_for(self, company_id: str, invoice_key: str) -> list[Attachment]:
        require_company(company_id)
        async with connection(self.pool) as conn:
            inv = await self._invoice(conn, company_id, invoice_key)
            return await store.list_for(conn, inv.company_id, inv.id)

    async def get(self, company_id: str, invoice_key: str, attachment_id: str) -> Attachment:
        require_company(company_id)
        async with connection(self.pool) as conn:
            inv = await self._invoice(conn, company_id, invoice_key)
            att = await store.get(conn, inv.company_id, inv.id, attachment_id)
        if att is None:
            raise NotFound("attachment", attachment_id)
        return att

    async def delete(
        self, company_id: str, invoice_key: str, attachment_id: str, *, run: AsyncRun | None = None
    ) -> PushOperation:
        async with self.uow(company_id, "DeleteAttachment", run=run) as uow:
            inv = await uow.invoices.get_for_update(invoice_key)
            conn = await uow.connection()
            att = await store.get(conn, inv.company_id, inv.id, attachment_id)
            if att is None:
                raise NotFound("attachment", attachment_id)
            await store.delete(conn, inv.company_id, att.id)
            uow.record(Change(ChangeType.DELETED, att.id, "attachments"))
            await uow.commit()
        return uow.operation

    # -- download ---------------------------------------------------------------------------

    async def download(
        self, company_id: str, invoice_key: str, attachment_id: str, offset: int
    ) -> AsyncIterator[tuple[Attachment | None, int, bytes]]:
        """(attachment on the first chunk only, offset, bytes): one stored chunk per message, the next one
        read while this one is sent; a connection is held only while reading a chunk."""
        att = await self.get(company_id, invoice_key, attachment_id)
        if not 0 <= offset <= att.file_size:
            raise InvalidArgument([FieldViolation("offset", f"must be between 0 and the file size {att.file_size}")])

        async def read(seq: int) -> list[tuple[int, bytes]]:
            async with connection(self.pool) as conn:
                return await store.chunks(conn, company_id, att.id, seq, READ_PIECES)

        async with connection(self.pool) as conn:
            seq = await store.first_seq(conn, company_id, att.id, offset)
        first: Attachment | None = att
        position = offset
        pending = asyncio.ensure_future(read(seq))
        try:
            while True:
                pieces = await pending
                if not pieces:
                    break
                seq += len(pieces)
                pending = asyncio.ensure_future(read(seq))  # the next pieces while these are sent
                if pieces[0][0] > position:  # a gap: the pieces were removed between two reads
                    break
                data = b"".join(p for _, p in pieces)
                skip = max(0, position - pieces[0][0])
                body = memoryview(data)[skip:]
                for at in range(0, len(body), MESSAGE_BYTES):
                    piece = bytes(body[at : at + MESSAGE_BYTES])
                    yield first, position, piece
                    first, position = None, position + len(piece)
            if position != att.file_size:
                # Deleted while it streamed: the pieces ended early. Never end OK with part of the file.
                raise Aborted(f"attachment {att.id} was deleted during the download; {position} bytes were sent")
            if first is not None:  # an empty file, or an offset at its end: still say what it is
                yield first, position, b""
        finally:
            if not pending.done():
                pending.cancel()

    # -- PDF and e-mail ---------------------------------------------------------------------

    async def pdf(self, company_id: str, invoice_key: str) -> tuple[str, bytes]:
        require_company(company_id)
        async with connection(self.pool) as conn:
            inv = await self._invoice(conn, company_id, invoice_key)
            profile = await profiles.for_invoice(conn, inv)  # a draft's seller; the logo issued with
        data = await asyncio.to_thread(pdf.render, inv, self.seller, profile)  # CPU work off the event loop
        return pdf.file_name(inv), data

    async def send(
        self,
        company_id: str,
        invoice_key: str,
        to: list[str],
        subject: str,
        body: str,
        request: bytes,
        request_id: str,
        *,
        run: AsyncRun | None = None,
    ) -> tuple[Invoice, PushOperation]:
        return await self.outbox.send(company_id, invoice_key, to, subject, body, request, request_id, run=run)
