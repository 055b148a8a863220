"""Reading push operations: one by key, or pages with the ListInvoices filter language."""

from __future__ import annotations

import asyncpg

from service.domain.errors import FieldViolation, InvalidArgument, NotFound, Violations
from service.domain.filtering import PUSH_FIELDS, FieldSpec, FilterError, parse_filter, parse_order_by
from service.domain.push import PushOperation
from service.handlers.listing import DEFAULT_PAGE, MAX_PAGE, ListQuery, PageTokens
from service.handlers.writes import require_company
from service.store import listing
from service.store import push_operations as store
from service.store.db import connection

DEFAULT_ORDER: tuple[tuple[FieldSpec, bool], ...] = ((PUSH_FIELDS["requested_on_utc"], True),)
# Bytes of operations in one ListPushOperations answer: under the 4 MB any client accepts by default.
PAGE_BYTES = 4 * 1024 * 1024 - 256 * 1024


class PushOperationHandlers:
    def __init__(self, pool: asyncpg.Pool, tokens: PageTokens, budget: int = PAGE_BYTES) -> None:
        self.pool = pool
        self.budget = budget
        self.fold: str | None = None  # the collation folding case in contains-comparisons, once known
        self.tokens = tokens.scoped("push_operations")  # a ListInvoices token is refused here

    async def get(self, company_id: str, key: str) -> PushOperation:
        require_company(company_id)
        async with connection(self.pool) as conn:
            op = await store.get(conn, company_id, key)
        if op is None:
            raise NotFound("push operation", key)
        return op

    async def list(self, q: ListQuery) -> tuple[list[PushOperation], str]:
        require_company(q.company_id)
        v = Violations()
        if not 0 <= q.page_size <= MAX_PAGE:
            v.add("page_size", f"must be between 0 (default {DEFAULT_PAGE}) and {MAX_PAGE}")
        v.raise_if_any()
        try:
            node = parse_filter(q.filter, PUSH_FIELDS)
        except FilterError as exc:
            raise InvalidArgument(
                [FieldViolation("filter", f"position {exc.position}, near {exc.token!r}: {exc.message}")]
            ) from exc
        try:
            order = parse_order_by(q.order_by, PUSH_FIELDS, DEFAULT_ORDER)
        except FilterError as exc:
            raise InvalidArgument(
                [FieldViolation("order_by", f"position {exc.position}, near {exc.token!r}: {exc.message}")]
            ) from exc
        after, _ = self.tokens.decode(q, order)
        size = q.page_size or DEFAULT_PAGE
        # First the keys and an upper bound of each operation's size (its JSON is longer than its protobuf),
        # to cut the page under the message budget; then only the operations kept are read whole.
        async with connection(self.pool) as conn:
            if self.fold is None:
                self.fold = await listing.fold_collation(conn)
            sql, params = listing.keyset_query(
                "push_operations",
                f"push_operation_key, {store.SIZE_ESTIMATE} AS size",
                store.FILTER_COLUMNS,
                "push_operation_key",
                q.company_id,
                node,
                order,
                after,
                size + 1,
                self.fold,
            )
            rows = await conn.fetch(sql, *params)
            taken, used = 0, 0
            for row in rows[:size]:
                used += row["size"]
                if taken and used > self.budget:
                    break
                taken += 1
            page = rows[:taken]
            found = await store.get_many(conn, q.company_id, [r["push_operation_key"] for r in page])
        token = ""
        if len(rows) > taken:
            last = page[-1]
            token = self.tokens.encode(
                q, listing.Position(tuple(last[f"k{i}"] for i in range(len(order))), last["push_operation_key"])
            )
        # An operation purged between the two reads is simply left out.
        return [found[r["push_operation_key"]] for r in page if r["push_operation_key"] in found], token
