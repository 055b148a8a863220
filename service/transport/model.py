"""GetInvoiceModel: the Codat-style create/update model, derived from the proto schema itself.

Types, required flags, enum options and descriptions come from the descriptors (descriptions
from the proto comments in the generated descriptor set), so the model cannot drift from the API.
"""

from __future__ import annotations

import functools
from pathlib import Path

import invoices.v1
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from invoices.v1 import invoice_pb2
from invoices.v1 import invoice_service_pb2 as svc

from service.vendors.codat import CODAT
from service.vendors.fields import Kind
from service.vendors.flexprice import FLEXPRICE
from service.vendors.shapes import ListMap, Shape
from service.vendors.zuora import ZUORA

VENDOR_TABLES = {v.name: v for v in (CODAT, FLEXPRICE, ZUORA)}

# String fields that carry exact decimals or dates: proto has no decimal type, so they are named here.
DECIMAL_FIELDS = frozenset(
    {
        "quantity",
        "unit_amount",
        "discount_amount",
        "discount_percentage",
        "sub_total",
        "tax_amount",
        "total_amount",
        "effective_tax_rate",
        "tax_rate",
        "exempt_amount",
        "currency_rate",
        "amount",
        "additional_tax_amount",
        "additional_tax_percentage",
        "total_tax_amount",
        "total_discount",
        "amount_due",
        "applied_amount",
        "amount_paid",
        "amount_credited",
        "balance",
        "cash_rounding_increment",
        "cash_rounding_amount",
        "payable_amount",
        "taxable_amount",
        "converted_amount",
        "rate",
        "charge_amount",
        "charge_percentage",
        "base_amount",
        "percentage",
        "allowance_total_amount",
        "charge_total_amount",
    }
)
DATE_FIELDS = frozenset({"issue_date", "due_date", "tax_date", "service_start_date", "service_end_date"})
RULES = [
    (
        "totalAmount",
        "With lineItems the service computes every total, each amount rounded to the currency's minor "
        "unit; sent totals must equal the computed ones exactly.",
    ),
    ("amountDue", "amountDue = totalAmount + cashRoundingAmount - payment allocations - credit memos, never negative."),
    ("status", "New invoices are DRAFT (default) or SUBMITTED; numbers are assigned at finalization."),
    ("lineItems", "At most 1,000 line items, 5 taxation items each."),
]


@functools.cache
def _comments() -> dict[tuple[str, str], str]:
    path = Path(next(iter(invoices.v1.__path__))) / "descriptor_set.binpb"
    out: dict[tuple[str, str], str] = {}
    if not path.exists():
        return out
    fds = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes())
    for f in fds.file:
        for loc in f.source_code_info.location:
            p = list(loc.path)
            # [4, message, 2, field] is a top-level message's field.
            if len(p) == 4 and p[0] == 4 and p[2] == 2:
                msg = f.message_type[p[1]]
                out[(f"{f.package}.{msg.name}", msg.field[p[3]].name)] = loc.leading_comments.strip()
    return out


def _behaviors(field: FieldDescriptor) -> list[int]:
    opts = field.GetOptions()
    return list(opts.Extensions[field_behavior_pb2.field_behavior])


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _option(field: FieldDescriptor, depth: int) -> svc.PushOption:
    out = svc.PushOption(
        display_name=_title(field.name),
        description=_comments().get((field.containing_type.full_name if field.containing_type else "", field.name), ""),
        required=field_behavior_pb2.REQUIRED in _behaviors(field),
    )
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        out.type = svc.PUSH_OPTION_TYPE_OBJECT
        return out
    if field.is_repeated:
        out.type = svc.PUSH_OPTION_TYPE_ARRAY
        if field.message_type is not None and depth < 4:
            _fill(out, field.message_type, depth + 1)
        return out
    if field.message_type is not None:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            out.type = svc.PUSH_OPTION_TYPE_DATE_TIME
        else:
            out.type = svc.PUSH_OPTION_TYPE_OBJECT
            if name != "google.protobuf.Struct" and depth < 4:
                _fill(out, field.message_type, depth + 1)
    elif field.enum_type is not None:
        out.type = svc.PUSH_OPTION_TYPE_STRING
        prefix = field.enum_type.values[0].name.removesuffix("UNSPECIFIED")
        for value in field.enum_type.values[1:]:
            short = value.name.removeprefix(prefix)
            out.options.add(value=value.name, display_name=_title(short.lower()), description=short)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        out.type = svc.PUSH_OPTION_TYPE_BOOLEAN
    elif field.name in DECIMAL_FIELDS:
        out.type = svc.PUSH_OPTION_TYPE_NUMBER
        out.validation.information.add(
            field=field.json_name,
            details='Exact decimal as a string, e.g. "1234.56": up to 9 decimal places.',
        )
    elif field.name in DATE_FIELDS:
        out.type = svc.PUSH_OPTION_TYPE_DATE_TIME
        out.validation.information.add(
            field=field.json_name, details="ISO 8601: UTC (Z), with an offset, or unqualified (read as UTC)."
        )
    else:
        out.type = svc.PUSH_OPTION_TYPE_STRING
        if field.name == "currency":
            out.validation.warnings.add(field=field.json_name, details="ISO 4217 code; XXX when unknown.")
    return out


def _fill(out: svc.PushOption, message: Descriptor, depth: int) -> None:
    for field in message.fields:
        if field_behavior_pb2.OUTPUT_ONLY in _behaviors(field):
            continue
        out.properties[field.json_name].CopyFrom(_option(field, depth))


@functools.cache
def invoice_model() -> svc.PushOption:
    model = svc.PushOption(
        type=svc.PUSH_OPTION_TYPE_OBJECT,
        display_name="Invoice",
        description="Create/update model of an invoice, derived from invoices.v1.Invoice.",
        required=True,
    )
    _fill(model, invoice_pb2.Invoice.DESCRIPTOR, 0)
    for field, details in RULES:
        model.validation.information.add(field=field, details=details)
    return model


# -- vendor shapes ---------------------------------------------------------------------------------

_VENDOR_TYPES = {
    Kind.NUMBER: svc.PUSH_OPTION_TYPE_NUMBER,
    Kind.DECIMAL_STRING: svc.PUSH_OPTION_TYPE_STRING,
    Kind.TEXT: svc.PUSH_OPTION_TYPE_STRING,
    Kind.BOOL: svc.PUSH_OPTION_TYPE_BOOLEAN,
    Kind.DATETIME: svc.PUSH_OPTION_TYPE_DATE_TIME,
    Kind.DATE: svc.PUSH_OPTION_TYPE_DATE_TIME,
    Kind.DAY: svc.PUSH_OPTION_TYPE_DATE_TIME,
    Kind.DAY_TIME: svc.PUSH_OPTION_TYPE_DATE_TIME,
    Kind.CURRENCY: svc.PUSH_OPTION_TYPE_STRING,
    Kind.ENUM: svc.PUSH_OPTION_TYPE_STRING,
    Kind.STRING_MAP: svc.PUSH_OPTION_TYPE_OBJECT,
    Kind.CONSTANT: svc.PUSH_OPTION_TYPE_STRING,
}
_VENDOR_RULES = {
    Kind.NUMBER: "A JSON number with at most 9 decimal places.",
    Kind.DECIMAL_STRING: 'A decimal string such as "12.50", at most 9 decimal places.',
    Kind.CURRENCY: "ISO 4217 code.",
    Kind.DATETIME: "ISO 8601 date-time: UTC (Z), with an offset, or unqualified.",
    Kind.DATE: "YYYY-MM-DD.",
    Kind.DAY: "YYYY-MM-DD.",
}


def _node(parent: svc.PushOption, dotted: str) -> svc.PushOption:
    """The option at a dotted vendor path, creating objects on the way (customerRef.id)."""
    node = parent
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.properties[part]
        node.type = svc.PUSH_OPTION_TYPE_OBJECT
        node.display_name = node.display_name or part
    return node.properties[parts[-1]]


def _vendor_shape(out: svc.PushOption, shape: Shape) -> None:
    for fm in shape.fields:
        option = _node(out, fm.vendor)
        option.display_name = fm.vendor.rsplit(".", 1)[-1]
        if isinstance(fm, ListMap):
            option.type = svc.PUSH_OPTION_TYPE_ARRAY
            _vendor_shape(option, fm.shape)
            continue
        option.type = _VENDOR_TYPES[fm.kind]
        option.required = fm.required
        option.description = f"{fm.attr} in the canonical invoice"
        for value in (fm.values or {}) if fm.kind is Kind.ENUM else ():
            option.options.add(value=value, display_name=value)
        if fm.kind is Kind.CONSTANT:
            option.options.add(value=fm.const, display_name=fm.const, description=fm.why)
        if fm.kind in _VENDOR_RULES:
            option.validation.information.add(field=fm.vendor, details=_VENDOR_RULES[fm.kind])


@functools.cache
def vendor_model(vendor: str) -> svc.PushOption:
    """A vendor's create/update model, derived from the same table that maps its fields both ways."""
    model = svc.PushOption(
        type=svc.PUSH_OPTION_TYPE_OBJECT,
        display_name=f"{vendor} invoice",
        required=True,
        description=f"An invoice in {vendor}'s own shape, as ImportInvoice reads and ExportInvoice writes it.",
    )
    _vendor_shape(model, VENDOR_TABLES[vendor].shape)
    return model
