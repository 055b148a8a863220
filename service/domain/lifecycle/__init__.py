"""The invoice lifecycle (PRODUCT section 5) as pure functions over the aggregate.

Each function checks its rule, then changes the invoice in place. A broken rule raises
FailedPrecondition; bad input raises InvalidArgument. Nothing here does I/O. Callers use
``lifecycle.<name>``; the rules live by concern:

- ``status``: which status an action needs, the status amounts imply, settling after money moved;
- ``create``: a new invoice (create and preview);
- ``update``: which fields may change in each status, applying an update, pricing a draft again;
- ``transitions``: finalize, void, cancel, reverse, write off, delete;
- ``payments``: payments, credit balance, FlexPrice payment status;
- ``invariants``: what every stored invoice satisfies.
"""

from service.domain.lifecycle.create import CREATABLE, MAX_ALLOCATIONS, MAX_LINES, prepare_new
from service.domain.lifecycle.invariants import check_invariants, invariant_breaches
from service.domain.lifecycle.payments import (
    CREDIT_LIMIT,
    SETTABLE_PAYMENT_STATUSES,
    applied_amount,
    attempt_payment,
    check_credit_balance,
    record_payment,
    set_payment_status,
)
from service.domain.lifecycle.status import check_etag, derive_status
from service.domain.lifecycle.transitions import (
    cancel,
    check_can_finalize,
    check_deletable,
    finalize,
    reverse,
    void,
    write_off,
)
from service.domain.lifecycle.update import (
    LIFECYCLE_FIELDS,
    MAX_TAXATION_ITEMS_PER_LINE,
    OPEN_AFTER_FINALIZE,
    OPEN_WHEN_VOID,
    UPDATABLE_FIELDS,
    add_taxation_items,
    apply_update,
    check_update_paths,
    recalculate,
)

__all__ = [
    "CREATABLE",
    "CREDIT_LIMIT",
    "LIFECYCLE_FIELDS",
    "MAX_ALLOCATIONS",
    "MAX_LINES",
    "MAX_TAXATION_ITEMS_PER_LINE",
    "OPEN_AFTER_FINALIZE",
    "OPEN_WHEN_VOID",
    "SETTABLE_PAYMENT_STATUSES",
    "UPDATABLE_FIELDS",
    "add_taxation_items",
    "applied_amount",
    "apply_update",
    "attempt_payment",
    "cancel",
    "check_can_finalize",
    "check_credit_balance",
    "check_deletable",
    "check_etag",
    "check_invariants",
    "check_update_paths",
    "derive_status",
    "finalize",
    "invariant_breaches",
    "prepare_new",
    "recalculate",
    "record_payment",
    "reverse",
    "set_payment_status",
    "void",
    "write_off",
]
