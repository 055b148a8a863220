"""ListInvoices and the customer summary: parse, then stream keyset batches of stored documents."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.domain.filtering import FilterError, Node, parse_filter, parse_order_by
from service.domain.ids import parse_id
from service.domain.models import Invoice
from service.domain.values import start_of_day
from service.handlers.writes import require_company
from service.store import invoices as store
from service.store import listing
from service.store.db import connection
from service.store.listing import Order, Page, Position

DEFAULT_PAGE = 100
MAX_PAGE = 5000


@dataclass(frozen=True, slots=True)
class Batch:
    body: bytes  # the stored documents (each framed as field 1 of a response), concatenated in order
    count: int
    next_page_token: str
    total: int | None = None


@dataclass(frozen=True, slots=True)
class CurrencySummary:
    currency: str
    invoiced_count: int
    invoiced_amount: Decimal
    unpaid_count: int
    unpaid_amount: Decimal
    overdue_count: int
    overdue_amount: Decimal


@dataclass(frozen=True, slots=True)
class ListQuery:
    company_id: str
    filter: str = ""
    order_by: str = ""
    page_size: int = 0
    page_token: str = ""
    max_results: int = 0
    include_total: bool = False


def _bad(field: str, error: FilterError | str) -> InvalidArgument:
    text = error if isinstance(error, str) else f"position {error.position}, near {error.token!r}: {error.message}"
    return InvalidArgument([FieldViolation(field, text)])


_SNAPSHOT = re.compile(r"(?:[0-9]{1,20}:[0-9]{1,20}:(?:[0-9]{1,20}(?:,[0-9]{1,20})*)?)?")  # pg_snapshot text


def _snapshot_ok(text: str) -> bool:
    """Whether PostgreSQL takes `text` as a pg_snapshot: the syntax and its rules (0 < xmin <= xmax, each
    in-progress id in [xmin, xmax), ascending), so a forged token is refused here, naming page_token."""
    if not _SNAPSHOT.fullmatch(text):
        return False
    if not text:
        return True
    xmin_s, xmax_s, xip_s = text.split(":")
    xmin, xmax = int(xmin_s), int(xmax_s)
    xip = [int(x) for x in xip_s.split(",")] if xip_s else []
    return 0 < xmin <= xmax < 2**63 and all(xmin <= x < xmax for x in xip) and xip == sorted(xip)


class PageTokens:
    """Opaque, signed page tokens bound to the listing (invoices, push operations), company, filter and
    order they were issued for."""

    MAX_LENGTH = 65536  # above any token this service issues (a snapshot lists the transactions in flight)

    def __init__(self, secret: bytes, resource: str = "invoices") -> None:
        self.secret = secret
        self.resource = resource

    def scoped(self, resource: str) -> PageTokens:
        """The same secret for another listing: its tokens are refused here and ours there."""
        return PageTokens(self.secret, resource)

    def _bound(self, scope: str) -> str:
        return hashlib.sha256(f"{self.resource}\0{scope}".encode()).hexdigest()[:16]

    def _binding(self, q: ListQuery) -> str:
        return self._bound(self._scope(q))

    def sign(self, scope: str, data: dict[str, Any]) -> str:
        """A token carrying `data`, valid for this listing and `scope` (what the listing is of) only."""
        raw = json.dumps({"b": self._bound(scope), **data}).encode()
        mac = hmac.new(self.secret, raw, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + raw).decode().rstrip("=")

    def verify(self, scope: str, token: str) -> dict[str, Any]:
        """The data of a token this service signed for this listing and scope; INVALID_ARGUMENT otherwise."""
        try:
            if len(token) > self.MAX_LENGTH:
                raise ValueError("too long")
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, raw = blob[:16], blob[16:]
            if not hmac.compare_digest(mac, hmac.new(self.secret, raw, hashlib.sha256).digest()[:16]):
                raise ValueError("signature")
            data = json.loads(raw)
            if not isinstance(data, dict):  # a signed body of another shape (the default secret is public)
                raise ValueError("not an object")
        except (ValueError, TypeError, RecursionError) as exc:
            raise _bad("page_token", "is not a token this service issued") from exc
        if data.get("b") != self._bound(scope):
            raise _bad(
                "page_token",
                f"was issued for another company, filter or order_by, or another listing than {self.resource}",
            )
        return data

    @staticmethod
    def _scope(q: ListQuery) -> str:
        return f"{q.company_id}\0{q.filter}\0{q.order_by}"

    def encode(self, q: ListQuery, pos: Position, snapshot: str = "") -> str:
        data: dict[str, Any] = {"k": [listing.json_key(k) for k in pos.keys], "i": pos.id}
        if snapshot:
            data["s"] = snapshot
        return self.sign(self._scope(q), data)

    def decode(self, q: ListQuery, order: Order) -> tuple[Position | None, str]:
        """Where the previous page ended, and the snapshot the listing keeps to ("" when none)."""
        if not q.page_token:
            return None, ""
        data = self.verify(self._scope(q), q.page_token)
        try:
            keys = tuple(listing.from_json_key(k, spec) for k, (spec, _) in zip(data["k"], order, strict=True))
            position_id = parse_id(str(data["i"]))
            snapshot = data.get("s", "")
            if position_id is None or not isinstance(snapshot, str) or not _snapshot_ok(snapshot):
                raise ValueError("not an id or a snapshot")
            return Position(keys, position_id), snapshot
        except (KeyError, TypeError, ValueError, ArithmeticError, RecursionError) as exc:
            raise _bad("page_token", "is not a token this service issued") from exc


class ListingHandlers:
    def __init__(self, pool: asyncpg.Pool, render: Callable[[Invoice], bytes], tokens: PageTokens, budget: int) -> None:
        self.pool = pool
        self.render = render
        self.tokens = tokens
        self.budget = budget  # bytes of invoices per streamed message
        self.fold: str | None = None  # the collation folding case in contains-comparisons, once known

    async def _fold(self, conn: asyncpg.Connection) -> str:
        if self.fold is None:
            self.fold = await listing.fold_collation(conn)
        return self.fold

    def _parse(self, q: ListQuery) -> tuple[Node | None, Order, Position | None, str | None, int]:
        require_company(q.company_id)
        v = Violations()
        if q.page_size < 0 or q.page_size > MAX_PAGE:
            v.add("page_size", f"must be between 0 (default {DEFAULT_PAGE}) and {MAX_PAGE}")
        if q.max_results < 0:
            v.add("max_results", "must not be negative")
        v.raise_if_any()
        try:
            node = parse_filter(q.filter)
        except FilterError as exc:
            raise _bad("filter", exc) from exc
        try:
            order = parse_order_by(q.order_by)
        except FilterError as exc:
            raise _bad("order_by", exc) from exc
        after, snapshot = self.tokens.decode(q, order)
        # Orders by a key that can change keep to the first page's snapshot (see README, Pages).
        return node, order, after, (snapshot if listing.needs_snapshot(order) else None), q.page_size or DEFAULT_PAGE

    async def _fetch(
        self, q: ListQuery, node: Node | None, order: Order, after: Position | None, limit: int, snapshot: str | None
    ) -> Page:
        # The connection is held for one statement only: a reader that stalls or leaves holds none.
        async with connection(self.pool) as conn:
            fold = await self._fold(conn)
            page = await listing.fetch_page(conn, q.company_id, node, order, after, limit, self.budget, fold, snapshot)
            if page.missing:  # rows written before documents existed: store theirs once, then read again
                for invoice_id in page.missing:
                    inv = await store.load_invoice(conn, q.company_id, invoice_id)
                    if inv is not None:
                        await store.save_document(conn, inv, self.render(inv))
                page = await listing.fetch_page(
                    conn, q.company_id, node, order, after, limit, self.budget, fold, snapshot
                )
            return page

    async def stream(self, q: ListQuery) -> AsyncIterator[Batch]:
        node, order, after, snapshot, size = self._parse(q)
        total = None
        if q.include_total:
            async with connection(self.pool) as conn:
                total = await listing.count(conn, q.company_id, node, await self._fold(conn))
        remaining = q.max_results or None
        pending = asyncio.ensure_future(self._fetch(q, node, order, after, min(size, remaining or size), snapshot))
        try:
            while True:
                page = await pending
                if snapshot is not None:
                    snapshot = page.snapshot  # a first page's, then the same one
                if remaining is not None:
                    remaining -= page.taken
                go_on = page.more and (remaining is None or remaining > 0)
                if go_on:  # fetch the next batch while this one is being sent
                    pending = asyncio.ensure_future(
                        self._fetch(q, node, order, page.last, min(size, remaining or size), snapshot)
                    )
                more = page.more and page.last is not None
                token = self.tokens.encode(q, page.last, snapshot or "") if more and page.last is not None else ""
                yield Batch(page.body, page.taken, token, total)
                total = None
                if not go_on:
                    return
        finally:
            if not pending.done():
                pending.cancel()

    async def customer_summary(self, company_id: str, customer_id: str) -> list[CurrencySummary]:
        require_company(company_id)
        today = start_of_day(datetime.now(UTC).date())
        async with connection(self.pool) as conn:
            rows = await listing.customer_summary(conn, company_id, customer_id, today)
        return [
            CurrencySummary(
                r["currency"],
                r["invoiced_count"],
                r["invoiced_amount"],
                r["unpaid_count"],
                r["unpaid_amount"],
                r["overdue_count"],
                r["overdue_amount"],
            )
            for r in rows
        ]
