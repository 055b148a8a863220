"""The e-invoice formats as the use cases see them: write a Document in a syntax and check it, or read an
inbound document after checking it. The syntax modules are chosen here, by table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from lxml import etree

from service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument, PreconditionViolation
from service.domain.profile import EInvoiceFormat
from service.einvoice import cii, ubl
from service.einvoice.document import Document
from service.einvoice.validation import Finding, Severity, Syntax, fatal, parser, root_kind, validate_async

SYNTAX: Final[dict[EInvoiceFormat, Syntax]] = {
    EInvoiceFormat.UBL: Syntax.UBL,
    EInvoiceFormat.CII: Syntax.CII,
    EInvoiceFormat.FACTURX: Syntax.CII,  # the hybrid carries the CII
}
_WRITE: Final[dict[Syntax, Callable[[Document], bytes]]] = {Syntax.CII: cii.document_xml, Syntax.UBL: ubl.document_xml}
_READ: Final[dict[Syntax, Callable[[Any], Document]]] = {Syntax.CII: cii.read_document, Syntax.UBL: ubl.read_document}
_ROOT_NAMES: Final = "a UBL 2.1 Invoice or CreditNote, or a CII CrossIndustryInvoice"


def refusal(findings: list[Finding], what: str) -> FailedPrecondition:
    """FAILED_PRECONDITION listing every fatal rule: its id, the canonical field to fix and its message."""
    bad = fatal(findings)
    rules = ", ".join(dict.fromkeys(f.rule_id for f in bad))
    return FailedPrecondition(
        f"{what} is not a valid EN 16931 e-invoice: {len(bad)} fatal finding(s): {rules}",
        violation_type="EN16931",
        violations=[PreconditionViolation(f.rule_id, f.field or f.location, f.message) for f in bad],
    )


def write(syntax: Syntax, doc: Document) -> bytes:
    return _WRITE[syntax](doc)


_BR_CO_04 = (
    "[BR-CO-04]-Each Invoice line (BG-25) shall be categorized with an Invoiced item VAT category code (BT-151)."
)


def uncategorized(doc: Document) -> list[Finding]:
    """Lines without a VAT category: CII's schema refuses them before any rule runs, so the rule they break is
    reported here, naming each line (an invoice made without EN 16931 in mind usually has none)."""
    return [
        Finding(
            "BR-CO-04", Severity.FATAL, _BR_CO_04, f"line_items[{n}].taxation_items[0].tax_category", f"BG-25[{n + 1}]"
        )
        for n, line in enumerate(doc.lines)
        if not line.category
    ]


async def findings(syntax: Syntax, doc: Document) -> list[Finding]:
    return uncategorized(doc) or await validate_async(syntax, write(syntax, doc))


async def checked(syntax: Syntax, doc: Document, what: str) -> bytes:
    """The document in `syntax`, validated: a fatal finding refuses it (it is never returned)."""
    missing = uncategorized(doc)
    if missing:
        raise refusal(missing, what)
    xml = write(syntax, doc)
    found = await validate_async(syntax, xml)
    if fatal(found):
        raise refusal(found, what)
    return xml


async def read(xml: bytes, syntax: Syntax, path: str) -> Document:
    """An inbound e-invoice, validated first: anything else, or a fatal finding, is INVALID_ARGUMENT naming the
    rule and where in the document (`path` + its XPath)."""
    try:
        root = etree.fromstring(xml, parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidArgument([FieldViolation(path, f"is not well-formed XML: {exc}")]) from exc
    kind = root_kind(root)
    if kind is None:
        raise InvalidArgument([FieldViolation(path, f"must be {_ROOT_NAMES}; the root element is {root.tag!s:.200}")])
    if kind[0] is not syntax:
        raise InvalidArgument([FieldViolation(path, f"is a {kind[0]} document ({kind[1]}), not {syntax}")])
    bad = fatal(await validate_async(syntax, xml))
    if bad:
        raise InvalidArgument([FieldViolation(f"{path}:{f.location}", f"[{f.rule_id}] {f.message}") for f in bad])
    try:
        return _READ[syntax](root)
    except InvalidArgument as exc:  # the reader names XPaths; say which request field they are in
        raise InvalidArgument([FieldViolation(f"{path}:{v.field}", v.description) for v in exc.violations]) from exc
