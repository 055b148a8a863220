"""Create-path field paths (canonical, as the create rules name them) as a vendor's own paths, from the vendor's
table: a refusal of an imported invoice names the field the client sent. Pure."""

from __future__ import annotations

import re

from service.vendors.fields import FieldMap
from service.vendors.shapes import ListMap, Shape, Vendor

_PROTO_TO_ATTR = (  # proto names the create path reports -> the domain attributes the vendor tables map
    ("customer_ref.id", "customer_id"),
    ("customer_ref.company_name", "customer_name"),
    ("line_items", "lines"),
    ("payment_allocations", "allocations"),
    ("allocation.total_amount", "amount"),
)


def _vendor_path(shape: Shape, attr_path: str) -> str | None:
    """The vendor path of a domain attribute path (`lines[0].quantity` -> `lineItems[0].quantity`)."""
    for fm in shape.fields:
        if isinstance(fm, FieldMap) and fm.attr == attr_path and fm.attr:
            return fm.vendor
        if isinstance(fm, ListMap) and fm.attr and attr_path == fm.attr:
            return fm.vendor
        if isinstance(fm, ListMap) and fm.attr and attr_path.startswith(f"{fm.attr}["):
            index, _, rest = attr_path[len(fm.attr) :].partition(".")
            inner = _vendor_path(fm.shape, rest)
            return None if inner is None else f"{fm.vendor}{index}.{inner}"
    return None


def to_vendor(vendor: Vendor, canonical: str) -> str:
    """A create-path field path (`invoice.total_amount`) as the vendor's (`totalAmount`); the canonical path
    when the vendor does not map the field."""
    attr = canonical.removeprefix("invoice.").lstrip(".")
    for proto, domain in _PROTO_TO_ATTR:
        attr = re.sub(rf"(^|\.){re.escape(proto)}(?=$|[.\[])", rf"\g<1>{domain}", attr)
    found = _vendor_path(vendor.shape, attr)
    if found is not None:
        return found
    for hooked, field in vendor.hooked_paths:  # a total the vendor gives as one field (FlexPrice amount_paid)
        if attr == hooked or attr.startswith((f"{hooked}[", f"{hooked}.")):
            return field
    return canonical
