"""Property test (issue 17): random valid canonical invoices and credit notes (EUR, USD, GBP, CHF; every VAT
category with its exemption rules; document allowances and charges; line discounts and charges; both
rounding and tax modes; cash rounding; partial payments; credit memos) export to UBL and CII that the real validator
(XSD, then the CEN EN 16931 schematron) finds no fatal rule in, and reading the XML back gives the same
business terms: the document read equals the one written, and its canonical form, imported as the service
imports (infer the modes, price, check the client's totals), maps to that document again. Every example goes
through both syntaxes, UBL and CII."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from lxml import etree

from service.domain import lifecycle
from service.domain.errors import Violations
from service.domain.totals import infer_modes
from service.einvoice import cii, semantic, ubl
from service.einvoice.document import CREDIT_NOTE, INVOICE, Document
from service.einvoice.validation import Syntax, fatal, parser, validate
from tests.einvoice.generate import NOW, Case, cases

SYNTAXES = ((Syntax.UBL, ubl), (Syntax.CII, cii))


def _exported(doc: Document) -> list[Document]:
    """`doc` written in each syntax, validated (no fatal finding) and read back."""
    out = []
    for syntax, module in SYNTAXES:
        xml = module.document_xml(doc)
        findings = fatal(validate(syntax, xml))
        assert findings == [], (syntax, [(f.rule_id, f.message, f.location) for f in findings])
        out.append(module.read_document(etree.fromstring(xml, parser())))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_invoice_exports_valid_and_reimports_every_term(case: Case) -> None:
    doc = semantic.from_invoice(case.invoice)
    assert doc.type_code == INVOICE
    for read in _exported(doc):
        assert read == doc
        imported = semantic.to_canonical(read).invoice
        infer_modes(imported)
        lifecycle.prepare_new(imported, Violations(), NOW, imported=True)  # the totals are checked, exactly
        assert semantic.from_invoice(imported) == doc


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases().filter(lambda c: c.note is not None))
def test_credit_note_exports_valid_and_reimports_every_term(case: Case) -> None:
    assert case.note is not None
    doc = semantic.from_credit_note(case.note, case.invoice)
    assert doc.type_code == CREDIT_NOTE
    assert (doc.preceding_invoice, doc.grand_total) == (case.invoice.invoice_number, case.note.total_amount)
    for read in _exported(doc):
        assert read == doc
        inbound = semantic.to_canonical(read)
        assert inbound.credit_note is not None
        assert inbound.credit_note.invoice_number == case.invoice.invoice_number
        assert inbound.credit_note.total_amount == case.note.total_amount
        assert semantic.from_credit_note(inbound.credit_note, inbound.invoice) == doc
