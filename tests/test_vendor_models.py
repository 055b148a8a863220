"""GetInvoiceModel tells the truth, over a real channel and PostgreSQL: for the canonical form and each vendor, a
create built from only the model's required fields is accepted, dropping any one of them is refused naming it,
and every field an export writes is in the vendor's model."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc

from service.vendors import dumps
from tests.helpers import rpc_error, violations
from tests.test_imports import VENDORS, _canonical_set

INV = grpc.StatusCode.INVALID_ARGUMENT


def _model(stub: Any, company: str, vendor: str = "") -> svc.PushOption:
    req = svc.GetInvoiceModelRequest(company_id=company, vendor=VENDORS[vendor] if vendor else svc.VENDOR_UNSPECIFIED)
    model: svc.PushOption = stub.GetInvoiceModel(req).model
    return model


def _sample(option: svc.PushOption, canonical: bool) -> Any:
    """A valid value of a leaf, from what the model says of it."""
    if option.options:
        return option.options[0].value
    details = " ".join(i.details for i in option.validation.information) + " ".join(
        w.details for w in option.validation.warnings
    )
    if "ISO 4217" in details:
        return "USD"
    if option.type == svc.PUSH_OPTION_TYPE_NUMBER:
        return "1" if canonical else 1
    if option.type == svc.PUSH_OPTION_TYPE_DATE_TIME:
        return "2024-01-01" if "YYYY-MM-DD" in details else "2024-01-01T00:00:00Z"
    if option.type == svc.PUSH_OPTION_TYPE_BOOLEAN:
        return True
    if "decimal string" in details:
        return "1"
    return "x"


def _required_leaves(option: svc.PushOption, prefix: str = "") -> dict[str, svc.PushOption]:
    """Dotted path -> option of every required leaf outside arrays (arrays are optional here)."""
    out: dict[str, svc.PushOption] = {}
    for name, child in option.properties.items():
        if not child.required or child.type == svc.PUSH_OPTION_TYPE_ARRAY:
            continue
        path = f"{prefix}{name}"
        if child.properties:
            out |= _required_leaves(child, f"{path}.")
        else:
            out[path] = child
    return out


def _doc(leaves: dict[str, svc.PushOption], canonical: bool, skip: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for path, option in leaves.items():
        if path == skip:
            continue
        *parents, last = path.split(".")
        cur = doc
        for part in parents:
            cur = cur.setdefault(part, {})
        cur[last] = _sample(option, canonical)
    return doc


def _snake(path: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", path).lower()


def _create(stub: Any, company: str, vendor: str, doc: dict[str, Any]) -> pb.Invoice:
    if not vendor:
        inv = json_format.ParseDict(doc, pb.Invoice())
        created: pb.Invoice = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=inv)).invoice
        return created
    req = svc.ImportInvoiceRequest(company_id=company, vendor=VENDORS[vendor], invoice_json=dumps(doc))
    imported: pb.Invoice = stub.ImportInvoice(req).invoice
    return imported


@pytest.mark.parametrize("vendor", ["", *VENDORS])
def test_a_create_of_only_the_required_fields_is_accepted_and_each_is_needed(stub, company, vendor):
    leaves = _required_leaves(_model(stub, company, vendor))
    assert leaves, "a model without required fields"
    canonical = not vendor
    assert _create(stub, company, vendor, _doc(leaves, canonical)).id
    for path in leaves:
        doc = _doc(leaves, canonical, skip=path)
        err = rpc_error(lambda: _create(stub, company, vendor, doc), INV)  # noqa: B023 (called at once)
        named = violations(err)
        want = f"invoice.{_snake(path)}" if canonical else path
        assert want in named, (vendor, path, named)


def test_the_canonical_model_says_what_the_validation_requires(stub, company):
    model = _model(stub, company)
    assert model.properties["customerRef"].properties["id"].required
    total = model.properties["totalAmount"]
    assert total.required and any("no line_items" in i.details for i in total.validation.information)
    lines = model.properties["lineItems"]
    assert not lines.required and lines.properties["quantity"].required and lines.properties["unitAmount"].required


def _paths(value: Any, prefix: str = "") -> set[str]:
    """Every dotted key path in a JSON document, arrays flattened (`lineItems.taxItems.taxAmount`)."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}{key}"
            out.add(path)
            out |= _paths(child, f"{path}.")
    elif isinstance(value, list):
        for child in value:
            out |= _paths(child, prefix)
    return out


def _listed(option: svc.PushOption, path: str) -> bool:
    node = option
    for part in path.split("."):
        if part not in node.properties:
            return node.type == svc.PUSH_OPTION_TYPE_OBJECT and not node.properties  # a free-form map
        node = node.properties[part]
    return True


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_the_vendor_model_lists_every_field_the_export_writes(stub, company, vendor):
    model = _model(stub, company, vendor)
    written: set[str] = set()
    for invoice_id in _canonical_set(stub, company).values():
        req = svc.ExportInvoiceRequest(company_id=company, invoice_id=invoice_id, vendor=VENDORS[vendor])
        written |= _paths(json.loads(stub.ExportInvoice(req).invoice_json, parse_float=Decimal))
    missing = sorted(p for p in written if not _listed(model, p))
    assert not missing, missing
    named = {
        "flexprice": [
            "amount_due",
            "subtotal",
            "amount_paid",
            "amount_remaining",
            "invoice_status",
            "line_items.amount",
        ],
        "zuora": ["status", "paymentAmount", "invoiceItems.amount", "creditMemoAmount"],
        "codat": ["amountDue", "paymentAllocations.allocation.totalAmount"],
    }[vendor]
    assert all(_listed(model, p) for p in named)
