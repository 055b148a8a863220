"""The record every write leaves behind (Codat push operation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from service.domain.errors import FieldViolation


@dataclass(frozen=True, slots=True)
class AsyncRun:
    """A worker applying a PENDING operation: the write completes that operation instead of leaving a new one.
    Passed explicitly from the worker through the servicer to the use case (no context variable)."""

    key: str
    owner: str
    requested_on_utc: datetime


class PushStatus(StrEnum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"


class EventType(StrEnum):
    INVOICE_CREATED = "INVOICE_CREATED"
    INVOICE_MODIFIED = "INVOICE_MODIFIED"
    INVOICE_FINALIZED = "INVOICE_FINALIZED"
    INVOICE_PAID = "INVOICE_PAID"
    INVOICE_VOIDED = "INVOICE_VOIDED"
    INVOICE_DELETED = "INVOICE_DELETED"
    ATTACHMENT_UPLOADED = "ATTACHMENT_UPLOADED"
    COMMUNICATION_TRIGGERED = "COMMUNICATION_TRIGGERED"
    PUSH_OPERATION_STATUS_CHANGED = "PUSH_OPERATION_STATUS_CHANGED"
    CREDIT_NOTE_CREATED = "CREDIT_NOTE_CREATED"
    CREDIT_NOTE_ISSUED = "CREDIT_NOTE_ISSUED"
    CREDIT_NOTE_VOIDED = "CREDIT_NOTE_VOIDED"
    CREDIT_NOTE_MODIFIED = "CREDIT_NOTE_MODIFIED"
    INVOICE_REFUNDED = "INVOICE_REFUNDED"


class ChangeType(StrEnum):
    CREATED = "CREATED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    ATTACHMENT_UPLOADED = "ATTACHMENT_UPLOADED"


@dataclass(frozen=True, slots=True)
class Change:
    type: ChangeType
    record_id: str
    data_type: str = "invoices"
    attachment_id: str = ""
    # The event this change appends to the feed (default: from `type`), and its payload if any.
    event: str = field(default="", compare=False)
    payload: bytes | None = field(default=None, compare=False, repr=False)
    recorded: bool = field(default=True, compare=False)  # listed in the push operation's changes


@dataclass(slots=True)
class PushOperation:
    key: str
    company_id: str
    operation: str
    status: PushStatus
    status_code: int
    requested_on_utc: datetime
    completed_on_utc: datetime | None = None
    data_type: str = "invoices"
    error_message: str = ""
    errors: list[FieldViolation] = field(default_factory=list)
    warnings: list[FieldViolation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    timeout_in_minutes: int = 0
