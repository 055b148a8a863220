"""Hostile e-invoice input through a real server (issue 17): inbound XML that tries entities, DTDs, depth,
size, bad numbers, dates and currencies, duplicates and races; exports and validation of what is not the
caller's or not exportable; texts XML must escape. Each answer is a clear status and stores nothing."""

from __future__ import annotations

import concurrent.futures
import copy
import time
import uuid
from functools import partial
from typing import Any

import grpc
import pytest
from invoices.v1 import invoice_pb2 as pb
from invoices.v1 import invoice_service_pb2 as svc
from lxml import etree

from service.einvoice.validation import Syntax, fatal, validate
from tests.helpers import finalized, invoice, line, rpc_error, violations
from tests.test_einvoice_rpcs import _buyer, _export, _import, _invoice, _supplier, _vat

INVALID = grpc.StatusCode.INVALID_ARGUMENT
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
UBL, CII = pb.E_INVOICE_FORMAT_UBL, pb.E_INVOICE_FORMAT_CII


def _count(db: Any, company: str) -> int:
    n = db.fetch("SELECT count(*) AS n FROM invoices WHERE company_id = $1", company)[0]["n"]
    return int(n)


def _source(stub: Any, company: str) -> tuple[pb.Invoice, str]:
    _supplier(company, stub)
    inv = finalized(stub, company, _invoice())
    return inv, _export(stub, company, inv.id, UBL).invoice_xml


def _refused(stub: Any, company: str, xml: str, fmt: Any = UBL) -> dict[str, str]:
    fields = violations(rpc_error(partial(_import, stub, company, xml, fmt), INVALID))
    assert fields and all(f.startswith("invoice_xml") for f in fields), fields
    return fields


def _doctype(xml: str, subset: str) -> str:
    """The document with a DOCTYPE before its root and `&x;` in the seller's name."""
    head, body = xml.split("?>", 1) if xml.startswith("<?xml") else ("", xml)
    prolog = f"{head}?>" if head else ""
    body = body.replace("<cbc:RegistrationName>Acme Widgets GmbH", "<cbc:RegistrationName>Acme &x;", 1)
    return f"{prolog}<!DOCTYPE Invoice [{subset}]>{body}"


def test_external_entities_and_dtds_are_refused_never_fetched(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-xxe"
    for subset in (
        '<!ENTITY x SYSTEM "file:///etc/passwd">',
        '<!ENTITY x SYSTEM "http://127.0.0.1:9/x">',
        '<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p; <!ENTITY x "y">',
        '<!ENTITY x "Widgets GmbH">',  # even a harmless internal entity: EN 16931 documents carry no DTD
    ):
        started = time.monotonic()
        fields = _refused(stub, other, _doctype(good, subset))
        assert time.monotonic() - started < 5
        assert "root:x" not in " ".join(fields.values())  # /etc/passwd never read back
    assert _count(db, other) == 0


def test_entity_bomb_deep_nesting_and_control_characters_are_refused(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-bomb"
    bomb = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    cases = {
        "bomb": f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY l0 "lol">{bomb}]><a>&l9;</a>',
        "deep": "<a>" * 10_000 + "</a>" * 10_000,
        "nul": good.replace("Widget", "Wid\x00get", 1),
        "control": good.replace("Widget", "Wid\x01\x1bget", 1),
        "empty": " ",
    }
    for name, xml in cases.items():
        started = time.monotonic()
        _refused(stub, other, xml)
        assert time.monotonic() - started < 5, name
    assert _count(db, other) == 0


def test_invalid_utf8_in_the_string_field_is_refused_by_grpc_not_a_traceback(channel, company):
    """invoice_xml is a proto string: bytes that are not UTF-8 never reach the service."""
    call = channel.unary_unary(
        "/invoices.v1.InvoiceService/ImportInvoice",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    # field 1 company_id, then invoice_xml with the invalid bytes; the field number from the descriptor
    number = svc.ImportInvoiceRequest.DESCRIPTOR.fields_by_name["invoice_xml"].number
    payload = b"<a>\xff\xfe</a>"
    raw = bytes([(number << 3) | 2, len(payload)]) + payload
    with pytest.raises(grpc.RpcError) as info:
        call(raw, timeout=10)
    assert info.value.code() in (grpc.StatusCode.INTERNAL, INVALID)  # grpc's own deserializer refuses it


def _edit(xml: str, edits: dict[str, str], attr: tuple[str, str, str] | None = None) -> str:
    """The UBL with each element named (cbc local name, first occurrence) given a new text."""
    root = etree.fromstring(xml.encode())
    for name, text in edits.items():
        el = root.find(f".//{{{CBC}}}{name}")
        assert el is not None, name
        el.text = text
    if attr:
        name, key, value = attr
        el = root.find(f".//{{{CBC}}}{name}")
        assert el is not None
        el.set(key, value)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def test_numbers_dates_and_currencies_that_are_not_are_refused(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-num"
    cases: dict[str, str] = {
        "1e999999 quantity": _edit(good, {"InvoicedQuantity": "1e999999"}),
        "NaN price": _edit(good, {"PriceAmount": "NaN"}),
        "Infinity payable": _edit(good, {"PayableAmount": "Infinity"}),
        "40 digits": _edit(good, {"PayableAmount": "1" * 40 + ".00"}),
        "negative quantity": _edit(good, {"InvoicedQuantity": "-2"}),
        "date 20261399": _edit(good, {"IssueDate": "2026-13-99"}),
        "currency QQQ": good.replace('currencyID="EUR"', 'currencyID="QQQ"').replace(
            ">EUR</cbc:DocumentCurrencyCode>", ">QQQ</cbc:DocumentCurrencyCode>"
        ),
        "lowercase eur": good.replace('currencyID="EUR"', 'currencyID="eur"').replace(
            ">EUR</cbc:DocumentCurrencyCode>", ">eur</cbc:DocumentCurrencyCode>"
        ),
        "mixed currencyID": _edit(good, {}, ("PayableAmount", "currencyID", "USD")),
        "totals disagree": _edit(good, {"PayableAmount": "1.00"}),
    }
    for name, xml in cases.items():
        err = rpc_error(partial(_import, stub, other, xml, UBL), INVALID)
        assert violations(err), name
    assert _count(db, other) == 0


def test_a_ubl_in_the_cii_namespace_is_refused(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-ns"
    swapped = (
        good.replace(
            "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
            "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
        )
        .replace("<Invoice ", "<CrossIndustryInvoice ")
        .replace("</Invoice>", "</CrossIndustryInvoice>")
    )
    _refused(stub, other, swapped, CII)
    _refused(stub, other, swapped, UBL)
    assert _count(db, other) == 0


def test_the_same_document_twice_and_concurrently_imports_once(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-dup"
    _import(stub, other, good, UBL)
    rpc_error(partial(_import, stub, other, good, UBL), grpc.StatusCode.ALREADY_EXISTS)
    racing = f"{company}-race"
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_import, stub, racing, good, UBL) for _ in range(8)]
        codes = []
        for f in futures:
            try:
                f.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
    assert codes.count(grpc.StatusCode.OK) == 1, codes
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.ALREADY_EXISTS}, codes
    assert _count(db, racing) == 1


def test_a_retry_with_the_same_request_id_replays_the_answer(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-rid"
    rid = f"rid-{uuid.uuid4().hex}"
    request = svc.ImportInvoiceRequest(company_id=other, format=UBL, invoice_xml=good, request_id=rid)
    first = stub.ImportInvoice(request)
    second = stub.ImportInvoice(request)
    assert first.invoice.id == second.invoice.id
    assert _count(db, other) == 1


def test_a_number_of_the_companys_own_sequence_is_refused(stub, company, db):
    _, good = _source(stub, company)
    other = f"{company}-own"
    _supplier(other, stub)  # ACME-0001 is the form of other's own numbers too
    fields = _refused(stub, other, good)
    assert list(fields) == ["invoice_xml:/Invoice/cbc:ID"], fields
    assert _count(db, other) == 0


def test_a_credit_note_naming_no_or_another_companys_invoice_is_refused(stub, company, db):
    inv, _ = _source(stub, company)
    note = stub.CreateCreditNote(
        svc.CreateCreditNoteRequest(company_id=company, invoice_id=inv.id, whole_invoice=True, issue=True)
    ).credit_note
    doc = stub.ExportCreditNote(
        svc.ExportCreditNoteRequest(company_id=company, credit_note_id=note.id, format=UBL)
    ).credit_note_xml
    other = f"{company}-cnx"  # has no invoice of that number (only `company` has)
    err = rpc_error(partial(_import, stub, other, doc, UBL), grpc.StatusCode.NOT_FOUND)
    assert inv.invoice_number in (err.details() or "")
    root = etree.fromstring(doc.encode())
    for ref in root.findall(f"{{{CAC}}}BillingReference"):
        root.remove(ref)
    fields = _refused(stub, other, etree.tostring(root).decode())
    assert "invoice_xml:/CreditNote/cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID" in fields, fields
    assert db.fetch("SELECT count(*) AS n FROM credit_notes WHERE company_id = $1", other)[0]["n"] == 0


def _many_lines(good: str, n: int) -> str:
    """The one-line 1.00 invoice repeated to n lines, totals adjusted: a valid n-line document."""
    root = etree.fromstring(good.encode())
    first = root.find(f"{{{CAC}}}InvoiceLine")
    assert first is not None
    for i in range(2, n + 1):
        extra = copy.deepcopy(first)
        ident = extra.find(f"{{{CBC}}}ID")
        assert ident is not None
        ident.text = str(i)
        root.append(extra)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def _single_line(stub: Any, company: str) -> str:
    _supplier(company, stub)
    inv = finalized(
        stub,
        company,
        invoice(currency="EUR", lines=[line("1", "1.00", description="x", taxation_items=_vat())], buyer=_buyer()),
    )
    return _export(stub, company, inv.id, UBL).invoice_xml


def _scaled(one: str, n: int) -> str:
    xml = _many_lines(one, n)
    total = f"{n}.00"
    tax = f"{n * 19 // 100}.{n * 19 % 100:02d}"
    gross = f"{n + n * 19 // 100}.{n * 19 % 100:02d}"
    root = etree.fromstring(xml.encode())
    for name, value in (
        ("LineExtensionAmount", total),
        ("TaxExclusiveAmount", total),
        ("TaxInclusiveAmount", gross),
        ("PayableAmount", gross),
    ):
        el = root.find(f"{{{CAC}}}LegalMonetaryTotal/{{{CBC}}}{name}")
        assert el is not None
        el.text = value
    for path, value in (
        ("TaxTotal/cbc:TaxAmount", tax),
        ("TaxTotal/cac:TaxSubtotal/cbc:TaxableAmount", total),
        ("TaxTotal/cac:TaxSubtotal/cbc:TaxAmount", tax),
    ):
        for found in root.findall(f"cac:{path}", namespaces={"cac": CAC, "cbc": CBC}):
            found.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").decode()


def test_large_documents_answer_quickly_and_do_not_block_other_rpcs(stub, company, db):
    one = _single_line(stub, company)
    big = _scaled(one, 5000)
    assert fatal(validate(Syntax.UBL, _scaled(one, 1000).encode())) == []
    other = f"{company}-big"
    started = time.monotonic()
    fields = _refused(stub, other, big)
    took = time.monotonic() - started
    print(f"5000-line import: {took:.2f}s, {len(big) / 1e6:.2f} MB, {fields}")
    assert fields == {"invoice_xml:/Invoice/cac:InvoiceLine": "at most 1000 lines; got 5000"}
    assert took < 1
    assert _count(db, other) == 0
    # 20 concurrent imports of 1000-line documents against one GetInvoice
    thousand = _scaled(one, 1000)
    probe = finalized(stub, company, _invoice())
    get = partial(stub.GetInvoice, svc.GetInvoiceRequest(company_id=company, invoice_id=probe.id))
    get()
    idle = []
    for _ in range(5):
        t = time.monotonic()
        get()
        idle.append(time.monotonic() - t)
    with concurrent.futures.ThreadPoolExecutor(21) as pool:
        calls = [
            pool.submit(
                lambda i: (
                    stub.ValidateInvoice(svc.ValidateInvoiceRequest(company_id=company, invoice_id=probe.id))
                    if i % 2
                    else _try(partial(_import, stub, f"{other}-{i}", thousand, UBL))
                ),
                i,
            )
            for i in range(20)
        ]
        time.sleep(0.3)
        busy = []
        for _ in range(5):
            t = time.monotonic()
            get()
            busy.append(time.monotonic() - t)
        began = time.monotonic()
        for c in calls:
            c.result()
        rest = time.monotonic() - began
    print(f"GetInvoice idle max {max(idle) * 1000:.0f} ms; under 20 e-invoice calls max {max(busy) * 1000:.0f} ms")
    print(f"the 20 calls finished {rest:.1f}s after the probes")
    assert max(busy) < 1.0


def _try(call: Any) -> Any:
    try:
        return call()
    except grpc.RpcError as exc:
        assert exc.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), exc.details()
        return exc
