"""ImportInvoice / ExportInvoice / GetInvoiceModel(vendor) over a real channel and PostgreSQL: each seed
example goes in, is stored, comes back out equal; malformed vendor JSON is refused naming the vendor field."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from invoices.v1 import invoice_service_pb2 as svc

from service.vendors import dumps
from tests.helpers import rpc_error, violations

FIXTURES = Path(__file__).parent / "fixtures" / "vendors"
VENDORS = {"codat": svc.VENDOR_CODAT, "flexprice": svc.VENDOR_FLEXPRICE, "zuora": svc.VENDOR_ZUORA}
INV = grpc.StatusCode.INVALID_ARGUMENT


def fixture(vendor: str) -> dict[str, Any]:
    path = next(FIXTURES.glob(f"{vendor}*.json"))
    data: dict[str, Any] = json.loads(path.read_text(), parse_float=Decimal)
    return data


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_seed_example_round_trips_through_the_store(stub, company, vendor, db):
    payload = fixture(vendor)
    resp = stub.ImportInvoice(
        svc.ImportInvoiceRequest(company_id=company, vendor=VENDORS[vendor], invoice_json=dumps(payload))
    )
    assert resp.push_operation.operation == "ImportInvoice" and resp.invoice.id
    out = stub.ExportInvoice(
        svc.ExportInvoiceRequest(company_id=company, invoice_id=resp.invoice.id, vendor=VENDORS[vendor])
    )
    exported = json.loads(out.invoice_json, parse_float=Decimal)
    # Every field the vendor sent comes back with its value; the service owns Codat's modifiedDate (when the
    # record last changed here), and may add totals the vendor left out (zero tax, zero discount).
    for key, value in payload.items():
        if key != "modifiedDate":
            assert _equal(exported.get(key), value), (key, exported.get(key), value)
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 1


def _equal(a: Any, b: Any) -> bool:
    """`a` carries every field of `b` with its value (numbers by value: 1 == 1.0); `a` may add fields."""
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _equal(a[k], b[k]) for k in b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | Decimal) and isinstance(b, int | Decimal) and not isinstance(a, bool):
        return Decimal(a) == Decimal(b)
    return bool(a == b)


def test_export_to_another_vendor(stub, company):
    resp = stub.ImportInvoice(
        svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json=dumps(fixture("codat")))
    )
    flex = json.loads(
        stub.ExportInvoice(
            svc.ExportInvoiceRequest(company_id=company, invoice_id=resp.invoice.id, vendor=svc.VENDOR_FLEXPRICE)
        ).invoice_json
    )
    assert flex["invoice_status"] == "FINALIZED" and Decimal(flex["total"]) == Decimal(resp.invoice.total_amount)
    assert flex["customer_id"] == resp.invoice.customer_ref.id


@pytest.mark.parametrize(
    ("vendor", "change", "field"),
    [
        ("codat", {"totalAmount": "thirty"}, "totalAmount"),
        ("codat", {"status": "Unknown"}, "status"),
        ("codat", {"issueDate": "2023-13-45"}, "issueDate"),
        ("codat", {"totalAmount": Decimal("30.123456789012")}, "totalAmount"),
        ("codat", {"currency": "ZZZ"}, "currency"),
        ("flexprice", {"invoice_status": "SHIPPED"}, "invoice_status"),
        ("flexprice", {"total": Decimal("118.5")}, "total"),
        ("zuora", {"status": "Archived"}, "status"),
    ],
)
def test_malformed_vendor_json_is_refused_naming_the_vendor_field(stub, company, db, vendor, change, field):
    payload = fixture(vendor) | change
    err = rpc_error(
        lambda: stub.ImportInvoice(
            svc.ImportInvoiceRequest(company_id=company, vendor=VENDORS[vendor], invoice_json=dumps(payload))
        ),
        INV,
    )
    assert field in violations(err), violations(err)
    assert db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"] == 0


def test_not_json_and_missing_vendor(stub, company):
    assert "invoice_json" in violations(
        rpc_error(
            lambda: stub.ImportInvoice(
                svc.ImportInvoiceRequest(company_id=company, vendor=svc.VENDOR_CODAT, invoice_json="{not json")
            ),
            INV,
        )
    )
    assert "vendor" in violations(
        rpc_error(lambda: stub.ImportInvoice(svc.ImportInvoiceRequest(company_id=company, invoice_json="{}")), INV)
    )
    rpc_error(
        lambda: stub.ExportInvoice(
            svc.ExportInvoiceRequest(company_id=company, invoice_id="nope", vendor=svc.VENDOR_ZUORA)
        ),
        grpc.StatusCode.NOT_FOUND,
    )


def test_get_invoice_model_in_a_vendor_shape(stub, company):
    zuora = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company, vendor=svc.VENDOR_ZUORA)).model
    items = zuora.properties["invoiceItems"]
    assert items.type == svc.PUSH_OPTION_TYPE_ARRAY and "taxItems" in items.properties
    codat = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company, vendor=svc.VENDOR_CODAT)).model
    assert codat.properties["totalAmount"].type == svc.PUSH_OPTION_TYPE_NUMBER
    assert "Submitted" in [o.value for o in codat.properties["status"].options]
    flex = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company, vendor=svc.VENDOR_FLEXPRICE)).model
    assert flex.properties["total"].type == svc.PUSH_OPTION_TYPE_STRING  # FlexPrice money is decimal strings
    canonical = stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company)).model
    assert "amountDue" in canonical.properties
    rpc_error(
        lambda: stub.GetInvoiceModel(svc.GetInvoiceModelRequest(company_id=company, vendor=cast(Any, 45))),
        INV,
    )
