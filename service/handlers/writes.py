"""Small helpers every use case shares: the clock and the company check. Writes go through
service.handlers.unit_of_work."""

from __future__ import annotations

from datetime import UTC, datetime

from service.domain.errors import Violations
from service.domain.values import check_company_id


def utcnow() -> datetime:
    return datetime.now(UTC)


def require_company(company_id: str) -> None:
    v = Violations()
    check_company_id(v, "company_id", company_id)
    v.raise_if_any()
