"""Per-company caps on open streams: a stalled stream holds buffers (a list page, upload pieces), so no
company may open more than its share however many connections it uses."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.domain.attachments import LimitExceeded


class StreamQuota:
    """Counts the open server- and client-streaming calls of each company (per process)."""

    def __init__(self, per_company: int) -> None:
        self.per_company = per_company
        self._open: dict[str, int] = {}

    def open(self, company_id: str) -> int:
        return self._open.get(company_id, 0)

    @contextmanager
    def hold(self, company_id: str) -> Iterator[None]:
        """One stream of `company_id` for the duration; over the cap: RESOURCE_EXHAUSTED."""
        count = self._open.get(company_id, 0)
        if count >= self.per_company:
            raise LimitExceeded(
                f"company {company_id!r} already has {count} open streams, the most allowed "
                f"(COMPANY_MAX_STREAMS); close one or wait for it to end",
                f"companies/{company_id}/streams",
            )
        self._open[company_id] = count + 1
        try:
            yield
        finally:
            left = self._open[company_id] - 1
            if left:
                self._open[company_id] = left
            else:
                del self._open[company_id]
