"""Builders and assertions shared by the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc


def line(quantity: str = "1", unit: str = "10.00", **kw: Any) -> pb.LineItem:
    return pb.LineItem(quantity=quantity, unit_amount=unit, **kw)


def invoice(
    customer: str = "cust-1", currency: str = "USD", lines: list[pb.LineItem] | None = None, **kw: Any
) -> pb.Invoice:
    if lines is None:
        lines = [line("2", "15.00", description="Widget"), line("1", "70.00", description="Service")]
    return pb.Invoice(
        customer_ref=pb.CustomerRef(id=customer, company_name="Test Customer"),
        currency=currency,
        line_items=lines,
        **kw,
    )


def create(stub: Any, company: str, inv: pb.Invoice | None = None) -> pb.Invoice:
    resp = stub.CreateInvoice(svc.CreateInvoiceRequest(company_id=company, invoice=inv or invoice()))
    return resp.invoice  # type: ignore[no-any-return]


def finalized(stub: Any, company: str, inv: pb.Invoice | None = None) -> pb.Invoice:
    draft = create(stub, company, inv)
    resp = stub.FinalizeInvoice(svc.FinalizeInvoiceRequest(company_id=company, invoice_id=draft.id))
    return resp.invoice  # type: ignore[no-any-return]


def pay(stub: Any, company: str, invoice_id: str, amount: str, currency: str = "", rate: str = "") -> Any:
    return stub.RecordPayment(
        svc.RecordPaymentRequest(
            company_id=company,
            invoice_id=invoice_id,
            payment_allocation=pb.PaymentAllocation(
                allocation=pb.Allocation(total_amount=amount, currency=currency, currency_rate=rate),
                payment=pb.Payment(id="pay-1", reference="ref"),
            ),
        )
    )


def rpc_error(call: Callable[[], Any], code: grpc.StatusCode) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    assert err.code() == code, f"expected {code}, got {err.code()}: {err.details()}"
    return err


def rich_status(err: grpc.RpcError) -> status_pb2.Status:
    metadata: Any = err.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no rich status details")


def violations(err: grpc.RpcError) -> dict[str, str]:
    """field -> description of the google.rpc.BadRequest detail."""
    out: dict[str, str] = {}
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    for detail in rich_status(err).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo detail")
