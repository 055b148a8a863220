"""Vendor invoice formats (Codat, FlexPrice, Zuora) in and out of the canonical domain Invoice. Pure.

Payloads are the vendor's own JSON parsed with ``json.loads(text, parse_float=json_decimal)``; ``dumps`` writes an
exported payload back to JSON text with its Decimals as exact numbers. Refused values raise InvalidArgument
naming the vendor's field path (e.g. ``lineItems[0].unitAmount``). Vendor fields without a canonical home
are kept in ``inv.supplemental_data[vendor]`` and restored by ``export_invoice`` to the same vendor.
"""

from __future__ import annotations

from typing import Any

from service.domain.errors import FieldViolation, InvalidArgument
from service.domain.models import Invoice
from service.vendors import import_export
from service.vendors.codat import CODAT
from service.vendors.flexprice import FLEXPRICE
from service.vendors.json_payload import dumps, json_decimal
from service.vendors.paths import to_vendor
from service.vendors.shapes import Vendor
from service.vendors.zuora import ZUORA

__all__ = ["VENDORS", "dumps", "export_invoice", "import_invoice", "json_decimal", "vendor_violations"]

_BY_NAME = {vendor.name: vendor for vendor in (CODAT, FLEXPRICE, ZUORA)}
VENDORS = ("codat", "flexprice", "zuora")
assert tuple(_BY_NAME) == VENDORS


def _vendor(name: str) -> Vendor:
    vendor = _BY_NAME.get(name)
    if vendor is None:
        raise InvalidArgument([FieldViolation("vendor", f"must be one of {', '.join(VENDORS)}; got {name!r}")])
    return vendor


def import_invoice(vendor: str, payload: dict[str, Any]) -> Invoice:
    """A vendor invoice as a client-side canonical invoice (id and company_id empty), ready for the create
    path. Raises InvalidArgument with every violation, each naming the vendor field."""
    return import_export.import_invoice(_vendor(vendor), payload)


def export_invoice(vendor: str, inv: Invoice) -> dict[str, Any]:
    """The invoice in the vendor's JSON shape (numbers as int or Decimal), with its kept fields restored."""
    return import_export.export_invoice(_vendor(vendor), inv)


def vendor_violations(vendor: str, exc: InvalidArgument) -> InvalidArgument:
    """The create path's refusal of an imported invoice, each violation naming the vendor's field."""
    mapped = InvalidArgument(
        [FieldViolation(to_vendor(_vendor(vendor), f.field), f.description) for f in exc.violations]
    )
    mapped.push_operation_key = exc.push_operation_key
    return mapped
