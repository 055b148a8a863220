"""GetInvoiceModel: the Codat-style create/update model, derived from the proto schema and the validation.

Types, enum options and descriptions come from the descriptors (descriptions from the proto comments in the
generated descriptor set); vendor models from the vendor tables (every field they or their hooks read or
write). Required flags come from the validation itself: ``probe_required`` starts from an empty invoice and
fills each field the create path reports as required until it accepts, so the model's required fields are
exactly what a create needs, and conditional rules are listed in the validator's own words.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import invoices.v1
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from invoices.v1 import invoice_pb2
from invoices.v1 import invoice_service_pb2 as svc

from service import vendors
from service.domain import lifecycle
from service.domain.errors import FieldViolation, InvalidArgument, Violations
from service.transport import convert
from service.vendors.codat import CODAT
from service.vendors.fields import FieldMap, Kind
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
    (
        "status",
        f"A new invoice is {' or '.join(sorted(lifecycle.CREATABLE))} (DRAFT by default; PARTIALLY_PAID and PAID "
        "with payment allocations that make it so); numbers are assigned at finalization. ImportInvoice also "
        "takes VOID: a vendor's history, kept as given.",
    ),
    (
        "lineItems",
        f"At most {lifecycle.MAX_LINES:,} line items, {lifecycle.MAX_TAXATION_ITEMS_PER_LINE} taxation items each.",
    ),
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
    for path, words in canonical_required().items():
        _mark(model, _json_path(path), words)
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
    for fm in shape.every_field():
        option = _node(out, fm.vendor)
        option.display_name = fm.vendor.rsplit(".", 1)[-1]
        if isinstance(fm, ListMap):
            option.type = svc.PUSH_OPTION_TYPE_ARRAY
            _vendor_shape(option, fm.shape)
            continue
        option.type = _VENDOR_TYPES[fm.kind]
        option.description = fm.about or f"{fm.attr} in the canonical invoice"
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
    for path, words in vendor_required(vendor).items():
        _mark(model, path, words)
    return model


# -- required fields, found by probing the validation ----------------------------------------------

PROBE_NOW = datetime(2024, 1, 1, tzinfo=UTC)
MAX_ROUNDS = 16
_INDEX = re.compile(r"\[\d+\]")
Validate = Callable[[dict[str, Any]], list[FieldViolation]]


def _required(violation: FieldViolation) -> bool:
    return "is required" in violation.description


def _put(doc: dict[str, Any], path: str, value: Any) -> None:
    """Sets a dotted path with list indexes (`line_items[0].quantity`) in a JSON document."""
    cur: Any = doc
    parts = path.split(".")
    for i, part in enumerate(parts):
        name, _, index = part.partition("[")
        last = i == len(parts) - 1
        if index:
            items = cur.setdefault(name, [])
            n = int(index.rstrip("]"))
            while len(items) <= n:
                items.append({})
            if last:
                items[n] = value
            cur = items[n]
        elif last:
            cur[name] = value
        else:
            cur = cur.setdefault(name, {})


def probe_required(validate: Validate, sample: Callable[[str], Any], start: dict[str, Any]) -> dict[str, str]:
    """What the validation requires, in its own words: from `start`, each field it reports as required is
    filled with a sample value until it accepts. Raises AssertionError when it refuses for another reason
    (the model would then promise a create the service refuses)."""
    doc: dict[str, Any] = copy.deepcopy(start)
    found: dict[str, str] = {}
    for _ in range(MAX_ROUNDS):
        refused = validate(doc)
        missing = [f for f in refused if _required(f) and f.field not in found]
        if not refused:
            return found
        if not missing:
            raise AssertionError(f"the minimal create is refused: {refused}")
        for f in missing:
            found[f.field] = f.description
            _put(doc, f.field, sample(f.field))
    raise AssertionError("the required fields did not settle")


def _mark(model: svc.PushOption, path: str, words: str) -> None:
    """Marks a probed path required (and the objects on its way; an array stays optional, its elements' fields
    are required within each element); a condition in the validator's words."""
    node = model
    for part in path.split("."):
        name = _INDEX.sub("", part)
        if name not in node.properties:
            return  # a path the model does not list (never for a mapped field)
        node = node.properties[name]
        node.required = node.required or name == part
    if words != "is required":
        node.validation.information.add(field=path, details=f"Required: {words}")


# The canonical create: convert.invoice_in then lifecycle.prepare_new, as CreateInvoice runs them.


def _canonical_violations(doc: dict[str, Any]) -> list[FieldViolation]:
    v = Violations()
    inv = convert.invoice_in(json_format.ParseDict(doc, invoice_pb2.Invoice()), v, "")
    if v:
        return v.items
    try:
        lifecycle.prepare_new(inv, Violations(), PROBE_NOW, "")
    except InvalidArgument as exc:
        return exc.violations
    return []


def _unprefixed(validate: Validate) -> Validate:
    """Paths relative to the invoice (the validators write `.currency` under an empty root)."""
    return lambda doc: [FieldViolation(f.field.lstrip("."), f.description) for f in validate(doc)]


def _proto_field(path: str) -> FieldDescriptor:
    message: Descriptor | None = invoice_pb2.Invoice.DESCRIPTOR
    field: FieldDescriptor | None = None
    for part in _INDEX.sub("", path).split("."):
        assert message is not None
        field = message.fields_by_name[part]
        message = field.message_type
    assert field is not None
    return field


def _canonical_sample(path: str) -> Any:
    field = _proto_field(path)
    if field.enum_type is not None:
        return field.enum_type.values[1].name
    if field.message_type is not None:
        return "2024-01-01T00:00:00Z" if field.message_type.full_name == "google.protobuf.Timestamp" else {}
    if field.type == FieldDescriptor.TYPE_BOOL:
        return True
    if field.name == "currency":
        return "USD"
    return "1" if field.name in DECIMAL_FIELDS else "x"


def _json_path(path: str) -> str:
    """`line_items[0].unit_amount` -> `lineItems[0].unitAmount`."""
    parts = path.split(".")
    names = [
        _proto_field(".".join(parts[: i + 1])).json_name + part[len(_INDEX.sub("", part)) :]
        for i, part in enumerate(parts)
    ]
    return ".".join(names)


# Line items and their tax items are probed on their own: an invoice with one line needs no total_amount.
CANONICAL_STARTS: tuple[dict[str, Any], ...] = ({}, {"line_items": [{"taxation_items": [{}]}]})


@functools.cache
def canonical_required() -> dict[str, str]:
    """Proto path (`customer_ref.id`, `line_items[0].quantity`) -> the validator's words, for a create."""
    validate = _unprefixed(_canonical_violations)
    top = probe_required(validate, _canonical_sample, CANONICAL_STARTS[0])
    lines = probe_required(validate, _canonical_sample, CANONICAL_STARTS[1])
    return top | {path: words for path, words in lines.items() if "[" in path}


# A vendor create: the vendor's import then the create path's rules for imported invoices.


def _vendor_violations(vendor: str) -> Validate:
    def validate(doc: dict[str, Any]) -> list[FieldViolation]:
        try:
            inv = vendors.import_invoice(vendor, doc)
            lifecycle.prepare_new(inv, Violations(), PROBE_NOW, "", imported=True)
        except InvalidArgument as exc:
            return vendors.vendor_violations(vendor, exc).violations
        return []

    return validate


def _vendor_field(shape: Shape, path: str) -> FieldMap | None:
    for fm in shape.every_field():
        if isinstance(fm, FieldMap) and fm.vendor == path:
            return fm
        if isinstance(fm, ListMap) and path.startswith(f"{fm.vendor}."):
            return _vendor_field(fm.shape, path[len(fm.vendor) + 1 :])
    return None


_VENDOR_SAMPLES: dict[Kind, Any] = {
    Kind.NUMBER: 1,
    Kind.DECIMAL_STRING: "1",
    Kind.TEXT: "x",
    Kind.BOOL: True,
    Kind.DATETIME: "2024-01-01T00:00:00Z",
    Kind.DATE: "2024-01-01",
    Kind.DAY: "2024-01-01",
    Kind.DAY_TIME: "2024-01-01T00:00:00Z",
    Kind.CURRENCY: "USD",
    Kind.STRING_MAP: {},
}


def _vendor_sample(vendor: str) -> Callable[[str], Any]:
    def sample(path: str) -> Any:
        fm = _vendor_field(VENDOR_TABLES[vendor].shape, _INDEX.sub("", path))
        if fm is None:
            return "x"
        if fm.kind is Kind.ENUM:
            return next(iter(fm.values or {}), "")
        if fm.kind is Kind.NUMBER and fm.maximum is not None and fm.maximum <= 0:
            return -1
        return fm.const if fm.kind is Kind.CONSTANT else _VENDOR_SAMPLES[fm.kind]

    return sample


def _list_starts(shape: Shape) -> dict[str, Any]:
    """One element in every array of the shape, nested: the probe of what each element requires."""
    return {fm.vendor: [_list_starts(fm.shape)] for fm in shape.every_field() if isinstance(fm, ListMap)}


@functools.cache
def vendor_required(vendor: str) -> dict[str, str]:
    """Vendor path (`customerRef.id`, `lineItems[0].unitAmount`) -> the validator's words, for an import."""
    validate, sample = _vendor_violations(vendor), _vendor_sample(vendor)
    shape = VENDOR_TABLES[vendor].shape
    top = probe_required(validate, sample, {})
    out = dict(top)
    for fm in shape.every_field():
        if isinstance(fm, ListMap):  # each array on its own, judged by what it says of the array's elements
            start = top_doc(top, sample) | {fm.vendor: [_list_starts(fm.shape)]}
            out |= probe_required(_within(validate, f"{fm.vendor}["), sample, start)
    return out


def _within(validate: Validate, prefix: str) -> Validate:
    return lambda doc: [f for f in validate(doc) if f.field.startswith(prefix)]


def top_doc(required: dict[str, str], sample: Callable[[str], Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path in required:
        _put(doc, path, sample(path))
    return doc
