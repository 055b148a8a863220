"""Request parsing shared by every servicer: metadata, required text, invoice keys, vendors, dates.

Shape checks only, each violation naming the request field; business rules stay in the domain.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import grpc
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service.domain import models as m
from service.domain import money
from service.domain.errors import Violations
from service.domain.profile import EInvoiceFormat
from service.domain.values import ZERO, parse_currency, parse_datetime, parse_decimal
from service.einvoice.formats import SYNTAX
from service.einvoice.validation import Syntax
from service.handlers.invoices import UpdateSpec
from service.transport import convert as c

Ctx = grpc.aio.ServicerContext[Any, Any]
MAX_KEY = 255


def metadata(context: Ctx | None, key: str) -> str:
    """The value of one invocation metadata entry ("" when absent, or for a worker's call without one)."""
    for k, v in (context.invocation_metadata() or ()) if context is not None else ():
        if k == key:
            return str(v)
    return ""


def require(v: Violations, path: str, value: str) -> str:
    """A required text key (an id, a number, a customer): present and at most MAX_KEY characters."""
    if not value:
        v.add(path, "is required")
    elif len(value) > MAX_KEY:
        v.add(path, f"must be at most {MAX_KEY} characters")
    return value


def invoice_key(v: Violations, path: str, raw: str) -> str:
    """An invoice key as Zuora's invoiceKey: an id or a number. Which one it is, and the one letter-case
    rule, is domain.ids.parse_id's, applied where the key is looked up (the number may look like an id)."""
    return require(v, path, raw)


def invoice_key_only(raw: str, path: str = "invoice_id") -> str:
    """The request's one invoice key, or INVALID_ARGUMENT naming `path`."""
    v = Violations()
    key = invoice_key(v, path, raw)
    v.raise_if_any()
    return key


def vendor(v: Violations, number: int, required: bool = True) -> str:
    """The vendor enum as the name service.vendors knows it."""
    if number == 0:
        if required:
            v.add("vendor", "is required: VENDOR_CODAT, VENDOR_FLEXPRICE or VENDOR_ZUORA")
        return ""
    if number not in svc.Vendor.values():
        v.add("vendor", f"unknown vendor {number}")
        return ""
    return svc.Vendor.Name(cast(Any, number)).removeprefix("VENDOR_").lower()


def target_format(v: Violations, vendor_number: int, format_number: int) -> tuple[str, EInvoiceFormat | None]:
    """Export and import name exactly one target: a vendor's JSON, or an e-invoice format."""
    fmt = c.enum_in(v, "format", pb.EInvoiceFormat, format_number, EInvoiceFormat)
    if fmt is not None and vendor_number:
        v.add("vendor", "set vendor or format, not both")
    return ("" if fmt is not None else vendor(v, vendor_number)), fmt


def pdf_format(v: Violations, format_number: int) -> EInvoiceFormat | None:
    """A PDF download: the plain PDF (unset) or the Factur-X hybrid; UBL and CII are no PDFs."""
    fmt = c.enum_in(v, "format", pb.EInvoiceFormat, format_number, EInvoiceFormat)
    if fmt is not None and fmt is not EInvoiceFormat.FACTURX:
        v.add("format", f"a PDF is E_INVOICE_FORMAT_FACTURX or unset; {fmt} is XML: use the Export RPC")
        return None
    return fmt


def syntaxes(v: Violations, format_number: int) -> list[Syntax]:
    """The syntaxes a check covers: the one of the format (FACTURX: CII), or both."""
    fmt = c.enum_in(v, "format", pb.EInvoiceFormat, format_number, EInvoiceFormat)
    return [SYNTAX[fmt]] if fmt is not None else [Syntax.CII, Syntax.UBL]


def customer_amount(v: Violations, customer_id: str, currency: str, amount: str) -> tuple[str, Decimal]:
    """A customer's credit movement: the customer, the currency, and a positive amount at most the
    currency's decimals (AddCustomerCredit, RefundCustomerCredit)."""
    require(v, "customer_id", customer_id)
    code = parse_currency(v, "currency", currency) or ""
    value = parse_decimal(v, "amount", amount, required=True, positive=True)
    if value is not None and code and not money.fits(value, code):
        v.add("amount", f"has more decimals than {code} allows ({money.exponent(code)}); got {value:f}")
    return code, value or ZERO


def optional_datetime(v: Violations, path: str, raw: str) -> datetime | None:
    return parse_datetime(v, path, raw) if raw else None


def same_company(v: Violations, index: int, batch_company: str, item_company: str) -> None:
    """A batch item names no company or the batch's."""
    if item_company and item_company != batch_company:
        v.add(f"requests[{index}].company_id", "must be empty or equal to the batch's company_id")


def invoice_input(request: svc.CreateInvoiceRequest | svc.PreviewInvoiceRequest, path: str = "invoice") -> m.Invoice:
    """The request's required invoice, or INVALID_ARGUMENT naming every refused field."""
    v = Violations()
    if not request.HasField("invoice"):
        v.add(path, "is required")
        v.raise_if_any()
    inv = c.invoice_in(request.invoice, v, path)
    v.raise_if_any()
    return inv


def update_spec(request: svc.UpdateInvoiceRequest, v: Violations, path: str) -> UpdateSpec:
    """An update: the patch, its field mask (AIP-134: explicit, "*", or the fields set) and etag."""
    if not request.HasField("invoice"):
        v.add(path, "is required")
    require(v, f"{path}.id", request.invoice.id)
    paths = set(request.update_mask.paths) if request.update_mask.paths else c.implicit_paths(request.invoice)
    if "*" in paths:
        paths = {f.name for f in pb.Invoice.DESCRIPTOR.fields} - c.OUTPUT_ONLY
    patch = c.invoice_in(request.invoice, v, path, paths)
    patch.id = request.invoice.id
    return UpdateSpec(patch=patch, paths=frozenset(paths), etag=request.invoice.etag)
