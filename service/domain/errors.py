"""Domain errors. The transport maps each to one gRPC status in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class FieldViolation:
    field: str
    description: str


class DomainError(Exception):
    """Base of every error a client can cause."""

    status_code = 400  # HTTP-style code recorded on the FAILED push operation
    push_operation_key = ""  # set once the FAILED operation is persisted

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """Bad input: one or more field violations."""

    def __init__(self, violations: list[FieldViolation], message: str = "") -> None:
        self.violations = violations
        super().__init__(message or "; ".join(f"{v.field}: {v.description}" for v in violations))


@dataclass(frozen=True, slots=True)
class PreconditionViolation:
    type: str  # a rule id (BR-CO-15) or LIFECYCLE
    subject: str  # what to fix (a canonical field, a resource name)
    description: str


class FailedPrecondition(DomainError):
    """A lifecycle rule forbids the call in the resource's current state; `violations` lists several failed
    rules (an e-invoice's), else the one (violation_type, subject, message) is the violation."""

    status_code = 409

    def __init__(
        self,
        message: str,
        subject: str = "",
        violation_type: str = "LIFECYCLE",
        violations: list[PreconditionViolation] | None = None,
    ) -> None:
        super().__init__(message)
        self.subject = subject
        self.violation_type = violation_type
        self.violations = violations or [PreconditionViolation(violation_type, subject, message)]


class NotFound(DomainError):
    status_code = 404

    def __init__(self, resource_type: str, name: str) -> None:
        super().__init__(f"{resource_type} {name!r} not found")
        self.resource_type = resource_type
        self.name = name


class AlreadyExists(DomainError):
    status_code = 409

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class Aborted(DomainError):
    """Optimistic concurrency failure (stale etag)."""

    status_code = 412


class OutOfRange(DomainError):
    """A position the service no longer (or not yet) has, e.g. a feed cursor older than what is kept."""

    status_code = 416

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class InvariantBreach(Exception):
    """A write would store an invoice breaking a section 5 invariant: a bug in a rule, never the client's doing.
    Not a DomainError on purpose: the transaction rolls back and the client gets INTERNAL, logged."""

    def __init__(self, invoice_id: str, breaches: list[str]) -> None:
        super().__init__(f"invoice {invoice_id or '(new)'} breaks invariants: {'; '.join(breaches)}")
        self.breaches = breaches


class Unavailable(Exception):
    """Something outside the service (the database, the mail server) failed; the call may be retried. Not a
    client error: UNAVAILABLE."""


class Contention(Exception):
    """The database chose this transaction as a deadlock or serialization victim: ABORTED, retry the call."""


class DeadlineExceeded(Exception):
    """The database work ran over its statement time limit; nothing was changed: DEADLINE_EXCEEDED."""


@dataclass(slots=True)
class Violations:
    """Collects field violations so a request reports all its problems at once."""

    items: list[FieldViolation] = field(default_factory=list)

    def add(self, path: str, description: str) -> None:
        self.items.append(FieldViolation(path, description))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(list(self.items))
