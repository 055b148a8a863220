"""The e-invoice formats as the use cases see them: write a Document in a syntax and check it, or read an
inbound document after checking it. The syntax modules are chosen here, by table."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

from service.domain import lifecycle
from service.domain.errors import FailedPrecondition, FieldViolation, InvalidArgument, PreconditionViolation
from service.domain.profile import EInvoiceFormat
from service.einvoice import cii, ubl
from service.einvoice.document import CREDIT_NOTE, INVOICE, Document
from service.einvoice.validation import (
    Finding,
    Severity,
    Syntax,
    Unreadable,
    fatal,
    parse,
    root_kind,
    validate_async,
)

SYNTAX: Final[dict[EInvoiceFormat, Syntax]] = {
    EInvoiceFormat.UBL: Syntax.UBL,
    EInvoiceFormat.CII: Syntax.CII,
    EInvoiceFormat.FACTURX: Syntax.CII,  # the hybrid carries the CII
}
_WRITE: Final[dict[Syntax, Callable[[Document], bytes]]] = {Syntax.CII: cii.document_xml, Syntax.UBL: ubl.document_xml}
_READ: Final[dict[Syntax, Callable[[Any], Document]]] = {Syntax.CII: cii.read_document, Syntax.UBL: ubl.read_document}
_ROOT_NAMES: Final = "a UBL 2.1 Invoice or CreditNote, or a CII CrossIndustryInvoice"
# The line elements (BG-25) of each root, counted before validation: a document of more lines than an invoice
# may have is refused without occupying the validator (5,000 lines took it 1.1 s).
_LINES: Final[dict[str, str]] = {
    "Invoice": f"{{{ubl.NS['cac']}}}InvoiceLine",
    "CreditNote": f"{{{ubl.NS['cac']}}}CreditNoteLine",
    "CrossIndustryInvoice": f"{{{cii.RSM}}}SupplyChainTradeTransaction/{{{cii.NS['ram']}}}"
    "IncludedSupplyChainTradeLineItem",
}


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
    return uncategorized(doc) or await validate_async(syntax, await asyncio.to_thread(write, syntax, doc))


async def checked(syntax: Syntax, doc: Document, what: str) -> bytes:
    """The document in `syntax`, validated: a fatal finding refuses it (it is never returned)."""
    missing = uncategorized(doc)
    if missing:
        raise refusal(missing, what)
    xml = await asyncio.to_thread(write, syntax, doc)  # 1,000 lines: off the event loop
    found = await validate_async(syntax, xml)
    if fatal(found):
        raise refusal(found, what)
    return xml


async def read(xml: bytes, syntax: Syntax, path: str) -> Document:
    """An inbound e-invoice, validated first: anything else, or a fatal finding, is INVALID_ARGUMENT naming the
    rule and where in the document (`path` + its XPath). Parsing and reading run on a worker thread: a 4 MB
    document kept the event loop (every other RPC) a quarter second."""
    root, name = await asyncio.to_thread(_checked_root, xml, syntax, path)
    bad = fatal(await validate_async(syntax, xml))
    if bad:
        raise InvalidArgument([FieldViolation(f"{path}:{f.location}", f"[{f.rule_id}] {f.message}") for f in bad])
    return await asyncio.to_thread(_document, root, syntax, name, path)


def _checked_root(xml: bytes, syntax: Syntax, path: str) -> tuple[Any, str]:
    """The parsed document and its root's name, if it is an e-invoice of `syntax` of at most MAX_LINES lines."""
    try:
        root = parse(xml)
    except Unreadable as exc:
        raise InvalidArgument([FieldViolation(path, str(exc))]) from exc
    kind = root_kind(root)
    if kind is None:
        raise InvalidArgument([FieldViolation(path, f"must be {_ROOT_NAMES}; the root element is {root.tag!s:.200}")])
    if kind[0] is not syntax:
        raise InvalidArgument([FieldViolation(path, f"is a {kind[0]} document ({kind[1]}), not {syntax}")])
    lines = sum(1 for _ in root.iterfind(_LINES[kind[1]]))
    if lines > lifecycle.MAX_LINES:
        where = f"{path}:{term_path(syntax, kind[1], 'BG-25')}"
        raise InvalidArgument([FieldViolation(where, f"at most {lifecycle.MAX_LINES} lines; got {lines}")])
    return root, kind[1]


def _document(root: Any, syntax: Syntax, name: str, path: str) -> Document:
    try:
        doc = _READ[syntax](root)
    except InvalidArgument as exc:  # the reader names XPaths; say which request field they are in
        raise InvalidArgument([FieldViolation(f"{path}:{v.field}", v.description) for v in exc.violations]) from exc
    if doc.type_code == CREDIT_NOTE and not doc.preceding_invoice:
        # EN 16931 lets BT-25 be absent; a canonical credit note always corrects one invoice of the company.
        why = "is required: a credit note is imported against the invoice it corrects (BT-25)"
        raise InvalidArgument([FieldViolation(f"{path}:{term_path(syntax, name, 'BT-25')}", why)])
    return doc


# Canonical fields a refused import names (the use case's paths) that are business terms of the document.
_REFUSED_TERMS: Final = {
    "invoice.invoice_number": "BT-1",
    "credit_note.credit_note_number": "BT-1",
    "invoice.line_items": "BG-25",
    "credit_note.lines": "BG-25",
}


def in_document(exc: InvalidArgument, syntax: Syntax, credit_note: bool, path: str) -> InvalidArgument:
    """A use case's refusal of an imported document, its fields named where the client can fix them: the
    term's XPath in `path` where the field is one of the document's terms."""
    root_name = "CreditNote" if credit_note else "Invoice"
    return InvalidArgument(
        [
            FieldViolation(f"{path}:{term_path(syntax, root_name, term)}", v.description)
            if (term := _REFUSED_TERMS.get(v.field))
            else v
            for v in exc.violations
        ]
    )


def term_path(syntax: Syntax, root_name: str, term: str) -> str:
    """The XPath of a business term in a document of that root (the syntax's table); the term itself if the
    table has no path for it."""
    if syntax is Syntax.CII:
        return next(iter(cii.paths().get(term, [])), term)
    kind = CREDIT_NOTE if root_name == "CreditNote" else INVOICE
    return next((x for t, x in ubl.xpaths(kind) if t == term), term)
