"""Proto <-> domain conversion. Input checks that are about shape (a decimal, a date, a length)
happen here, with the proto field path in each violation; business rules stay in the domain."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import push_operation_pb2 as push_pb

from service.domain import models as m
from service.domain import money
from service.domain.attachments import Attachment
from service.domain.errors import Violations
from service.domain.push import PushOperation
from service.domain.totals import tax_breakdown
from service.domain.values import (
    LONG_TEXT,
    ZERO,
    check_metadata,
    check_text,
    fmt_date,
    fmt_datetime,
    fmt_decimal,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
)
from service.transport import parties

E = TypeVar("E", bound=StrEnum)
MAX_JSON_BYTES = 64 * 1024
MAX_ALLOWANCE_CHARGES = 100
# Output-only Invoice fields: ignored on input (AIP-203), never part of an implicit update mask.
OUTPUT_ONLY = frozenset(
    {
        "id",
        "company_id",
        "modified_date",
        "void_reason",
        "amount_paid",
        "amount_credited",
        "credit_memos",
        "create_time",
        "finalize_time",
        "void_time",
        "sent_time",
        "etag",
        "is_deleted",
        "cash_rounding_amount",
        "payable_amount",
        "tax_breakdown",
        "seller",
        "payment_terms",
        "payment_means",
        "allowance_total_amount",
        "charge_total_amount",
        "amount_refunded",
    }
)


# -- scalars ------------------------------------------------------------------------------------


def enum_in(v: Violations, path: str, wrapper: Any, number: int, target: type[E]) -> E | None:
    """A proto enum number to the domain enum; 0 is "not set", unknown numbers are refused."""
    if number == 0:
        return None
    try:
        name = wrapper.Name(number)
    except ValueError:
        v.add(path, f"unknown enum value {number}")
        return None
    prefix = wrapper.Name(0).removesuffix("UNSPECIFIED")
    return target(name.removeprefix(prefix))


def enum_out(wrapper: Any, value: StrEnum | None) -> Any:
    if value is None:
        return 0
    prefix = wrapper.Name(0).removesuffix("UNSPECIFIED")
    return wrapper.Value(prefix + value.value)


def ts_in(v: Violations, path: str, msg: Message, field: str) -> datetime | None:
    if not msg.HasField(field):
        return None
    ts: Timestamp = getattr(msg, field)
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        v.add(f"{path}.{field}", "is not a valid timestamp between years 1 and 9999")
        return None


def ts_out(msg: Message, field: str, value: datetime | None) -> None:
    if value is not None:
        getattr(msg, field).FromDatetime(value)


def _json(v: Violations, path: str, value: Any) -> Any:
    if value and len(json.dumps(value)) > MAX_JSON_BYTES:
        v.add(path, f"must be at most {MAX_JSON_BYTES} bytes as JSON")
    return value


def _to_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


# -- lines and taxation -------------------------------------------------------------------------


def taxation_in(msg: pb.TaxationItem, v: Violations, path: str) -> m.TaxationItem:
    for name in (
        "name",
        "tax_code",
        "tax_code_description",
        "tax_rate_description",
        "jurisdiction",
        "location_code",
        "exemption_reason_code",
    ):
        check_text(v, f"{path}.{name}", getattr(msg, name))
    check_text(v, f"{path}.exemption_reason", msg.exemption_reason, limit=LONG_TEXT)
    rate_type = enum_in(v, f"{path}.tax_rate_type", pb.TaxRateType, msg.tax_rate_type, m.TaxRateType)
    return m.TaxationItem(
        line_item_id=msg.line_item_id,
        name=msg.name,
        tax_rate=parse_decimal(v, f"{path}.tax_rate", msg.tax_rate, minimum=ZERO),
        tax_amount=parse_decimal(v, f"{path}.tax_amount", msg.tax_amount),
        tax_rate_type=rate_type or m.TaxRateType.PERCENTAGE,
        exempt_amount=parse_decimal(v, f"{path}.exempt_amount", msg.exempt_amount, minimum=ZERO),
        tax_code=msg.tax_code,
        tax_code_description=msg.tax_code_description,
        tax_rate_description=msg.tax_rate_description,
        jurisdiction=msg.jurisdiction,
        location_code=msg.location_code,
        tax_date=parse_date(v, f"{path}.tax_date", msg.tax_date),
        tax_category=enum_in(v, f"{path}.tax_category", pb.TaxCategory, msg.tax_category, m.TaxCategory),
        exemption_reason=msg.exemption_reason,
        exemption_reason_code=msg.exemption_reason_code,
    )


def taxation_out(t: m.TaxationItem, cur: str = "") -> pb.TaxationItem:
    rate = money.fmt(t.tax_rate, cur) if t.tax_rate_type is m.TaxRateType.FLAT_FEE else fmt_decimal(t.tax_rate)
    out = pb.TaxationItem(
        id=t.id,
        line_item_id=t.line_item_id,
        name=t.name,
        tax_rate=rate,
        tax_amount=money.fmt(t.tax_amount, cur),
        tax_code=t.tax_code,
        tax_code_description=t.tax_code_description,
        jurisdiction=t.jurisdiction,
        location_code=t.location_code,
        tax_date=fmt_date(t.tax_date),
        tax_rate_type=enum_out(pb.TaxRateType, t.tax_rate_type),
        exempt_amount=money.fmt(t.exempt_amount, cur),
        tax_rate_description=t.tax_rate_description,
        tax_category=enum_out(pb.TaxCategory, t.tax_category),
        exemption_reason=t.exemption_reason,
        exemption_reason_code=t.exemption_reason_code,
    )
    ts_out(out, "create_time", t.create_time)
    return out


def line_in(msg: pb.LineItem, v: Violations, path: str) -> m.LineItem:
    check_text(v, f"{path}.description", msg.description, limit=LONG_TEXT)
    check_text(v, f"{path}.charge_reason", msg.charge_reason, limit=LONG_TEXT)
    for name in ("sku", "unit_of_measure", "price_id", "charge_reason_code"):
        check_text(v, f"{path}.{name}", getattr(msg, name))
    if msg.HasField("tax_rate_ref"):
        parse_decimal(v, f"{path}.tax_rate_ref.effective_tax_rate", msg.tax_rate_ref.effective_tax_rate)
    refs: dict[str, Any] = {
        name: _to_dict(getattr(msg, name))
        for name in ("item_ref", "account_ref", "tax_rate_ref", "tracking")
        if msg.HasField(name)
    }
    if msg.tracking_category_refs:
        refs["tracking_category_refs"] = [_to_dict(r) for r in msg.tracking_category_refs]
    if len(msg.taxation_items) > 5:
        v.add(f"{path}.taxation_items", f"at most 5 per line; got {len(msg.taxation_items)}")
    return m.LineItem(
        quantity=parse_decimal(v, f"{path}.quantity", msg.quantity, required=True, minimum=ZERO) or ZERO,
        unit_amount=parse_decimal(v, f"{path}.unit_amount", msg.unit_amount, required=True) or ZERO,
        description=msg.description,
        discount_amount=parse_decimal(v, f"{path}.discount_amount", msg.discount_amount, minimum=ZERO),
        discount_percentage=parse_decimal(
            v, f"{path}.discount_percentage", msg.discount_percentage, minimum=ZERO, maximum=Decimal(100)
        ),
        charge_amount=parse_decimal(v, f"{path}.charge_amount", msg.charge_amount, minimum=ZERO),
        charge_percentage=parse_decimal(
            v, f"{path}.charge_percentage", msg.charge_percentage, minimum=ZERO, maximum=Decimal(100)
        ),
        charge_reason=msg.charge_reason,
        charge_reason_code=msg.charge_reason_code,
        sub_total=parse_decimal(v, f"{path}.sub_total", msg.sub_total),
        tax_amount=parse_decimal(v, f"{path}.tax_amount", msg.tax_amount),
        total_amount=parse_decimal(v, f"{path}.total_amount", msg.total_amount),
        service_start_date=parse_date(v, f"{path}.service_start_date", msg.service_start_date),
        service_end_date=parse_date(v, f"{path}.service_end_date", msg.service_end_date),
        sku=msg.sku,
        unit_of_measure=msg.unit_of_measure,
        price_id=msg.price_id,
        is_direct_income=msg.is_direct_income,
        refs=_json(v, path, refs),
        metadata=check_metadata(v, f"{path}.metadata", dict(msg.metadata)),
        taxation_items=[taxation_in(t, v, f"{path}.taxation_items[{i}]") for i, t in enumerate(msg.taxation_items)],
    )


def line_out(line: m.LineItem, cur: str = "") -> pb.LineItem:
    out = pb.LineItem(
        id=line.id,
        description=line.description,
        quantity=fmt_decimal(line.quantity),
        unit_amount=fmt_decimal(line.unit_amount),
        discount_amount=money.fmt(line.discount_amount, cur),
        discount_percentage=fmt_decimal(line.discount_percentage),
        charge_amount=money.fmt(line.charge_amount, cur),
        charge_percentage=fmt_decimal(line.charge_percentage),
        charge_reason=line.charge_reason,
        charge_reason_code=line.charge_reason_code,
        sub_total=money.fmt(line.sub_total, cur),
        tax_amount=money.fmt(line.tax_amount, cur),
        total_amount=money.fmt(line.total_amount, cur),
        is_direct_income=line.is_direct_income,
        service_start_date=fmt_date(line.service_start_date),
        service_end_date=fmt_date(line.service_end_date),
        sku=line.sku,
        unit_of_measure=line.unit_of_measure,
        price_id=line.price_id,
        metadata=line.metadata,
        taxation_items=[taxation_out(t, cur) for t in line.taxation_items],
    )
    if line.refs:
        json_format.ParseDict(line.refs, out)
    return out


def allowance_charge_in(msg: pb.AllowanceCharge, v: Violations, path: str) -> m.AllowanceCharge:
    check_text(v, f"{path}.reason", msg.reason, limit=LONG_TEXT)
    check_text(v, f"{path}.reason_code", msg.reason_code)
    return m.AllowanceCharge(
        charge=msg.charge,
        amount=parse_decimal(v, f"{path}.amount", msg.amount, minimum=ZERO),
        base_amount=parse_decimal(v, f"{path}.base_amount", msg.base_amount, minimum=ZERO),
        percentage=parse_decimal(v, f"{path}.percentage", msg.percentage, minimum=ZERO, maximum=Decimal(100)),
        reason=msg.reason,
        reason_code=msg.reason_code,
        tax_category=enum_in(v, f"{path}.tax_category", pb.TaxCategory, msg.tax_category, m.TaxCategory),
        tax_rate=parse_decimal(v, f"{path}.tax_rate", msg.tax_rate, minimum=ZERO),
    )


def allowance_charge_out(ac: m.AllowanceCharge, cur: str) -> pb.AllowanceCharge:
    return pb.AllowanceCharge(
        charge=ac.charge,
        amount=money.fmt(ac.amount, cur),
        base_amount=money.fmt(ac.base_amount, cur),
        percentage=fmt_decimal(ac.percentage),
        reason=ac.reason,
        reason_code=ac.reason_code,
        tax_category=enum_out(pb.TaxCategory, ac.tax_category),
        tax_rate=fmt_decimal(ac.tax_rate),
        tax_amount=money.fmt(ac.tax_amount, cur),
    )


def breakdown_out(b: m.TaxBreakdown, cur: str) -> pb.TaxBreakdown:
    return pb.TaxBreakdown(
        category=b.category,
        tax_rate=fmt_decimal(b.rate),
        taxable_amount=money.fmt(b.taxable_amount, cur),
        tax_amount=money.fmt(b.tax_amount, cur),
        tax_category=enum_out(pb.TaxCategory, b.tax_category),
        exemption_reason=b.exemption_reason,
        exemption_reason_code=b.exemption_reason_code,
    )


# -- payments -----------------------------------------------------------------------------------


def allocation_in(msg: pb.PaymentAllocation, v: Violations, path: str) -> m.PaymentAllocation:
    a = msg.allocation
    apath = f"{path}.allocation"
    if not msg.HasField("allocation"):
        v.add(apath, "is required")
    payment: dict[str, Any] = {}
    if msg.HasField("payment"):
        p = msg.payment
        for name in ("id", "note", "reference"):
            check_text(v, f"{path}.payment.{name}", getattr(p, name), limit=LONG_TEXT if name == "note" else 255)
        parse_decimal(v, f"{path}.payment.total_amount", p.total_amount)
        parse_decimal(v, f"{path}.payment.currency_rate", p.currency_rate, positive=True)
        parse_currency(v, f"{path}.payment.currency", p.currency, required=False)
        if ts_in(v, f"{path}.payment", p, "paid_on_date") is not None or not p.HasField("paid_on_date"):
            payment = _json(v, f"{path}.payment", _to_dict(p))
    return m.PaymentAllocation(
        amount=parse_decimal(v, f"{apath}.total_amount", a.total_amount, required=True, positive=True) or ZERO,
        currency=parse_currency(v, f"{apath}.currency", a.currency, required=False) or "",
        currency_rate=parse_decimal(v, f"{apath}.currency_rate", a.currency_rate, positive=True),
        allocated_on_date=ts_in(v, apath, a, "allocated_on_date"),
        payment=payment,
    )


def allocation_out(a: m.PaymentAllocation, cur: str = "") -> pb.PaymentAllocation:
    out = pb.PaymentAllocation(
        id=a.id,
        allocation=pb.Allocation(
            currency=a.currency,
            currency_rate=fmt_decimal(a.currency_rate),
            total_amount=money.fmt(a.amount, a.currency or cur),
        ),
        applied_amount=money.fmt(a.applied_amount, cur),
        amount_refunded=money.fmt(a.refunded_amount, cur),
        source=a.source.value,
    )
    ts_out(out.allocation, "allocated_on_date", a.allocated_on_date)
    if cur and a.currency and a.currency != cur and a.currency_rate is not None:
        out.fx_conversion.CopyFrom(
            pb.FxConversion(
                from_currency=a.currency,
                to_currency=cur,
                rate=fmt_decimal(a.currency_rate),
                converted_amount=money.fmt(a.applied_amount, cur),
            )
        )
        ts_out(out.fx_conversion, "rate_date", a.allocated_on_date)
    if a.payment:
        json_format.ParseDict(a.payment, out.payment)
    return out


def memo_out(c: m.CreditMemo) -> pb.CreditMemo:
    out = pb.CreditMemo(
        id=c.id,
        invoice_id=c.invoice_id,
        reason=enum_out(pb.CreditMemoReason, c.reason),
        total_amount=money.fmt(c.total_amount, c.currency),
        currency=c.currency,
        comment=c.comment,
        reason_code=c.reason_code,
        credit_note_id=c.credit_note_id,
        credit_note_number=c.credit_note_number,
    )
    ts_out(out, "create_time", c.create_time)
    return out


# -- the invoice --------------------------------------------------------------------------------

_MONEY = (
    "sub_total",
    "additional_tax_amount",
    "additional_tax_percentage",
    "total_tax_amount",
    "discount_percentage",
    "total_discount",
    "total_amount",
    "amount_due",
    "cash_rounding_increment",
)
_AMOUNTS = frozenset(_MONEY) - {"additional_tax_percentage", "discount_percentage"}  # at the currency exponent
_TIMESTAMPS = ("paid_on_date", "source_modified_date", "period_start", "period_end")


def invoice_in(msg: pb.Invoice, v: Violations, path: str = "invoice", paths: Iterable[str] | None = None) -> m.Invoice:
    """Converts a client invoice. With `paths` (an update), only those fields are checked."""
    own = Violations()
    inv = m.Invoice(
        invoice_number=msg.invoice_number,
        customer_id=msg.customer_ref.id,
        customer_name=msg.customer_ref.company_name,
        issue_date=parse_datetime(own, f"{path}.issue_date", msg.issue_date),
        due_date=parse_datetime(own, f"{path}.due_date", msg.due_date),
        currency=parse_currency(own, f"{path}.currency", msg.currency) or "",
        currency_rate=parse_decimal(own, f"{path}.currency_rate", msg.currency_rate, positive=True),
        status=enum_in(own, f"{path}.status", pb.InvoiceStatus, msg.status, m.Status) or m.Status.DRAFT,
        payment_status=enum_in(own, f"{path}.payment_status", pb.PaymentStatus, msg.payment_status, m.PaymentStatus),
        vendor_status=msg.vendor_status,
        note=msg.note,
        invoice_type=enum_in(own, f"{path}.invoice_type", pb.InvoiceType, msg.invoice_type, m.InvoiceType),
        billing_reason=enum_in(own, f"{path}.billing_reason", pb.BillingReason, msg.billing_reason, m.BillingReason),
        subscription_id=msg.subscription_id,
        metadata=check_metadata(own, f"{path}.metadata", dict(msg.metadata)),
        lines=[line_in(x, own, f"{path}.line_items[{i}]") for i, x in enumerate(msg.line_items)],
        allowance_charges=[
            allowance_charge_in(a, own, f"{path}.allowance_charges[{i}]") for i, a in enumerate(msg.allowance_charges)
        ],
        allocations=[
            allocation_in(a, own, f"{path}.payment_allocations[{i}]") for i, a in enumerate(msg.payment_allocations)
        ],
        rounding_mode=enum_in(own, f"{path}.rounding_mode", pb.RoundingMode, msg.rounding_mode, money.Rounding),
        tax_mode=enum_in(own, f"{path}.tax_rounding_mode", pb.TaxRoundingMode, msg.tax_rounding_mode, money.TaxMode),
    )
    for name in _MONEY:
        limit = Decimal(100) if name.endswith("percentage") else None
        setattr(inv, name, parse_decimal(own, f"{path}.{name}", getattr(msg, name), maximum=limit))
    for name in _TIMESTAMPS:
        setattr(inv, name, ts_in(own, path, msg, name))
    parties.invoice_parties_in(inv, msg, own, path)
    check_text(own, f"{path}.customer_ref.id", msg.customer_ref.id, required=True)
    check_text(own, f"{path}.customer_ref.company_name", msg.customer_ref.company_name)
    check_text(own, f"{path}.note", msg.note, limit=LONG_TEXT)
    for name in ("subscription_id", "vendor_status"):
        check_text(own, f"{path}.{name}", getattr(msg, name))
    if msg.invoice_number:
        check_text(own, f"{path}.invoice_number", msg.invoice_number, limit=64)
        if msg.invoice_number != msg.invoice_number.strip():
            own.add(f"{path}.invoice_number", "must not start or end with whitespace")
    if len(msg.allowance_charges) > MAX_ALLOWANCE_CHARGES:
        own.add(f"{path}.allowance_charges", f"at most {MAX_ALLOWANCE_CHARGES}; got {len(msg.allowance_charges)}")
    for i, w in enumerate(msg.withholding_tax):
        check_text(own, f"{path}.withholding_tax[{i}].name", w.name)
        parse_decimal(own, f"{path}.withholding_tax[{i}].amount", w.amount)
    inv.withholding_tax = _json(own, f"{path}.withholding_tax", [_to_dict(w) for w in msg.withholding_tax])
    inv.sales_order_refs = _json(own, f"{path}.sales_order_refs", [_to_dict(r) for r in msg.sales_order_refs])
    if msg.HasField("supplemental_data"):
        try:
            data = json_format.MessageToDict(msg.supplemental_data)
            inv.supplemental_data = _json(own, f"{path}.supplemental_data", data)
        except (ValueError, RecursionError, json_format.Error):
            own.add(f"{path}.supplemental_data", "must be JSON: finite numbers, nesting at most 100 deep")
    if paths is None:
        v.items.extend(own.items)
    else:
        prefix = len(path) + 1
        wanted = set(paths)
        v.items.extend(x for x in own.items if x.field[prefix:].split(".")[0].split("[")[0] in wanted)
    return inv


def implicit_paths(msg: pb.Invoice) -> set[str]:
    """AIP-134: with no update mask, every field the client set, output-only ones aside."""
    return {fd.name for fd, _ in msg.ListFields()} - OUTPUT_ONLY


def invoice_out(inv: m.Invoice) -> pb.Invoice:
    out = pb.Invoice(
        id=inv.id,
        company_id=inv.company_id,
        invoice_number=inv.invoice_number,
        customer_ref=pb.CustomerRef(id=inv.customer_id, company_name=inv.customer_name),
        issue_date=fmt_datetime(inv.issue_date),
        due_date=fmt_datetime(inv.due_date),
        currency=inv.currency,
        currency_rate=fmt_decimal(inv.currency_rate),
        line_items=[line_out(x, inv.currency) for x in inv.lines],
        payment_allocations=[allocation_out(a, inv.currency) for a in inv.allocations],
        status=enum_out(pb.InvoiceStatus, inv.status),
        note=inv.note,
        metadata=inv.metadata,
        invoice_type=enum_out(pb.InvoiceType, inv.invoice_type),
        subscription_id=inv.subscription_id,
        billing_reason=enum_out(pb.BillingReason, inv.billing_reason),
        payment_status=enum_out(pb.PaymentStatus, inv.payment_status),
        void_reason=enum_out(pb.VoidReason, inv.void_reason),
        vendor_status=inv.vendor_status,
        amount_paid=money.fmt(inv.amount_paid, inv.currency),
        amount_credited=money.fmt(inv.amount_credited, inv.currency),
        amount_refunded=money.fmt(inv.amount_refunded, inv.currency),
        credit_memos=[memo_out(c) for c in inv.credit_memos],
        etag=inv.etag,
        rounding_mode=enum_out(pb.RoundingMode, inv.rounding_mode),
        tax_rounding_mode=enum_out(pb.TaxRoundingMode, inv.tax_mode),
        cash_rounding_amount=money.fmt(inv.cash_rounding_amount, inv.currency),
        payable_amount=money.fmt(inv.payable_amount, inv.currency) if inv.total_amount is not None else "",
        tax_breakdown=[breakdown_out(b, inv.currency) for b in tax_breakdown(inv)],
        allowance_charges=[allowance_charge_out(a, inv.currency) for a in inv.allowance_charges],
        allowance_total_amount=money.fmt(inv.allowance_total_amount, inv.currency),
        charge_total_amount=money.fmt(inv.charge_total_amount, inv.currency),
    )
    for name in _MONEY:
        value = getattr(inv, name)
        setattr(out, name, money.fmt(value, inv.currency) if name in _AMOUNTS else fmt_decimal(value))
    for name in (*_TIMESTAMPS, "modified_date", "create_time", "finalize_time", "void_time", "sent_time"):
        ts_out(out, name, getattr(inv, name))
    for w in inv.withholding_tax:
        json_format.ParseDict(w, out.withholding_tax.add())
    for r in inv.sales_order_refs:
        json_format.ParseDict(r, out.sales_order_refs.add())
    if inv.supplemental_data is not None:
        out.supplemental_data.update(inv.supplemental_data)
    parties.invoice_parties_out(inv, out)
    return out


def attachment_out(a: Attachment) -> pb.Attachment:
    out = pb.Attachment(
        id=a.id,
        invoice_id=a.invoice_id,
        name=a.name,
        content_type=a.content_type,
        file_size=a.file_size,
        sha256=a.sha256,
        include_when_sent=a.include_when_sent,
    )
    ts_out(out, "date_created", a.date_created)
    ts_out(out, "modified_date", a.modified_date)
    return out


def push_out(op: PushOperation) -> push_pb.PushOperation:
    def items(vs: list[Any]) -> list[push_pb.ValidationItem]:
        return [
            push_pb.ValidationItem(item_id=x.field, message=x.description, validator_name="invoices.v1") for x in vs
        ]

    out = push_pb.PushOperation(
        push_operation_key=op.key,
        company_id=op.company_id,
        data_type=op.data_type,
        status=push_pb.PushOperationStatus.Value(f"PUSH_OPERATION_STATUS_{op.status.value}"),
        status_code=op.status_code,
        error_message=op.error_message,
        validation=push_pb.Validation(errors=items(op.errors), warnings=items(op.warnings)),
        changes=[
            push_pb.PushOperationChange(
                type=push_pb.PushChangeType.Value(f"PUSH_CHANGE_TYPE_{c.type.value}"),
                record_ref=push_pb.RecordRef(id=c.record_id, data_type=c.data_type),
                attachment_id=c.attachment_id,
            )
            for c in op.changes
        ],
        timeout_in_minutes=op.timeout_in_minutes,
        operation=op.operation,
    )
    ts_out(out, "requested_on_utc", op.requested_on_utc)
    ts_out(out, "completed_on_utc", op.completed_on_utc)
    return out
