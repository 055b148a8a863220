"""What a filter or order_by may name: each field's type, and every spelling a client may use for it. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from service.domain import models as m


class Kind(StrEnum):
    TEXT = "text"
    DECIMAL = "decimal"
    TIMESTAMP = "timestamp"
    ENUM = "enum"
    ID = "id"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str  # canonical snake_case path
    kind: Kind
    nullable: bool = False
    enum: tuple[str, ...] = ()


def _enum(name: str, values: type[StrEnum], nullable: bool = True) -> FieldSpec:
    return FieldSpec(name, Kind.ENUM, nullable, tuple(v.value for v in values))


_SPECS = [
    FieldSpec("id", Kind.ID),
    FieldSpec("invoice_number", Kind.TEXT, nullable=True),
    FieldSpec("customer_ref.id", Kind.TEXT),
    FieldSpec("customer_ref.company_name", Kind.TEXT),
    FieldSpec("currency", Kind.TEXT),
    FieldSpec("note", Kind.TEXT),
    FieldSpec("subscription_id", Kind.TEXT),
    FieldSpec("vendor_status", Kind.TEXT),
    _enum("status", m.Status, nullable=False),
    _enum("payment_status", m.PaymentStatus),
    _enum("void_reason", m.VoidReason),
    _enum("invoice_type", m.InvoiceType),
    _enum("billing_reason", m.BillingReason),
    *(
        FieldSpec(n, Kind.DECIMAL, nullable=n in ("currency_rate",))
        for n in (
            "total_amount",
            "amount_due",
            "sub_total",
            "total_tax_amount",
            "total_discount",
            "amount_paid",
            "amount_credited",
            "currency_rate",
        )
    ),
    *(
        FieldSpec(n, Kind.TIMESTAMP, nullable=n not in ("create_time", "modified_date"))
        for n in (
            "issue_date",
            "due_date",
            "paid_on_date",
            "modified_date",
            "source_modified_date",
            "create_time",
            "finalize_time",
            "void_time",
            "period_start",
            "period_end",
        )
    ),
]
METADATA_PREFIX = "metadata."
METADATA_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")


def _camel(path: str) -> str:
    return ".".join(re.sub(r"_([a-z0-9])", lambda g: g.group(1).upper(), part) for part in path.split("."))


def _catalog(specs: list[FieldSpec], aliases: Mapping[str, str] | None = None) -> dict[str, FieldSpec]:
    """Each field under its snake_case and camelCase names, and under each alias (alias -> snake_case name)."""
    by_name = {name: spec for spec in specs for name in (spec.name, _camel(spec.name))}
    return by_name | {alias: by_name[target] for alias, target in (aliases or {}).items()}


# Every spelling a client may use: snake_case, camelCase, and the FlexPrice names.
_ALIASES = {
    "customer_id": "customer_ref.id",
    "customerId": "customer_ref.id",
    "invoice_status": "status",
    "invoiceStatus": "status",
    "number": "invoice_number",
    "total": "total_amount",
    "amount_remaining": "amount_due",
    "amountRemaining": "amount_due",
    "subtotal": "sub_total",
    "created_at": "create_time",
    "updated_at": "modified_date",
    "finalized_at": "finalize_time",
    "voided_at": "void_time",
}
FIELDS: dict[str, FieldSpec] = _catalog(_SPECS, _ALIASES)


# ListPushOperations: the same language over push operation fields.
PUSH_FIELDS: dict[str, FieldSpec] = _catalog(
    [
        FieldSpec("push_operation_key", Kind.ID),
        FieldSpec("status", Kind.ENUM, enum=("PENDING", "SUCCESS", "FAILED", "TIMED_OUT")),
        FieldSpec("operation", Kind.TEXT),
        FieldSpec("data_type", Kind.TEXT),
        FieldSpec("status_code", Kind.DECIMAL),
        FieldSpec("error_message", Kind.TEXT),
        FieldSpec("requested_on_utc", Kind.TIMESTAMP),
        FieldSpec("completed_on_utc", Kind.TIMESTAMP, nullable=True),
    ]
)
